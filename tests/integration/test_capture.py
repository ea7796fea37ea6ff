"""`containet capture` on the real lab: GRE frames on the underlay carrying the
ping's ICMP echo (exp1), the VNI (vxlan), the 802.1Q tag inside the tunnel
(exp3), the MTU trap flagged by the X-ray (exp1 at MTU 1500); a pcap that
tcpdump reads back; a bounded ring on a busy port; a clean stop (Ctrl-C,
SIGTERM) of a mirror capture; a port that disappears; bad input.

One lab for the module, scenarios switched on it in file order (exp1, vxlan,
exp3, exp1 at MTU 1500); captures are short. Every capture runs as the user runs
it (the CLI in a child process); traffic goes between the lab's containers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests_support import container_pid

from workbench.capture import capture_pids
from workbench.engine import Engine
from workbench.host import Place
from workbench.marks import netns_name

pytestmark = pytest.mark.lab

H1A, H2A = "172.15.42.100", "172.15.42.101"
# BPF on the underlay, offsets from the outer IPv4 header: only ICMP inside the tunnel
# (a new scenario's ARP and IPv6 chatter would take the count otherwise)
GRE_ICMP = "ip proto gre and ip[36:2] = 0x0800 and ip[47] = 1"
GRE_VLAN_ICMP = "ip proto gre and ip[36:2] = 0x8100 and ip[40:2] = 0x0800 and ip[51] = 1"
VXLAN_ICMP = "udp port 4789 and ip[48:2] = 0x0800 and ip[59] = 1"
INSTANCE = os.environ["CONTAINET_INSTANCE"]


@pytest.fixture(scope="module")
def lab(lab_engine: Engine) -> Iterator[Engine]:
    _undo(lab_engine)
    try:
        yield lab_engine
    finally:
        _undo(lab_engine)


def _undo(engine: Engine) -> None:
    active = engine.active()
    if active is not None:
        engine.undo(active.scenario)


def use(engine: Engine, name: str) -> Engine:
    active = engine.active()
    if active is not None and active.scenario != name:
        engine.undo(active.scenario)
    engine.apply(name)
    return engine


class Cli:
    """`containet capture ...` in a child process, started and waited for."""

    def __init__(self, *args: str, background: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "capture", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, CONTAINET_INSTANCE=INSTANCE),
            # as a script's `containet capture ... &`: the shell starts it with SIGINT ignored
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None,
        )
        self.err: list[str] = []
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the line that says tcpdump listens
            line = self.proc.stderr.readline()
            if not line:
                break
            self.err.append(line.rstrip())
            if "capturing on" in line:
                return
        raise AssertionError(f"capture did not start: {self.finish()}")

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, "\n".join(self.err) + err

    def json(self, timeout: float = 30) -> dict[str, Any]:
        code, out, err = self.finish(timeout)
        assert code == 0, err
        return json.loads(out)  # type: ignore[no-any-return]


def nothing_left() -> None:
    """No tcpdump of ours, no mirror port, no filter file."""
    from workbench.capture.capture import CAPTURE_DIR

    assert capture_pids() == []
    assert not CAPTURE_DIR.exists() or list(CAPTURE_DIR.iterdir()) == []
    ports = Place.named(netns_name("host1")).run(["ip", "-o", "link"]).stdout
    assert "cnm" not in ports


def ping(engine: Engine, count: int = 3, size: int = 56) -> None:
    engine.ping("h1-a", "h2-a", count=count, interval=0.1, size=size)


def test_exp1_underlay_shows_gre_frames_carrying_the_ping(lab: Engine, tmp_path: Path) -> None:
    use(lab, "exp1")
    pcap = tmp_path / "exp1.pcap"
    cap = Cli("host1:eth1", "-c", "4", "-t", "10", "--filter", GRE_ICMP, "-w", str(pcap), "--json")
    ping(lab)
    data = cap.json()
    frames = data["frames"]
    assert data["ended"] == "count" and len(frames) == 4
    echo = [f for f in frames if f["tunnel"] == "gre" and f["info"].startswith("echo request")]
    assert echo, [f["summary"] for f in frames]
    f = echo[0]
    assert (f["outer_src"], f["outer_dst"], f["src"], f["dst"]) == ("10.0.0.3", "10.0.0.4", H1A, H2A)
    assert [h["name"] for h in f["headers"]][:4] == ["Ethernet", "IPv4", "GRE", "Ethernet"]
    assert not f["xray"]["too_big"] and f["xray"]["overhead"] == 38
    # a second reader: tcpdump reads the file back, frame for frame
    back = subprocess.run(["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True, timeout=10)
    assert back.returncode == 0 and len(back.stdout.splitlines()) == data["written"] == 4
    assert "ICMP echo request" in back.stdout


def test_trace_beside_the_wire_and_flows(lab: Engine) -> None:
    from conftest import run_cli

    use(lab, "exp1")
    out = run_cli("trace", "h1-a", "h2-a", "--probes", "2", "--json")
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert view["agree"] and [h["host"] for h in view["hops"]] == ["host1", "host2"]
    first = view["hops"][0]
    assert "gre0" in first["trace"]["outputs"] and first["trace"]["tunnels"] == ["10.0.0.4"]
    seen = {(s["where"], s["what"]): s["count"] for s in first["seen"]}
    request = f"GRE 10.0.0.3 > 10.0.0.4 carrying {H1A} > {H2A} ICMP echo request"
    assert seen.get(("host1:eth1", request), 0) >= 2, first["seen"]
    # the datapath flow that carried those pings, with its counter
    flows = json.loads(run_cli("flows", "host1:br0", "--json").stdout)
    assert flows[0]["rules"][0]["actions"] == "NORMAL" and flows[0]["rules"][0]["n_packets"] > 0
    assert any("tnl_port(gre0)" in f["actions"] and f["packets"] > 0 for f in flows[0]["datapath"])


def test_path_capture_merges_both_ends_and_the_underlay(lab: Engine) -> None:
    from workbench.capture import CaptureOptions

    use(lab, "exp1")
    cap = lab.open_path_capture(
        "h1-a", "h2-a", CaptureOptions(count=0, seconds=10, filter="icmp or ip proto gre")
    )
    try:
        ping(lab, count=2)
    finally:  # (stop reads what libpcap still holds)
        result = cap.stop()
    frames = [(w, f) for w, f in result.frames() if f.src == H1A and f.info.startswith("echo request")]
    assert [w for w, _f in frames[:3]] == ["h1-a eth0", "host1:eth1", "h2-a eth0"], frames
    times = [f.time for _w, f in result.frames()]
    assert times == sorted(times)
    nothing_left()


def test_capture_bad_input_is_one_line_exit_2(lab: Engine) -> None:
    from conftest import run_cli

    for args, words in (
        (["nosuch"], "unknown container 'nosuch'"),
        (["host1:nosuch0"], "host1 has no device or OVS port 'nosuch0'"),
        (["h1-a", "--filter", "ip proto nonsense("], "bad capture filter"),
    ):  # (the other bad inputs: tests/unit/test_capture_decode.py, without a CLI start each)
        out = run_cli("capture", *args)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and words in lines[0], (args, out.stderr)
    nothing_left()


def test_ring_stays_bounded_on_a_busy_port(lab: Engine) -> None:
    use(lab, "exp1")
    cap = Cli("host1:eth1", "-c", "0", "-t", "2.5", "--ring", "64K", "--json")
    flood = subprocess.run(
        ["nsenter", "-t", str(container_pid("h1-a")), "-n", "ping", "-f", "-q", "-w", "2", "-s", "1000", H2A],
        capture_output=True,
        text=True,
        timeout=20,
    )
    data = cap.json()
    assert "received" in flood.stdout
    assert data["seen"] > data["kept"] > 0, data
    assert data["ring_peak"] <= data["ring_limit"] == 64 << 10
    nothing_left()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_mirror_capture_stops_cleanly(lab: Engine, sig: signal.Signals) -> None:
    """SIGINT is sent to a capture a script started in the background: Ctrl-C's path all the same."""
    use(lab, "exp1")
    cap = Cli("host1:gre0", "-c", "0", "-t", "30", background=sig == signal.SIGINT)
    ping(lab, count=2)
    cap.proc.send_signal(sig)
    code, out, err = cap.finish(10)
    assert code in (0, 128 + int(sig)), err
    assert "frame(s) on host1:gre0 (mirror)" in out and "Traceback" not in err
    nothing_left()


def test_a_killed_capture_is_swept_by_the_next(lab: Engine) -> None:
    """kill -9 of the CLI: its tcpdump dies with it (parent-death signal); the mirror port
    and filter file it made stay, marked; the next capture sweeps those of dead owners."""
    from workbench.capture import CaptureOptions
    from workbench.capture.capture import CAPTURE_DIR

    use(lab, "exp1")
    cap = Cli("host1:gre0", "-c", "0", "-t", "30")
    cap.proc.kill()
    cap.finish(10)
    deadline = time.monotonic() + 5
    while capture_pids() and time.monotonic() < deadline:  # SIGKILL is delivered, not instant
        time.sleep(0.05)
    assert capture_pids() == []
    assert "cnm" in Place.named(netns_name("host1")).run(["ip", "-o", "link"]).stdout
    assert list(CAPTURE_DIR.glob("*.bpf"))
    lab.capture("host1:gre0", CaptureOptions(count=1, seconds=1))
    nothing_left()


def test_port_that_disappears_ends_the_capture(lab: Engine) -> None:
    use(lab, "exp1")
    cap = Cli("host1:cn-h1-b", "-c", "0", "-t", "30")
    try:
        started = time.monotonic()
        Place.named(netns_name("host1")).run(["ip", "link", "del", "cn-h1-b"])
        code, out, err = cap.finish(15)
        assert code == 1 and "host1:cn-h1-b disappeared" in err, (out, err)
        assert time.monotonic() - started < 10
        nothing_left()
    finally:
        lab.apply("exp1")  # wires h1-b again


def test_vxlan_vni_is_decoded(lab: Engine) -> None:
    use(lab, "vxlan")
    cap = Cli("host1:eth1", "-c", "4", "-t", "10", "--filter", VXLAN_ICMP, "--json")
    ping(lab)
    frames = cap.json()["frames"]
    assert frames and all(f["tunnel"] == "vxlan" and f["tunnel_id"] is not None for f in frames)
    echo = [f for f in frames if f["proto"] == "ICMP" and f["src"] in (H1A, H2A)]
    assert len(echo) == 4, [f["summary"] for f in frames]
    assert echo[0]["xray"]["overhead"] == 50


def test_exp3_vlan_tag_travels_inside_the_tunnel(lab: Engine) -> None:
    use(lab, "exp3")
    snap = lab.snapshot()
    tag = snap.container("h1-a").vlan  # type: ignore[union-attr]
    assert tag is not None and snap.container("h2-a").vlan == tag  # type: ignore[union-attr]
    cap = Cli("host1:eth1", "-c", "4", "-t", "10", "--filter", GRE_VLAN_ICMP, "--json")
    ping(lab)
    frames = cap.json()["frames"]
    echo = [f for f in frames if f["proto"] == "ICMP"]
    assert len(echo) == 4 and all(f["inner_vlan"] == tag for f in echo), [f["summary"] for f in frames]
    assert "802.1Q" in [h["name"] for h in echo[0]["headers"] if h["layer"] == "inner"]
    assert echo[0]["xray"]["overhead"] == 42


def _tcp_push(server_pid: int, client_pid: int, seconds: float = 2.0) -> None:
    """A TCP connection h1-a -> h2-a that tries to send 256 KB (the MTU trap: the
    handshake passes, full-size segments do not fit the tunnel)."""

    def serve(sock: socket.socket) -> None:
        sock.settimeout(seconds)
        try:
            conn, _ = sock.accept()
            conn.settimeout(seconds)
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def listen() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((H2A, 5999))
        s.listen(1)
        return s

    def push() -> None:
        c = socket.create_connection((H2A, 5999), timeout=seconds)
        try:
            c.sendall(b"z" * (256 << 10))
        except OSError:
            pass
        finally:
            c.close()

    srv = Place.of_pid(server_pid).call(listen)
    t = threading.Thread(target=serve, args=(srv,), daemon=True)
    t.start()
    try:
        Place.of_pid(client_pid).call(push)
    finally:
        t.join(seconds + 1)
        srv.close()


def test_mtu_1500_xray_flags_the_oversized_tcp_frames(lab: Engine) -> None:
    _undo(lab)
    trap = Engine(mtu=1500)
    trap.apply("exp1")
    try:
        cap = Cli("h1-a", "-c", "6", "-t", "8", "--filter", "tcp port 5999", "--json")
        _tcp_push(container_pid("h2-a"), container_pid("h1-a"))
        data = cap.json()
        assert data["context"]["tunnel"] == "gre"
        big = [f for f in data["frames"] if f["xray"]["too_big"]]
        assert big, [(f["wire_len"], f["summary"]) for f in data["frames"]]
        assert big[0]["proto"] == "TCP" and "TOO BIG for the GRE" in big[0]["xray"]["verdict"]
    finally:
        trap.undo("exp1")
