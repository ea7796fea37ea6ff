"""Measurements on the real lab: real packets between real containers.

Every test ends with nothing of ours left running: no iperf child process, no
listening iperf port in the containers, no registry entry (see `no_leftovers`).
Traffic goes only to the lab's own containers, or to an unused address of the
lab's own subnet (172.15.42.250) for the unreachable case.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.engine import Engine
from workbench.errors import BadInput
from workbench.host import Place
from workbench.measure import ping as pg
from workbench.measure.iperf import REGISTRY, SERVER_PORTS, IperfInterval
from workbench.measure.ping import PingReply

pytestmark = pytest.mark.lab

UNUSED_LAB_IP = "172.15.42.250"  # in the lab's container subnet, given to no one
CHILD_MODULE = "workbench.measure.iperf_child"


def iperf_children() -> list[int]:
    """Pids of iperf children started by this process or its children (this instance's)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(CHILD_MODULE.encode() == a for a in argv) and str(os.getpid()).encode() in argv[-2]:
            found.append(int(proc.name))
    return found


def listening_ports(engine: Engine, name: str) -> set[int]:
    pid = engine.resolve(name).pid
    out = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ss", "-Htanlu"], capture_output=True, text=True, timeout=10
    ).stdout
    ports = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 5:
            ports.add(int(cols[4].rsplit(":", 1)[1]))
    return ports & set(SERVER_PORTS)


@pytest.fixture
def exp1(applied: Callable[[str], Any]) -> Iterator[Engine]:
    engine = applied("exp1")
    yield engine
    assert_no_leftovers(engine)


def assert_no_leftovers(engine: Engine) -> None:
    deadline = time.monotonic() + 5
    while iperf_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert iperf_children() == []
    assert not list(REGISTRY.glob("*.json")) if REGISTRY.is_dir() else True
    for name in ("h1-a", "h2-a"):
        assert listening_ports(engine, name) == set()


# --- ping -----------------------------------------------------------------------------------
def test_ping_across_the_tunnel(exp1: Engine) -> None:
    seen: list[PingReply] = []
    res = exp1.ping("h1-a", "h2-a", count=3, interval=0.1, on_reply=seen.append)
    assert (res.sent, res.received, res.loss_pct) == (3, 3, 0.0)
    assert res.min_ms is not None and res.min_ms > 0 and res.dst_ip == "172.15.42.101"
    assert [r.seq for r in seen] == [1, 2, 3] and all(r.rtt_ms and r.rtt_ms > 0 for r in seen)
    by_ip = exp1.ping("172.15.42.100", "172.15.42.103", count=1)
    assert by_ip.src == "h1-a" and by_ip.dst == "h2-b" and by_ip.received == 1


def test_ping_unreachable_is_full_loss_within_the_timeout(exp1: Engine) -> None:
    t0 = time.monotonic()
    res = exp1.ping("h1-a", UNUSED_LAB_IP, count=2, interval=0.1, timeout=0.5)
    assert time.monotonic() - t0 < 4
    assert (res.sent, res.received, res.loss_pct) == (2, 0, 100.0)
    assert res.min_ms is None and [r.rtt_ms for r in res.replies] == [None, None]


def test_ping_cancel_returns_the_partial_result(exp1: Engine) -> None:
    cancel = threading.Event()
    t0 = time.monotonic()
    res = exp1.ping("h1-a", "h2-a", count=1000, interval=0.2, on_reply=lambda _r: cancel.set(), cancel=cancel)
    assert time.monotonic() - t0 < 2
    assert 1 <= res.sent <= 2 and res.received == res.sent


def test_replies_carry_the_kernel_receive_time() -> None:
    """On loopback (root namespace): our own echo request is filtered out, the reply
    comes with its SO_TIMESTAMPNS stamp, taken after the send stamp."""
    opts = pg.PingOptions(count=1)
    [sock] = pg.open_sockets([Place.root()], opts)
    try:
        sent = sock.send_probe(("127.0.0.1", 0), 4321, 1, b"x" * 56)
        ready, _w, _x = select.select([sock.fileno()], [], [], 2.0)
        assert ready
        data, anc, _flags, _addr = sock.sock.recvmsg(2048, socket.CMSG_SPACE(16))
        stamp = pg.kernel_stamp_ns(anc)
        assert stamp is not None and sent <= stamp <= time.time_ns()
        reply = sock._parse_reply(data, "127.0.0.1", stamp / 1e9)
        assert reply is not None and reply.type == pg.ICMP_ECHO_REPLY  # not our request
        assert (reply.id, reply.sequence) == (4321, 1)
    finally:
        sock.close()
    lo = pg.Target("lo", "127.0.0.1")
    res = pg.ping_from(Place.root(), "root", [lo], pg.PingOptions(count=3, interval=0.05))[lo]
    assert (res.sent, res.received) == (3, 3) and res.min_ms is not None and res.min_ms >= 0


def test_unknown_container_and_bad_input_are_one_line_errors(exp1: Engine, cli: Any) -> None:
    with pytest.raises(BadInput, match="unknown container 'nope'"):
        exp1.ping("h1-a", "nope")
    with pytest.raises(BadInput, match="unknown container"):
        exp1.iperf("nope", "h2-a")
    for argv in (("ping", "h1-a", "nope"), ("iperf", "h1-a", "nope"), ("iperf", "h1-a", "h2-a", "-b", "1X")):
        proc = cli(*argv, timeout=30)
        assert proc.returncode != 0
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("containet: error:")


def test_ping_cli_json(exp1: Engine, cli: Any) -> None:
    proc = cli("ping", "h1-b", "h2-b", "-c", "2", "-i", "0.1", "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["received"] == 2 and doc["avg_ms"] > 0 and len(doc["replies"]) == 2


# --- iperf --------------------------------------------------------------------------------------
IPERF_FIELDS = {
    "src",
    "dst",
    "protocol",
    "seconds",
    "sent_bps",
    "received_bps",
    "retransmits",
    "intervals",
    "warnings",
    "runs",
    "median_bps",
    "spread_pct",
}


def test_iperf_across_the_tunnel_streams_intervals(exp1: Engine, capfd: pytest.CaptureFixture[str]) -> None:
    live: list[IperfInterval] = []
    res = exp1.iperf("h1-a", "h2-a", seconds=2, on_interval=live.append)
    print("caller's stdout still works")
    out = capfd.readouterr().out
    assert out == "caller's stdout still works\n"  # the library never wrote to the caller's stdout
    assert res.protocol == "TCP" and res.received_bps > 0 and res.sent_bps > 0
    assert res.retransmits is not None and res.intervals and res.runs == (res.received_bps,)
    assert len(live) >= 2 and all(iv.bits_per_second > 0 for iv in live[:2])


def test_iperf_cli_json_has_the_documented_fields(exp1: Engine, cli: Any) -> None:
    proc = cli("iperf", "h1-b", "h2-b", "-t", "1", "--repeat", "2", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= IPERF_FIELDS
    assert doc["received_bps"] > 0 and len(doc["runs"]) == 2 and doc["median_bps"] > 0
    assert {"start", "end", "bits_per_second", "retransmits"} == set(doc["intervals"][0])


def test_iperf_udp_and_reverse(exp1: Engine) -> None:
    udp = exp1.iperf("h1-a", "h2-b", seconds=1, udp=True, bitrate="5M")
    assert udp.protocol == "UDP" and udp.retransmits is None
    assert 4e6 < udp.received_bps < 6e6
    live: list[IperfInterval] = []
    rev = exp1.iperf("h1-a", "h2-a", seconds=1, reverse=True, on_interval=live.append)
    assert rev.received_bps > 0
    assert live and live[0].retransmits is not None  # the server sends: its lines carry Retr


def test_iperf_cancel_stops_promptly(exp1: Engine) -> None:
    cancel = threading.Event()
    t0 = time.monotonic()
    res = exp1.iperf("h1-a", "h2-a", seconds=20, on_interval=lambda _iv: cancel.set(), cancel=cancel)
    assert time.monotonic() - t0 < 6  # server start + 1 interval + prompt stop
    assert any("cancelled" in w for w in res.warnings)
    assert res.received_bps > 0  # the partial figure from the live interval


def test_iperf_port_in_use_is_handled(exp1: Engine) -> None:
    def occupy() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", SERVER_PORTS[0]))
        s.listen()
        return s

    blocker = Place.of_pid(exp1.resolve("h2-a").pid).call(occupy)
    try:
        res = exp1.iperf("h1-a", "h2-a", seconds=1)
        assert res.received_bps > 0
    finally:
        blocker.close()


def test_a_killed_run_leaves_no_server(exp1: Engine) -> None:
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "iperf", "h1-a", "h2-a", "-t", "30"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not listening_ports(exp1, "h2-a"):
            time.sleep(0.1)
        assert listening_ports(exp1, "h2-a"), "the server never listened"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and listening_ports(exp1, "h2-a"):
        time.sleep(0.1)
    assert listening_ports(exp1, "h2-a") == set()  # the children died with their parent
    res = exp1.iperf("h1-a", "h2-a", seconds=1)  # and the next run works (and reaps the registry)
    assert res.received_bps > 0


def test_the_mtu_trap_is_flagged(engine: Engine) -> None:
    trap = Engine(mtu=1500)
    trap.apply("exp1")
    try:
        t0 = time.monotonic()
        res = trap.iperf("h1-a", "h2-a", seconds=1)
        assert time.monotonic() - t0 < 25  # a hard timeout, never a hang
        assert any("MTU" in w for w in res.warnings), res.warnings
    finally:
        trap.undo("exp1")
    assert iperf_children() == []


# --- pingall -------------------------------------------------------------------------------------
def test_pingall_exp1_everyone_talks(exp1: Engine, cli: Any) -> None:
    got: list[tuple[str, str]] = []
    threads: list[int] = []

    def cell(src: str, dst: str, _r: object) -> None:
        got.append((src, dst))
        threads.append(threading.active_count())

    before = threading.active_count()
    res = exp1.pingall(on_result=cell)
    assert max(threads) == before  # one event loop in the caller's thread: no thread per source
    assert res.scenario == "exp1" and len(res.names) == 4
    assert res.all_passed, res.to_dict()
    assert sorted(got) == sorted(res.pairs) and all(c.reachable for c in res.cells.values())
    proc = cli("pingall", "--json", timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["all_passed"] is True


def test_pingall_exp3_only_same_vlan(applied: Callable[[str], Any], cli: Any) -> None:
    engine = applied("exp3")
    res = engine.pingall(timeout=0.5)
    assert res.all_passed, res.to_dict()
    assert res.cells[("h1-a", "h2-a")].reachable and not res.cells[("h1-a", "h1-b")].reachable
    assert res.expected[("h1-b", "h2-b")] and not res.expected[("h1-a", "h2-b")]
    proc = cli("pingall", "-W", "0.5", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 containers, 12 pairs, 4 reachable, all as expected" in proc.stdout
    assert proc.stdout.splitlines()[2].split() == ["h1-a", "-", ".", "+", "."]  # h1-b, h2-b: another VLAN
