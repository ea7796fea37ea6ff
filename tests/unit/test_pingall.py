"""A true pingall, without a lab: the order of the probes, the neighbour-table gate, the
retries of lost probes, the matrix as text, and the netlink messages of neigh."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import BadInput
from workbench.host import Place
from workbench.measure import neigh
from workbench.measure import pingall as pa
from workbench.measure.matrix import format_matrix
from workbench.measure.ping import Pacing, PingOptions, PingReply, PingResult, Source, Target, make_result
from workbench.measure.pingall import Member, PairGate, PingallResult, Verdict, in_order, schedule


# --- the order of the probes ----------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 5, 40, 81])
def test_schedule_meets_every_pair_once(n: int) -> None:
    pairs = schedule(n)
    assert len(pairs) == n * (n - 1) // 2
    assert {frozenset(p) for p in pairs} == {frozenset(p) for p in itertools.combinations(range(n), 2)}


def test_schedule_spreads_destinations() -> None:
    """Each round (offset) of the tournament touches every member once as a source."""
    pairs = schedule(8)
    assert [i for i, _j in pairs[:8]] == list(range(8)) and [j for _i, j in pairs[:8]] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        0,
    ]


def test_in_order_goes_there_then_back_chunk_by_chunk() -> None:
    pairs = schedule(6)
    order = in_order(pairs, 4)
    assert len(order) == 2 * len(pairs) and set(order) == set(itertools.permutations(range(6), 2))
    assert order[:8] == pairs[:4] + [(j, i) for i, j in pairs[:4]]


def test_pacing_bounds() -> None:
    assert Pacing().check().window <= Pacing().in_flight
    for bad in (Pacing(window=0), Pacing(window=200, in_flight=100), Pacing(retries=9), Pacing(young=0)):
        with pytest.raises(BadInput):
            bad.check()


# --- the neighbour-table gate ------------------------------------------------------------------
class FakeCache:
    """A NeighbourCache without sockets: entries per pair, released on demand."""

    def __init__(self) -> None:
        self.ended_pairs: list[tuple[str, str]] = []
        self.released = 0

    @property
    def pooled(self) -> int:
        return 2 * len(self.ended_pairs)

    def ended(self, a: str, b: str) -> None:
        self.ended_pairs.append((a, b))

    def release(self, most: int | None = None) -> int:
        take = len(self.ended_pairs) if most is None else min(len(self.ended_pairs), most // 2)
        del self.ended_pairs[:take]
        self.released += 2 * take
        return 2 * take


def table(monkeypatch: pytest.MonkeyPatch, room: list[int]) -> None:
    """table_use() reports `room[0]` entries free beyond the reserve."""

    def use() -> neigh.TableUse:
        return neigh.TableUse(1024, 1024 - neigh.RESERVE - room[0], 0)

    monkeypatch.setattr(pa, "table_use", use)


def test_gate_admits_pairs_while_the_table_has_room(monkeypatch: pytest.MonkeyPatch) -> None:
    room = [4]  # two pairs' entries
    table(monkeypatch, room)
    cache = FakeCache()
    gate = PairGate(cache, [("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c")])  # type: ignore[arg-type]
    assert gate.admit("a", "b", False) and gate.admit("b", "a", False)  # one pair, both ways
    assert gate.admit("c", "a", False)  # a second pair
    assert not gate.admit("b", "c", False)  # no room, nothing to release: held back
    assert gate.admit("b", "c", True)  # ... unless nothing else is in flight
    assert gate.most == 3


def test_gate_releases_pairs_that_are_over_when_it_needs_room(monkeypatch: pytest.MonkeyPatch) -> None:
    room = [2]
    table(monkeypatch, room)
    cache = FakeCache()
    gate = PairGate(cache, [("a", "b"), ("b", "a"), ("a", "c")])  # type: ignore[arg-type]
    assert gate.admit("a", "b", False)
    gate.finished("a", "b")
    assert cache.ended_pairs == []  # the way back is still to come
    gate.finished("b", "a")
    assert cache.ended_pairs == [("a", "b")]
    room[0] = 2  # the kernel freed what release deleted
    assert gate.admit("a", "c", False) and cache.released == 2
    gate.close()
    assert cache.ended_pairs == [("a", "c")]  # in play when it closed: may go too


# --- the retries --------------------------------------------------------------------------
@dataclass
class Network:
    """ping_sources without sockets: which (src, dst) answer on which attempt."""

    answers: dict[tuple[str, str], list[bool]]  # per pair, per probe sent: answered?
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self,
        sources: Sequence[Source],
        opts: PingOptions,
        *,
        on_probe: Any,
        cancel: threading.Event,
        pacing: Pacing,
        order: Sequence[tuple[Source, Target]],
        first_seq: int,
        gate: Any,
        quiet: frozenset[tuple[str, str]],
    ) -> dict[tuple[str, Target], PingResult]:
        self.calls.append(
            {"timeout": opts.timeout, "seq": first_seq, "window": pacing.window, "n": len(order)}
        )
        self.calls[-1]["quiet"] = quiet
        out = {}
        for source, target in order:
            got = []
            for seq in range(first_seq, first_seq + opts.count):
                if gate is not None:
                    assert gate.admit(source.name, target.name, True)
                script = self.answers.get((source.name, target.name), [True])
                ok = script.pop(0) if len(script) > 1 else script[0]
                reply = PingReply(seq, 0.4 if ok else None)
                got.append(reply)
                on_probe(source, target, reply)
                if gate is not None:
                    gate.finished(source.name, target.name)
            out[(source.name, target)] = make_result(source.name, target, got, ())
        return out


class NoCache(FakeCache):
    def __init__(self, _places: Any, _ips: Any) -> None:
        super().__init__()

    def settle(self) -> int:
        return 0

    def __enter__(self) -> NoCache:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run(
    monkeypatch: pytest.MonkeyPatch,
    answers: dict[tuple[str, str], list[bool]],
    expected: dict[Any, bool] | None = None,
) -> tuple[PingallResult, Network, list[tuple[str, str]]]:
    net = Network(answers)
    monkeypatch.setattr(pa, "ping_sources", net)
    monkeypatch.setattr(pa, "NeighbourCache", NoCache)
    table(monkeypatch, [1000])
    ms = [Member(n, f"10.0.0.{i}", Place.root()) for i, n in enumerate("abc", start=1)]
    done: list[tuple[str, str]] = []
    monkeypatch.setattr(pa, "RETRY_PAUSE", 0.0)
    res = pa.run_pingall(
        ms,
        expected=expected if expected is not None else {p: True for p in itertools.permutations("abc", 2)},
        scenario="exp1",
        opts=PingOptions(count=1, timeout=0.5),
        on_result=lambda s, d, _r: done.append((s, d)),
    )
    return res, net, done


def test_a_lost_probe_is_retried_before_a_pair_is_called_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    res, net, done = run(monkeypatch, {("a", "b"): [False, True], ("c", "a"): [False]})
    assert res.verdict("a", "b") == Verdict.REACH  # the retry answered
    assert res.verdict("c", "a") == Verdict.UNEXPECTED_FAILURE  # lost three times: 1 + 2 retries
    assert res.cells[("c", "a")].sent == 3 and [r.seq for r in res.cells[("c", "a")].replies] == [1, 2, 3]
    assert res.lost == 1 + 3 and sorted(res.retried) == [("a", "b"), ("c", "a")]
    assert res.recovered == [("a", "b")]
    # the first round probes every ordered pair; each retry only the lost ones, later,
    # with more patience and a smaller window
    assert [(c["n"], c["seq"]) for c in net.calls] == [(6, 1), (2, 2), (1, 3)]
    assert [c["timeout"] for c in net.calls] == [0.5, 2.0, 3.0]
    assert net.calls[1]["window"] < net.calls[0]["window"]
    assert sorted(done) == sorted(itertools.permutations("abc", 2))  # each cell once, when it is over


def test_isolated_pairs_are_quiet_and_still_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {p: p in {("a", "b"), ("b", "a")} for p in itertools.permutations("abc", 2)}
    answers = {p: [ok] for p, ok in expected.items()}
    res, net, _done = run(monkeypatch, answers, expected)
    assert net.calls[0]["quiet"] == {p for p, ok in expected.items() if not ok}
    assert res.all_passed and res.counts()["isolated"] == 4
    assert res.lost == 0 and res.silent == 4 * 3  # isolated pairs: 3 probes each, none answered
    assert res.retried == []  # only pairs that should answer count as retried
    text = format_matrix(res)
    assert "all as expected; 0 probes lost" in text


# --- the matrix as text ---------------------------------------------------------------------
def result(names: Sequence[str], bad: Iterable[tuple[str, str]] = (), **kw: Any) -> PingallResult:
    bad = set(bad)
    cells = {
        (s, d): make_result(s, Target(d, "ip"), [PingReply(1, None if (s, d) in bad else 0.4)], ())
        for s in names
        for d in names
        if s != d
    }
    return PingallResult(tuple(names), cells, {k: True for k in cells}, "exp1", **kw)


def test_small_matrix_has_names_as_columns_and_a_legend() -> None:
    text = format_matrix(result(["h1-a", "h2-a", "h3-a"], bad=[("h1-a", "h3-a")]))
    lines = text.splitlines()
    assert lines[0].startswith("pingall (exp1): 3 containers, 6 pairs, 5 reachable, 1 not as expected")
    assert lines[1].split() == ["from", "\\", "to", "h1-a", "h2-a", "h3-a"]
    assert lines[2].split() == ["h1-a", "-", "+", "X"]
    assert any(line.startswith("legend: + reaches, as expected") for line in lines)
    assert "  h1-a -> h3-a: no reply, should reach (0 of 1 probes answered)" in lines
    assert "no spanning tree is converging: these pairs are broken" in text


def test_large_matrix_numbers_its_columns() -> None:
    names = [f"w{i}" for i in range(1, 81)]
    lines = format_matrix(result(names)).splitlines()
    assert lines[1].strip().startswith("1111111111") and lines[2].strip().startswith("1234567890")
    assert lines[3].startswith(" 1 w1 ") and lines[3].endswith("-" + "+" * 79)
    assert max(len(line) for line in lines[:83]) <= 120


def test_a_failure_while_spanning_tree_converges_is_told_apart() -> None:
    res = result(["a", "b"], bad=[("a", "b")], converging="1 of 2 ports stable; waiting for host2 gre0 ...")
    text = format_matrix(res)
    assert "spanning tree is still converging (1 of 2 ports stable" in text and "may not be broken" in text
    assert res.to_dict()["spanning_tree_converging"].startswith("1 of 2 ports stable")


# --- neigh: the kernel's table and the netlink messages --------------------------------------
def test_table_use_reads_the_limit_and_sums_overflows_over_cpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "thresh3").write_text("1024\n")
    head = "entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast"
    head += " rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls\n"
    rows = "000001c7 0 0 0 0 0 0 0 0 0 0 0 00000010\n000001c7 0 0 0 0 0 0 0 0 0 0 0 00000002\n"
    (tmp_path / "arp").write_text(head + rows)
    monkeypatch.setattr(neigh, "GC_THRESH3", tmp_path / "thresh3")
    monkeypatch.setattr(neigh, "ARP_STAT", tmp_path / "arp")
    use = neigh.table_use()
    assert use == neigh.TableUse(1024, 0x1C7, 0x12)
    assert use is not None and use.room() == 1024 - 0x1C7 - neigh.RESERVE
    monkeypatch.setattr(neigh, "ARP_STAT", tmp_path / "missing")
    assert neigh.table_use() is None


def test_delete_requests_are_rtm_delneigh_per_address_and_device() -> None:
    msgs = neigh.delete_requests(["172.15.42.100", "172.15.42.101"], [2, 5])
    assert len(msgs) == 4 and {len(m) for m in msgs} == {36}
    length, kind, flags, _seq, _pid = neigh.NLMSG.unpack_from(msgs[1])
    assert (length, kind, flags) == (36, neigh.RTM_DELNEIGH, neigh.NLM_F_REQUEST)
    family, _p1, _p2, ifindex, _state, _fl, _ty = neigh.NDMSG.unpack_from(msgs[1], neigh.NLMSG.size)
    assert (family, ifindex) == (socket.AF_INET, 5)
    assert msgs[1][-4:] == bytes([172, 15, 42, 100])


def test_parse_dump_reads_addresses_and_states() -> None:
    def entry(ip: str, state: int) -> bytes:
        nd = neigh.NDMSG.pack(socket.AF_INET, 0, 0, 2, state, 0, 0)
        attr = neigh.RTATTR.pack(8, neigh.NDA_DST) + socket.inet_aton(ip)
        other = neigh.RTATTR.pack(10, 2) + b"\x02" * 6 + b"\0\0"  # NDA_LLADDR, padded to 4
        return (
            neigh.NLMSG.pack(16 + len(nd) + len(attr) + len(other), neigh.RTM_NEWNEIGH, 2, 1, 0)
            + nd
            + other
            + attr
        )

    found: dict[str, int] = {}
    data = entry("172.15.42.1", 0x02) + entry("172.15.42.9", neigh.NUD_PERMANENT)
    assert neigh.parse_dump(data, found) is False  # no NLMSG_DONE yet
    assert found == {"172.15.42.1": 0x02, "172.15.42.9": neigh.NUD_PERMANENT}
    assert neigh.parse_dump(neigh.NLMSG.pack(20, neigh.NLMSG_DONE, 2, 1, 0) + b"\0" * 4, found) is True
