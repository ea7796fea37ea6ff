"""A small topology drawing: hosts side by side, their bridges, the tunnel
between them and the containers, redrawn from each Snapshot."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from workbench.inventory.model import Container, HostView, Snapshot

UNDERLAY_BRIDGES = {"br-phy"}  # the lab's underlay bridge: infrastructure, not part of the experiment
GAP = 12


def _dot(ok: bool) -> tuple[str, str]:
    return ("●", "green") if ok else ("○", "red")


def _host_lines(host: HostView, containers: tuple[Container, ...]) -> tuple[list[Text], int | None]:
    """The lines inside a host's box and the index of its tunnel line."""
    lines: list[Text] = []
    tunnel_at = None
    for br in host.linux_bridges:
        addr = br.addresses[0] if br.addresses else ""
        lines.append(
            Text.assemble(("▣ ", "cyan"), (br.name, "bold cyan"), f" {addr}", (f" {br.state}", "dim"))
        )
    for obr in host.ovs_bridges:
        if obr.name in UNDERLAY_BRIDGES:
            continue
        inside = next((b.name for b in host.linux_bridges if obr.name in b.ports), None)
        line = Text.assemble(("◆ ", "magenta"), (obr.name, "bold magenta"))
        if inside:
            line.append(f" in {inside}", "dim")
        for port in obr.ports:
            if port.is_tunnel:
                if tunnel_at is None:
                    tunnel_at = len(lines)
                line.append(f" {port.name}→{port.remote_ip}", "yellow")
        lines.append(line)
    for c in containers:
        mark, style = _dot(c.status == "running" and c.ip is not None)
        line = Text.assemble((f"{mark} ", style), (c.name, "bold"), f" {c.ip or '-'}")
        if c.vlan is not None:
            line.append(f" v{c.vlan}", "yellow")
        if c.attached_to:
            line.append(f" →{c.attached_to}", "dim")
        if not c.ours:
            line.append(" (not containet's)", "italic yellow")
        lines.append(line)
    if not lines:
        lines.append(Text("(empty)", "dim"))
    return lines, tunnel_at


def _box(title: Text, lines: list[Text], width: int, ok: bool) -> list[Text]:
    border = "green" if ok else "red"
    inner = width - 2
    top = Text("╭─", border)
    title = title.copy()
    title.truncate(max(1, inner - 2), overflow="ellipsis")
    top.append_text(title)
    top.append("─" * max(0, inner - 1 - title.cell_len) + "╮", border)
    out = [top]
    for line in lines:
        line = line.copy()
        line.truncate(inner - 1, overflow="ellipsis", pad=True)
        row = Text("│ ", border)
        row.append_text(line)
        row.append("│", border)
        out.append(row)
    out.append(Text("╰" + "─" * inner + "╯", border))
    return out


def draw(snap: Snapshot | None, width: int = 80) -> Text:
    """The whole drawing as one Text (pure, unit-testable)."""
    if snap is None:
        return Text("reading the lab…", "dim")
    hosts = list(snap.hosts[:2])
    if not hosts:
        return Text("no hosts", "dim")
    if len(hosts) == 1:
        lines, _ = _host_lines(hosts[0], snap.shown_on(hosts[0].name))
        title = Text(f" {hosts[0].name} {hosts[0].underlay_ip} ", "bold")
        return Text("\n").join(_box(title, lines, min(width, 60), hosts[0].reachable))
    box_w = max(20, (width - GAP) // 2)
    parts = [_host_lines(h, snap.shown_on(h.name)) for h in hosts]
    # line the two tunnel lines up so the tunnel is drawn straight across
    at = [p[1] for p in parts]
    if at[0] is not None and at[1] is not None and at[0] != at[1]:
        i = 0 if at[0] < at[1] else 1
        for _ in range(abs(at[0] - at[1])):
            parts[i][0].insert(at[i] or 0, Text(""))
        at[i] = max(at[0], at[1])  # type: ignore[type-var]
    height = max(len(p[0]) for p in parts)
    for lines, _ in parts:
        lines.extend(Text("") for _ in range(height - len(lines)))
    boxes = [
        _box(Text(f" {h.name} {h.underlay_ip} ", "bold"), parts[n][0], box_w, h.reachable and h.ovs_connected)
        for n, h in enumerate(hosts)
    ]
    kinds = {p.type for h in hosts for p in h.tunnels}
    ends = [h.tunnels for h in hosts]
    linked = bool(ends[0]) and bool(ends[1])
    row = (at[0] if at[0] is not None else at[1] if at[1] is not None else -10) + 1
    out = []
    for r in range(len(boxes[0])):
        gap = Text(" " * GAP)
        if r == row:
            label = "/".join(sorted(kinds)).upper()
            if linked:
                gap = Text(f"═{label:═^{GAP - 2}}═", "bold yellow")
            else:
                gap = Text(f"─{' ' + label + '?':─^{GAP - 2}} ", "red")
        line = boxes[0][r].copy()
        line.append_text(gap)
        line.append_text(boxes[1][r])
        out.append(line)
    if not snap.docker_connected:
        out.append(Text("docker is disconnected: containers may be stale", "bold red"))
    return Text("\n").join(out)


class Topology(Static):
    """Redraws itself when given a new snapshot or a new size."""

    DEFAULT_CSS = "Topology { height: auto; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self._snap: Snapshot | None = None

    def show(self, snap: Snapshot | None) -> None:
        self._snap = snap
        self.update(draw(snap, self.size.width or 80))

    def on_resize(self) -> None:
        self.update(draw(self._snap, self.size.width or 80))
