"""Labs beyond two hosts: a mesh of tunnels (RSTP breaks the loops) or a star."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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


def containers() -> list[tuple[str, int, str, int | None]]:
    import json

    snap = json.loads(cli("status", "--json").stdout)
    out = []
    for c in snap["containers"]:
        ip = next(a for i in c["interfaces"] if i["name"] == "eth0" for a in i["addresses"]).split("/")[0]
        out.append((c["name"], c["pid"], ip, c["vlan"]))
    return out


def pings(pid: int, ip: str) -> bool:
    argv = ["nsenter", "-t", str(pid), "-n", "ping", "-n", "-q", "-c", "1", "-W", "1", ip]
    return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0


def matrix(expect_same_vlan_only: bool) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(src, dst) -> (expected, seen), concurrently; a pair expected to talk gets a few
    seconds for spanning tree to settle."""
    cts = containers()

    def one(pair: tuple[tuple[str, int, str, int | None], ...]) -> tuple[tuple[str, str], tuple[bool, bool]]:
        (a, pid, _, va), (b, _, ip, vb) = pair
        expected = (va == vb) if expect_same_vlan_only else True
        deadline = time.monotonic() + (15 if expected else 0)
        seen = pings(pid, ip)
        while expected and not seen and time.monotonic() < deadline:
            time.sleep(0.5)
            seen = pings(pid, ip)
        return (a, b), (expected, seen)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, itertools.permutations(cts, 2)))


@pytest.mark.parametrize("topology", ["mesh", "star"])
def test_three_hosts_all_pairs(own_lab: None, topology: str) -> None:
    up = cli("lab", "up", "--hosts", "3", "--topology", topology)
    assert up.returncode == 0, up.stderr
    assert "lab is up: host1, host2, host3" in up.stdout

    assert cli("scenario", "apply", "exp1").returncode == 0
    result = matrix(expect_same_vlan_only=False)
    assert len(result) == 30
    assert {k: v for k, v in result.items() if v[0] != v[1]} == {}
    tunnels = cli("status").stdout
    if topology == "mesh":
        assert "gre0-host2" in tunnels and "gre0-host3" in tunnels
    assert cli("scenario", "undo", "exp1").returncode == 0

    assert cli("scenario", "apply", "exp3").returncode == 0
    result = matrix(expect_same_vlan_only=True)
    assert sum(1 for exp, _ in result.values() if exp) == 12  # 3 of VLAN 10, 3 of VLAN 20
    assert {k: v for k, v in result.items() if v[0] != v[1]} == {}


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


def test_four_hosts_up_and_down_leave_nothing(own_lab: None) -> None:
    assert cli("lab", "up", "--hosts", "4").returncode == 0
    names = [n for n in os.listdir("/var/run/netns") if n.startswith(f"cn-{MH}-")]
    assert sorted(names) == sorted(f"cn-{MH}-{n}" for n in ("host1", "host2", "host3", "host4", "underlay"))
    ping = subprocess.run(
        ["ip", "netns", "exec", f"cn-{MH}-host4", "ping", "-c", "1", "-W", "2", "10.0.0.3"],
        capture_output=True,
        timeout=10,
    )
    assert ping.returncode == 0
    assert cli("lab", "down").returncode == 0
    assert not [n for n in os.listdir("/var/run/netns") if n.startswith(f"cn-{MH}-")]
    assert "nothing carries containet's mark" in cli("clean").stdout


def test_bad_host_count_changes_nothing(own_lab: None) -> None:
    out = cli("lab", "up", "--hosts", "9")
    assert out.returncode != 0 and "a lab has 1 to 8 hosts, not 9" in out.stderr
    assert not [n for n in os.listdir("/var/run/netns") if n.startswith(f"cn-{MH}-")]
