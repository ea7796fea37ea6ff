"""The pingall matrix as text: rows from, columns to, a mark per cell against what the
scenario expects, a legend, the pairs that are not as expected and why (`containet
pingall`; `--json` has every cell)."""

from __future__ import annotations

from .pingall import PingallResult, Verdict

#: one character per verdict in the printed matrix, and what it means
MARKS = {
    Verdict.REACH: ("+", "reaches, as expected"),
    Verdict.ISOLATED: (".", "isolated, as expected"),
    Verdict.UNEXPECTED_REACH: ("!", "reaches, should be isolated"),
    Verdict.UNEXPECTED_FAILURE: ("X", "no reply, should reach"),
    Verdict.UNMEASURED: ("?", "not measured"),
}


def _head(result: PingallResult) -> str:
    counts = result.counts()
    failed = len(result.pairs) - counts[Verdict.REACH] - counts[Verdict.ISOLATED]
    reach = sum(1 for c in result.cells.values() if c.reachable)
    head = (
        f"pingall ({result.scenario or 'no scenario'}): {len(result.names)} containers, "
        f"{len(result.pairs)} pairs, {reach} reachable, "
    )
    head += "all as expected" if not failed else f"{failed} not as expected"
    lost, retried, recovered = result.lost, len(result.retried), len(result.recovered)
    head += f"; {lost} probe{'s' if lost != 1 else ''} lost"
    if retried:
        head += f", {retried} pair{'s' if retried != 1 else ''} retried ({recovered} answered a retry)"
    if result.overflows:
        head += f"; the machine's neighbour table was full {result.overflows} times"
    return head


def _grid(result: PingallResult) -> list[str]:
    """Rows from, columns to, one mark a cell: with the names as column heads when
    they fit in 120 columns, else numbered columns (tens over units)."""
    names = list(result.names)
    n = len(names)
    mark = {v: m for v, (m, _text) in MARKS.items()}

    def row(src: str) -> list[str]:
        return ["-" if src == dst else mark[result.verdict(src, dst)] for dst in names]

    corner = "from \\ to"
    width = max(len(x) for x in names)
    label = max(len(corner), width)
    if label + 2 + n * (width + 1) <= 120:
        lines = [corner.rjust(label) + "  " + " ".join(x.center(width) for x in names)]
        return lines + [s.rjust(label) + "  " + " ".join(c.center(width) for c in row(s)) for s in names]
    num, label = len(str(n)), width
    pad = " " * (num + 1 + label + 2)
    heads = [str(k + 1).rjust(2) for k in range(n)]
    lines = [pad + "".join(h[0] for h in heads), pad + "".join(h[1] for h in heads)]
    return lines + [f"{k + 1:>{num}} {s:<{label}}  " + "".join(row(s)) for k, s in enumerate(names)]


def format_matrix(result: PingallResult, limit: int = 20) -> str:
    """The matrix as text: a head line (pairs, verdicts, lost probes and retries), the
    grid (rows from, columns to, a mark per cell, see MARKS), the legend, then each
    pair that is not as expected, and whether spanning tree was still converging."""
    out = [_head(result), *_grid(result)]
    out.append("legend: " + "   ".join(f"{m} {text}" for m, text in MARKS.values()) + "   - itself")
    bad = [(s, d) for s, d in result.pairs if not result.passed(s, d)]
    for s, d in bad[:limit]:
        cell = result.cells.get((s, d))
        _m, text = MARKS[result.verdict(s, d)]
        probes = f" ({cell.received} of {cell.sent} probes answered)" if cell else ""
        out.append(f"  {s} -> {d}: {text}{probes}")
    if len(bad) > limit:
        out.append(f"  ... and {len(bad) - limit} more (--json has every cell)")
    if bad and result.converging:
        out.append(
            f"spanning tree is still converging ({result.converging}): these pairs may not be broken; "
            "run pingall again in a few seconds"
        )
    elif any(result.verdict(s, d) == Verdict.UNEXPECTED_FAILURE for s, d in bad):
        out.append("no spanning tree is converging: these pairs are broken (`containet doctor SRC DST`)")
    return "\n".join(out)
