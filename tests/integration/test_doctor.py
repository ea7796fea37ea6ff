"""The doctor on the real lab: break one thing at a time, the doctor names it as the
first failing hop, its fix action makes the pair ping again; a healthy pair is all OK.

One scenario stays applied across the tests that need it (applying is the slow part);
every test repairs what it broke in `finally`, and re-applying the scenario (idempotent)
puts back anything a failed test left behind."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests_support import container_pid, container_ping

from workbench.doctor import DoctorReport, Status
from workbench.engine import Engine
from workbench.errors import WorkbenchError
from workbench.marks import IPT_COMMENT

pytestmark = pytest.mark.lab

H1A, H2A = "172.15.42.100", "172.15.42.101"


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


@pytest.fixture
def scenario(lab: Engine) -> Iterator[Callable[[str], Engine]]:
    used: list[str] = []

    def use(name: str) -> Engine:
        active = lab.active()
        if active is not None and active.scenario != name:
            lab.undo(active.scenario)
        lab.apply(name)
        used.append(name)
        return lab

    yield use
    for name in used[-1:]:
        lab.apply(name)  # repairs whatever the test left broken


def ns(host: str) -> str:
    from workbench.marks import netns_name

    return netns_name(host)


def run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=30)


def in_container(name: str, *argv: str) -> None:
    run("nsenter", "-t", str(container_pid(name)), "-n", *argv)


def first(report: DoctorReport) -> tuple[str, str]:
    bad = report.first_failure
    assert bad is not None, report.summary
    return bad.hop, bad.name


def fix_and_ping(engine: Engine, report: DoctorReport, src: str, dst_ip: str) -> None:
    bad = report.first_failure
    assert bad is not None and bad.fix is not None and bad.fix_command
    summary = engine.doctor_fix(bad.fix)
    assert "not verified" not in summary, summary
    assert container_ping(src, dst_ip), f"no ping right after: {summary}"


# --- healthy ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "src", "dst"), [("exp1", "h1-a", "h2-a"), ("exp1", "h1-a", "h1-b")])
def test_healthy_pair_is_all_ok(scenario: Callable[[str], Engine], name: str, src: str, dst: str) -> None:
    engine = scenario(name)
    report = engine.doctor(src, dst)
    assert report.ok, report.summary
    bad = [c for c in report.checks if c.status != Status.OK]
    assert {c.status for c in report.checks} == {Status.OK}, bad
    hops = report.hops
    assert hops[0] == f"container {src} (host1)" and hops[-1] == "end to end"
    if src != dst and "h2" in dst:
        assert hops.index("tunnel gre0 (host1)") < hops.index("tunnel gre0 (host2)")
        trace = next(c for c in report.checks if c.name == "ofproto/trace" and "host1" in c.hop)
        assert "tunnelled to 10.0.0.4" in trace.evidence


def test_cli_doctor_and_mtu_on_a_healthy_pair(
    scenario: Callable[[str], Engine], cli: Callable[..., Any]
) -> None:
    scenario("exp1")
    out = cli("doctor", "h1-a", "h2-a")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "h1-a -> h2-a: every hop is OK" in out.stdout and "FAIL" not in out.stdout
    data = json.loads(cli("doctor", "h1-a", "172.15.42.101", "--json").stdout)
    assert data["ok"] and data["first_failure"] is None and data["hops"][0]["status"] == "ok"
    mtu = cli("mtu", "h1-a", "h2-a")
    assert mtu.returncode == 0 and "path MTU: 1462" in mtu.stdout, mtu.stdout
    bad = cli("doctor", "h1-a", "ghost")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown container 'ghost'" in bad.stderr


# --- faults, one at a time ----------------------------------------------------------------
def test_host_side_veth_down(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp1")
    run("ip", "-n", ns("host1"), "link", "set", "cn-h1-a", "down")
    report = engine.doctor("h1-a", "h2-a")
    assert first(report) == ("veth cn-h1-a (host1)", "up")
    fix = report.first_failure.fix_command or ""  # type: ignore[union-attr]
    assert fix.startswith(f"ip -n {ns('host1')} link set cn-h1-a up; nsenter -t "), fix
    assert fix.endswith(" -n ip neigh flush dev eth0 nud incomplete nud failed"), fix
    fix_and_ping(engine, report, "h1-a", H2A)


def test_container_without_a_route(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp1")
    in_container("h1-a", "ip", "route", "flush", "table", "main")
    assert not container_ping("h1-a", H2A, count=1)
    report = engine.doctor("h1-a", "h2-a")
    assert first(report) == ("container h1-a (host1)", "route")
    fix_and_ping(engine, report, "h1-a", H2A)
    assert container_ping("h1-a", "172.15.42.1")  # the default route came back too


def test_checksum_offload_on_a_userspace_ovs_port(scenario: Callable[[str], Engine]) -> None:
    """Ping works, TCP dies: the doctor names the offload, its fix brings TCP back."""
    engine = scenario("exp2")
    in_container("h1-a", "ethtool", "-K", "eth0", "tx", "on")
    assert container_ping("h1-a", H2A, count=1)
    with pytest.raises(WorkbenchError, match="unable to connect"):  # TCP: not even the handshake
        engine.iperf("h1-a", "h2-a", seconds=1)
    report = engine.doctor("h1-a", "h2-a")
    assert first(report) == ("container h1-a (host1)", "checksums")
    assert report.first_failure.fix_command.endswith("ethtool -K eth0 tx off")  # type: ignore[union-attr]
    engine.doctor_fix(report.first_failure.fix)  # type: ignore[union-attr, arg-type]
    assert engine.doctor("h1-a", "h2-a").ok
    assert engine.iperf("h1-a", "h2-a", seconds=1).received_bps > 10e6


def test_mtu_1500_on_both_containers_is_the_trap(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp1")
    try:
        for name, host in (("h1-a", "host1"), ("h2-a", "host2")):
            run("ip", "-n", ns(host), "link", "set", f"cn-{name}", "mtu", "1500")
            in_container(name, "ip", "link", "set", "eth0", "mtu", "1500")
        assert container_ping("h1-a", H2A)  # ping works...
        stalled = engine.iperf("h1-a", "h2-a", seconds=2)  # ...TCP stalls
        report = engine.doctor("h1-a", "h2-a")
        assert first(report) == ("container h1-a (host1)", "MTU")
        assert "ping works, TCP stalls" in report.first_failure.evidence  # type: ignore[union-attr]
        fix_and_ping(engine, report, "h1-a", H2A)
        assert container_ping("h1-a", H2A, size=1462 - 28, df=True)
        healthy = engine.iperf("h1-a", "h2-a", seconds=2)
        assert stalled.received_bps < healthy.received_bps / 10, (stalled.received_bps, healthy.received_bps)
        assert engine.doctor("h1-a", "h2-a").ok
    finally:
        for name, host in (("h1-a", "host1"), ("h2-a", "host2")):
            in_container(name, "ip", "link", "set", "eth0", "mtu", "1462")
            run("ip", "-n", ns(host), "link", "set", f"cn-{name}", "mtu", "1462")


def test_mtu_command_finds_and_fixes_the_trap(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp1")
    try:
        for name, host in (("h1-a", "host1"), ("h2-a", "host2")):
            run("ip", "-n", ns(host), "link", "set", f"cn-{name}", "mtu", "1500")
            in_container(name, "ip", "link", "set", "eth0", "mtu", "1500")
        report = engine.path_mtu("h1-a", "h2-a")
        assert not report.ok and report.path_mtu == 1462 and report.fits == 1462
        assert (1500, False) in report.probes and (1462, True) in report.probes
        fixed = engine.path_mtu("h1-a", "h2-a", fix=True)
        assert fixed.ok and fixed.path_mtu == 1462 and len(fixed.fixed) == 4
        assert {h.mtu for h in fixed.interfaces} == {1462}
    finally:
        for name, host in (("h1-a", "host1"), ("h2-a", "host2")):
            in_container(name, "ip", "link", "set", "eth0", "mtu", "1462")
            run("ip", "-n", ns(host), "link", "set", f"cn-{name}", "mtu", "1462")


def _ipt(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns(host), "iptables", "-w", *args], capture_output=True, text=True, timeout=30
    )


def test_forward_drop_with_bridge_netfilter(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp1")
    nf = ["ip", "netns", "exec", ns("host1"), "sysctl", "-q"]
    fix_rule = [
        "FORWARD",
        "-i",
        "docker0",
        "-o",
        "docker0",
        "-m",
        "comment",
        "--comment",
        IPT_COMMENT,
        "-j",
        "ACCEPT",
    ]
    try:
        run(*nf, "-w", "net.bridge.bridge-nf-call-iptables=1")
        assert _ipt("host1", "-P", "FORWARD", "DROP").returncode == 0
        assert not container_ping("h1-a", H2A, count=1)
        report = engine.doctor("h1-a", "h2-a")
        assert first(report) == ("docker0 (host1)", "firewall")
        assert "FORWARD policy DROP" in report.first_failure.evidence  # type: ignore[union-attr]
        fix_and_ping(engine, report, "h1-a", H2A)
        assert _ipt("host1", "-S", "FORWARD").stdout.splitlines()[0] == "-P FORWARD DROP"  # policy kept
        assert engine.doctor("h1-a", "h2-a").ok
    finally:
        _ipt("host1", "-P", "FORWARD", "ACCEPT")
        while _ipt("host1", "-C", *fix_rule).returncode == 0:
            _ipt("host1", "-D", *fix_rule)


def test_wrong_remote_ip_on_a_tunnel_port(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp2")
    db = f"--db=unix:/run/containet/{_instance()}/host1/db.sock"
    run("ovs-vsctl", db, "set", "interface", "gre0", "options:remote_ip=10.0.0.9")
    report = engine.doctor("h1-a", "h2-a")
    assert first(report) == ("tunnel gre0 (host1)", "remote_ip")
    assert "10.0.0.9" in report.first_failure.evidence  # type: ignore[union-attr]
    fix_and_ping(engine, report, "h1-a", H2A)


def test_wrong_vlan_tag_on_one_port(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp3")
    db = f"--db=unix:/run/containet/{_instance()}/host2/db.sock"
    assert container_ping("h1-a", H2A)
    run("ovs-vsctl", db, "set", "port", "cn-h2-a", "tag=20")
    report = engine.doctor("h1-a", "h2-a")
    assert first(report) == ("veth cn-h2-a (host2)", "VLAN tag")
    fix_and_ping(engine, report, "h1-a", H2A)


def test_exp3_vlan_tag_needs_four_bytes_of_mtu(scenario: Callable[[str], Engine]) -> None:
    """A tagged frame carries 4 more bytes in the tunnel: exp3 gives 1458, and the doctor
    catches the untagged GRE figure (1462) as the MTU trap."""
    engine = scenario("exp3")
    assert engine.doctor("h1-a", "h2-a").ok
    try:
        for name, host in (("h1-a", "host1"), ("h2-a", "host2")):
            run("ip", "-n", ns(host), "link", "set", f"cn-{name}", "mtu", "1462")
            in_container(name, "ip", "link", "set", "eth0", "mtu", "1462")
        assert container_ping("h1-a", H2A)
        assert not container_ping("h1-a", H2A, size=1462 - 28, df=True)
        report = engine.doctor("h1-a", "h2-a")
        assert first(report) == ("container h1-a (host1)", "MTU")
        assert "1462 > 1458" in report.first_failure.evidence  # type: ignore[union-attr]
        fix_and_ping(engine, report, "h1-a", H2A)
        assert container_ping("h1-a", H2A, size=1458 - 28, df=True)
        assert engine.doctor("h1-a", "h2-a").ok
    finally:
        for name, host in (("h1-a", "host1"), ("h2-a", "host2")):
            in_container(name, "ip", "link", "set", "eth0", "mtu", "1458")
            run("ip", "-n", ns(host), "link", "set", f"cn-{name}", "mtu", "1458")


def _instance() -> str:
    from workbench.marks import RUN_DIR

    return RUN_DIR.name
