"""Scenario kvxlan on the real lab (issue 17): the seed's network joined by a kernel VXLAN
device, on 2 and 3 hosts. Right after `scenario apply` pingall is clean (no retry here),
TCP crosses, the doctor names a wrong VNI and a wrong remote broken by hand, `lab up`
repairs inside the handed-over underlay, and undo leaves nothing.

One lab per host count, in this module's own instance: the 2-host tests share one lab
and one apply, then the lab is rebuilt with 3 hosts. Everything goes through the CLI as
a user types it; breakage is made with `ip`/`bridge` in the host's namespace."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import handbuilt as hb
import pytest
import tests_support as support

pytestmark = pytest.mark.lab

KV = f"{os.environ['CONTAINET_INSTANCE'][:6]}kv"  # this module's own instance
MARK = f"containet:{KV}"

_cli: list[support.CliSession] = []


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return _cli[0](*args)


def ok(*args: str) -> str:
    out = cli(*args)
    assert out.returncode == 0, f"containet {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def sh(host: str, *argv: str, check: bool = True) -> str:
    """A command inside a lab host's namespace (as a user breaks things by hand)."""
    out = subprocess.run(
        ["ip", "netns", "exec", f"cn-{KV}-{host}", *argv], capture_output=True, text=True, timeout=20
    )
    assert not check or out.returncode == 0, out.stderr
    return out.stdout


def as_json(*args: str) -> Any:
    out = cli(*args, "--json")
    assert out.stdout, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def own_lab() -> Iterator[None]:
    _cli.append(support.CliSession(KV))
    try:
        cli("clean")  # leftovers of a crashed run
        yield
    finally:
        try:
            cli("clean")
        finally:
            _cli.pop().close()
        assert support.leftovers(KV) == support.NOTHING


def applied(hosts: int) -> None:
    """A lab of `hosts` hosts with kvxlan applied (each a no-op when it is so already)."""
    ok("lab", "up", "--hosts", str(hosts))
    ok("scenario", "apply", "kvxlan")


@pytest.fixture(scope="module")
def two(own_lab: None) -> str:
    ok("lab", "up", "--hosts", "2")
    return ok("scenario", "apply", "kvxlan")


def pingall_clean(pairs: int) -> None:
    result = as_json("pingall")
    bad = {f"{c['src']}->{c['dst']}": c["verdict"] for c in result["cells"] if not c["passed"]}
    assert bad == {} and result["all_passed"]
    assert result["counts"]["reach"] == pairs and len(result["cells"]) == pairs


def kernel_tunnels() -> dict[str, list[dict[str, Any]]]:
    return {h["name"]: h["kernel_tunnels"] for h in as_json("status")["hosts"]}


def test_two_hosts_talk_right_after_apply_and_tcp_crosses(two: str) -> None:
    assert "kvxlan: applied 1" in two  # 18 steps, and the readiness step when it had to wait
    assert "wait until the tunnels carry frames between host1, host2 (4 pairs)" in two
    pingall_clean(12)  # right after apply: no retry, no wait
    tunnels = kernel_tunnels()
    assert [
        (t["name"], t["vni"], t["remotes"], t["dst_port"], t["local_ip"], t["underlay"], t["mtu"], t["ours"])
        for t in tunnels["host1"]
    ] == [("vxlan0", 42, ["10.0.0.4"], 4789, "10.0.0.3", "eth1", 1450, True)]
    assert tunnels["host2"][0]["remotes"] == ["10.0.0.3"] and tunnels["host2"][0]["bridge"] == "docker0"
    assert "kernel vxlan vxlan0 vni 42 remote 10.0.0.4 dstport 4789" in ok("status")
    iperf = as_json("iperf", "h1-a", "h2-a", "-t", "1")
    assert iperf["received_bps"] > 100e6, iperf  # measured here: 7-12 Gbit/s
    # the handed-over underlay is the healthy state: `lab up` changes nothing
    assert "(nothing changed)" in ok("lab", "up")


def test_lab_up_repairs_inside_the_kernels_underlay(two: str) -> None:
    """A fault in the handed-over underlay is repaired there (address back on eth1),
    not by putting the underlay back on OVS's br-phy."""
    applied(2)
    sh("host1", "ip", "addr", "del", "10.0.0.3/24", "dev", "eth1")
    out = ok("lab", "up")
    assert "host1: eth1 has its underlay address 10.0.0.3/24 again, up" in out
    assert "eth1" not in sh(
        "host1", "ovs-vsctl", f"--db=unix:/run/containet/{KV}/host1/db.sock", "list-ports", "br-phy"
    )
    pingall_clean(12)


def test_doctor_names_a_wrong_remote(two: str) -> None:
    applied(2)
    try:
        sh("host1", "ip", "link", "set", "vxlan0", "type", "vxlan", "remote", "10.0.0.99")
        sh("host1", "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan0", "dst", "10.0.0.4")
        report = as_json("doctor", "h1-a", "h2-a")
        first = report["first_failure"]
        assert (first["hop"], first["name"]) == ("tunnel vxlan0 (host1)", "remote"), report["summary"]
        assert "10.0.0.99" in first["evidence"] and "10.0.0.4" in first["evidence"]
        assert (
            first["fix_command"].startswith("ip -n cn-")
            and "type vxlan remote 10.0.0.4" in first["fix_command"]
        )
        assert "every hop is OK" in ok("doctor", "h1-a", "h2-a", "--fix")
        assert "10.0.0.99" not in sh("host1", "bridge", "fdb", "show", "dev", "vxlan0")
    finally:
        ok("scenario", "apply", "kvxlan")


def test_doctor_names_a_wrong_vni(two: str) -> None:
    """The kernel cannot change a VNI: host2's device is made again by hand with VNI 43."""
    applied(2)
    try:
        sh("host2", "ip", "link", "del", "vxlan0")
        sh("host2", "ip", "link", "add", "vxlan0", "type", "vxlan", "id", "43", "local", "10.0.0.4",
           "remote", "10.0.0.3", "dstport", "4789", "dev", "eth1")  # fmt: skip
        sh("host2", "ip", "link", "set", "vxlan0", "master", "docker0", "mtu", "1450", "up")
        assert [t["ours"] for t in kernel_tunnels()["host2"]] == [False]  # made by hand
        report = as_json("doctor", "h1-a", "h2-a")
        first = report["first_failure"]
        assert (first["hop"], first["name"]) == ("tunnel vxlan0 (host2)", "VNI"), report["summary"]
        assert "VNI 43" in first["evidence"] and "42" in first["evidence"]
    finally:
        sh("host2", "ip", "link", "del", "vxlan0", check=False)  # not ours: undo would leave it
        ok("scenario", "apply", "kvxlan")


def nothing_of_kvxlan(hosts: int) -> None:
    """No VXLAN device or flood entry, no rule of ours; eth1 is br-phy's port again and
    the address is back on br-phy, br-phy unmarked."""
    for i in range(1, hosts + 1):
        host, ip = f"host{i}", f"10.0.0.{i + 2}/24"
        assert sh(host, "ip", "-d", "link", "show", "type", "vxlan") == ""
        assert "00:00:00:00:00:00" not in sh(host, "bridge", "fdb", "show")
        assert MARK not in sh(host, "iptables-save")
        assert "docker0" not in sh(host, "ip", "link", "show")
        db = f"--db=unix:/run/containet/{KV}/{host}/db.sock"
        assert sh(host, "ovs-vsctl", db, "list-ports", "br-phy").split() == ["eth1"]
        assert "containet-underlay" not in sh(
            host, "ovs-vsctl", db, "get", "bridge", "br-phy", "external_ids"
        )
        assert ip in sh(host, "ip", "-br", "addr", "show", "br-phy")
        assert ip not in sh(host, "ip", "-br", "addr", "show", "eth1")
    assert "(nothing changed)" in ok("lab", "up")


def test_two_hosts_undo_leaves_nothing(two: str) -> None:
    applied(2)
    assert "kvxlan: undid 18 step(s)" in ok("scenario", "undo", "kvxlan")
    nothing_of_kvxlan(2)


def test_a_kernel_vxlan_built_by_hand_is_understood(two: str) -> None:
    """The same network made with plain `ip` commands (tests/handbuilt.py), no scenario
    applied, nothing marked: status shows the devices as not containet's, the doctor walks
    them, and a remote changed by hand is its first failure."""
    ok("lab", "up", "--hosts", "2")
    ok("scenario", "undo", "kvxlan")  # nothing to do when the test before took it back
    hb.teardown(KV)
    try:
        kv1, kv2 = hb.kernel_vxlan(KV)
        assert hb.ping(kv1, kv2.ip, size=1422, df=True)
        tunnels = kernel_tunnels()
        assert [(t["vni"], t["remotes"], t["ours"]) for t in tunnels["host1"]] == [(42, ["10.0.0.4"], False)]
        report = as_json("doctor", "hb-kv1", "hb-kv2")
        assert report["ok"], report["summary"]
        assert report["scenario"] is None and "tunnel vxlan0 (host2)" in [h["name"] for h in report["hops"]]
        sh("host1", "ip", "link", "set", "vxlan0", "type", "vxlan", "remote", "10.0.0.99")
        sh("host1", "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan0", "dst", "10.0.0.4")
        first = as_json("doctor", "hb-kv1", "hb-kv2")["first_failure"]
        assert (first["hop"], first["name"]) == ("tunnel vxlan0 (host1)", "remote")
    finally:
        hb.teardown(KV)


def test_three_hosts_head_end_replication(own_lab: None) -> None:
    ok("lab", "up", "--hosts", "3")
    assert "between host1, host2, host3 (9 pairs)" in ok("scenario", "apply", "kvxlan")  # 6 host pairs, 3 b's
    pingall_clean(30)
    remotes = {h: [t["remotes"] for t in ts] for h, ts in kernel_tunnels().items()}
    assert remotes == {
        "host1": [["10.0.0.4", "10.0.0.5"]],
        "host2": [["10.0.0.3", "10.0.0.5"]],
        "host3": [["10.0.0.3", "10.0.0.4"]],
    }
    assert as_json("iperf", "h3-a", "h1-b", "-t", "1")["received_bps"] > 100e6
    assert "kvxlan: undid 27 step(s)" in ok("scenario", "undo", "kvxlan")
    nothing_of_kvxlan(3)
