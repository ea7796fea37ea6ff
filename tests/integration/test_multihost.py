"""Labs beyond two hosts: a mesh of tunnels (RSTP breaks the loops) or a star."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import tests_support as support

pytestmark = pytest.mark.lab

MH = f"{os.environ['CONTAINET_INSTANCE'][:6]}mh"  # this module's own instance


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return support.run_cli(MH, *args, timeout=300)


@pytest.fixture
def own_lab() -> Iterator[None]:
    cli("clean")
    try:
        yield
    finally:
        cli("clean")


def pingall() -> dict[str, Any]:
    """The product's own pingall, as a user runs it: its JSON, every cell."""
    out = cli("pingall", "--json")
    assert out.stdout, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    assert out.returncode == (0 if result["all_passed"] else 1)
    return result


def unexpected(result: dict[str, Any]) -> dict[str, Any]:
    """The cells not as expected (none, when all is well), and why."""
    bad = {f"{c['src']}->{c['dst']}": c["verdict"] for c in result["cells"] if not c["passed"]}
    if bad:
        bad["spanning tree converging"] = result["spanning_tree_converging"]
    return bad


@pytest.mark.parametrize("topology", ["mesh", "star"])
def test_three_hosts_all_pairs(own_lab: None, topology: str) -> None:
    """Right after `scenario apply` returns, the product's pingall is clean: no retry in
    the test (a mesh: apply waits for spanning tree to converge). exp1, then exp3 on
    the same lab (isolation holds). bench/bench_pingall.py repeats it to measure."""
    up = cli("lab", "up", "--hosts", "3", "--topology", topology)
    assert up.returncode == 0, up.stderr
    assert "lab is up: host1, host2, host3" in up.stdout
    applied = cli("scenario", "apply", "exp1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    result = pingall()
    assert len(result["cells"]) == 30 and unexpected(result) == {}
    assert result["counts"]["reach"] == 30
    if topology == "mesh":
        assert "wait for spanning tree to converge on br0 (3 hosts)" in applied.stdout
        tunnels = cli("status").stdout
        assert "gre0-host2" in tunnels and "gre0-host3" in tunnels
    assert cli("scenario", "undo", "exp1").returncode == 0

    assert cli("scenario", "apply", "exp3").returncode == 0
    result = pingall()
    assert result["counts"]["reach"] == 12  # 3 of VLAN 10, 3 of VLAN 20, both ways
    assert result["counts"]["isolated"] == 18 and unexpected(result) == {}
    assert cli("scenario", "undo", "exp3").returncode == 0


def test_pingall_at_forty_containers(own_lab: None) -> None:
    """Issue 13's scale case: 2 hosts, exp2 and 36 more containers. Every pair as
    expected, twice in a row (before: hundreds of pairs reported failing, the kernel's
    neighbour table overflowing and a burst of probes flooding the datapath)."""
    assert cli("lab", "up").returncode == 0
    assert cli("scenario", "apply", "exp2").returncode == 0
    added = cli("container", "add", "host1", "w", "172.15.42.150/24", "--count", "18")
    assert added.stdout.endswith("w1..w18 172.15.42.150-172.15.42.167/24 on host1\n"), added.stderr
    added = cli("container", "add", "host2", "v", "172.15.42.170/24", "--count", "18")
    assert added.returncode == 0, added.stderr
    clash = cli("container", "add", "host2", "x", "172.15.42.160/24", "--count", "3")
    assert (clash.returncode, clash.stderr) == (2, "containet: error: 172.15.42.160 is already used by w11\n")
    for _ in range(2):
        result = pingall()
        assert len(result["names"]) == 40 and result["counts"]["reach"] == 1560, unexpected(result)


def test_four_hosts_mesh_pingall_right_after_apply_then_down_leaves_nothing(own_lab: None) -> None:
    """4 hosts, mesh (three loops for spanning tree to break): apply exp1, pingall at
    once, undo. The fourth host reaches host1 on the underlay; `lab down`
    leaves no namespace of the instance."""
    hosts = 4
    assert cli("lab", "up", "--hosts", str(hosts)).returncode == 0
    names = [n for n in os.listdir("/var/run/netns") if n.startswith(f"cn-{MH}-")]
    assert sorted(names) == sorted(f"cn-{MH}-{n}" for n in ("host1", "host2", "host3", "host4", "underlay"))
    ping = subprocess.run(
        ["ip", "netns", "exec", f"cn-{MH}-host4", "ping", "-c", "1", "-W", "2", "10.0.0.3"],
        capture_output=True,
        timeout=10,
    )
    assert ping.returncode == 0
    n = 2 * hosts
    assert cli("scenario", "apply", "exp1").returncode == 0  # exp3's isolation: the 3-host test
    result = pingall()
    assert unexpected(result) == {} and result["counts"]["reach"] == n * (n - 1)
    assert cli("scenario", "undo", "exp1").returncode == 0
    assert cli("lab", "down").returncode == 0
    assert not [n for n in os.listdir("/var/run/netns") if n.startswith(f"cn-{MH}-")]
    assert "nothing carries containet's mark" in cli("clean").stdout


def test_doctor_walks_a_star_through_host1_and_fixes_the_middle(own_lab: None) -> None:
    """host2 and host3 share no tunnel in a star: the doctor follows the frame through
    host1, and a broken tunnel there is named, fixed, and the pair talks again."""
    assert cli("lab", "up", "--hosts", "3", "--topology", "star").returncode == 0
    assert cli("scenario", "apply", "exp1").returncode == 0
    healthy = cli("doctor", "h2-a", "h3-a")
    assert healthy.returncode == 0, healthy.stdout
    assert "OVS br0 (host1)" in healthy.stdout and "frame leaves by gre0-host3" in healthy.stdout

    db = f"--db=unix:/run/containet/{MH}/host1/db.sock"
    subprocess.run(
        ["ovs-vsctl", db, "set", "interface", "gre0-host3", "options:remote_ip=10.0.0.9"], check=True
    )
    broken = cli("doctor", "h2-a", "h3-a")
    assert broken.returncode == 1
    assert "first broken hop is tunnel gre0-host3 (host1): remote_ip" in broken.stdout
    assert cli("doctor", "h2-a", "h3-a", "--fix").returncode == 0
    assert cli("ping", "h2-a", "h3-a", "-c", "2").returncode == 0


def test_bad_host_count_changes_nothing(own_lab: None) -> None:
    out = cli("lab", "up", "--hosts", "9")
    assert out.returncode != 0 and "a lab has 1 to 8 hosts, not 9" in out.stderr
    assert not [n for n in os.listdir("/var/run/netns") if n.startswith(f"cn-{MH}-")]
