"""OVN (issue 16): the seed's network as one logical switch over three hosts, its
isolation variant, undo leaving nothing, and a killed ovn-controller found by the
doctor and repaired by re-applying. One lab for the module, in its own instance; no
retry loops: `apply` returns when every logical port is up, so pingall right after
it is clean. The last test leaves ovn applied: the module's `clean` must remove a
running OVN (leftovers). CI budget: the module takes at most 90 s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tests_support as support

pytestmark = pytest.mark.lab

OV = f"{os.environ['CONTAINET_INSTANCE'][:6]}ov"  # this module's own instance
RUN = Path(f"/run/containet/{OV}")
HOSTS = 3
PAIRS = 2 * HOSTS * (2 * HOSTS - 1)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return support.run_cli(OV, *args, timeout=180)


@pytest.fixture(scope="module", autouse=True)
def ovn_lab() -> Iterator[None]:
    cli("clean")
    t0 = time.monotonic()
    up = cli("lab", "up", "--hosts", str(HOSTS))
    assert up.returncode == 0, up.stderr
    print(f"\nlab up --hosts {HOSTS}: {time.monotonic() - t0:.1f} s")
    try:
        yield
    finally:
        cli("clean")
        assert support.leftovers(OV) == support.NOTHING


def pingall() -> dict[str, Any]:
    out = cli("pingall", "--json")
    assert out.stdout, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def unexpected(result: dict[str, Any]) -> dict[str, str]:
    return {f"{c['src']}->{c['dst']}": c["verdict"] for c in result["cells"] if not c["passed"]}


def apply(name: str) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    out = cli("scenario", "apply", name)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    print(f"apply {name}: {time.monotonic() - t0:.1f} s")
    return out


def ovn_processes() -> list[str]:
    """OVN daemons and OVN databases of this instance, found without the project's code."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv).decode(errors="replace")
        if str(RUN) + "/" in text and (
            "ovn" in os.path.basename(argv[0].decode(errors="replace")) or "ovn" in text
        ):
            found.append(f"{pid} {text[:120]}")
    return found


def ovn_files() -> list[str]:
    return sorted(str(p) for p in RUN.glob("host*/*ovn*"))


def ovs_leftovers(snap: dict[str, Any]) -> list[str]:
    """br-int or a Geneve port on any host, as `status --json` reports them."""
    out = []
    for host in snap["hosts"]:
        for br in host["ovs_bridges"]:
            if br["name"] == "br-int":
                out.append(f"{host['name']}: br-int")
            out += [f"{host['name']}: {p['name']}" for p in br["ports"] if p["type"] == "geneve"]
    return out


def test_ovn_vlan_isolates_as_exp3_and_undo_leaves_nothing() -> None:
    applied = apply("ovn-vlan")
    assert "wait until 6 logical ports are up and 3 chassis tunnelled" in applied.stdout
    result = pingall()
    assert unexpected(result) == {}
    assert result["counts"]["reach"] == 12  # 3 on ls10, 3 on ls20, both ways
    assert result["counts"]["isolated"] == 18
    undone = cli("scenario", "undo", "ovn-vlan")
    assert undone.returncode == 0, undone.stderr
    assert ovn_processes() == []
    assert ovn_files() == []
    snap = json.loads(cli("status", "--json").stdout)
    assert ovs_leftovers(snap) == [] and "ovn" not in snap


def test_ovn_every_pair_talks_then_a_killed_controller_is_found_and_repaired() -> None:
    """Apply, pingall at once, status's ovn section, iperf across; then kill -9 of host2's
    ovn-controller: the doctor names it (ovn-trace, ofproto/trace and the tunnels still
    hold: the flows stay in OVS), apply starts it again (one step), pingall is clean
    right after. The scenario stays applied for the module's clean."""
    apply("ovn")
    result = pingall()
    assert len(result["cells"]) == PAIRS and unexpected(result) == {}
    assert result["counts"]["reach"] == PAIRS

    snap = json.loads(cli("status", "--json").stdout)
    geneve = {
        h["name"]: [p for b in h["ovs_bridges"] for p in b["ports"] if p["type"] == "geneve"]
        for h in snap["hosts"]
    }
    assert all(len(ports) == HOSTS - 1 for ports in geneve.values()), geneve  # one hop to each other host
    ovn = snap["ovn"]
    assert ovn["central"] == "host1" and ovn["northd"]
    [ls0] = ovn["switches"]
    assert {p["name"]: (p["up"], p["chassis"]) for p in ls0["ports"]} == {
        f"h{k}-{x}": (True, f"host{k}") for k in range(1, HOSTS + 1) for x in "ab"
    }
    assert [(c["name"], c["controller"], len(c["tunnels"])) for c in ovn["chassis"]] == [
        (f"host{k}", True, HOSTS - 1) for k in range(1, HOSTS + 1)
    ]

    iperf = cli("iperf", "h1-a", "h3-a", "-t", "1", "--json")
    assert iperf.returncode == 0, iperf.stderr
    figure = json.loads(iperf.stdout)
    print(f"iperf h1-a -> h3-a across Geneve: {figure['received_bps'] / 1e6:.0f} Mbit/s")
    assert figure["received_bps"] > 10e6

    pid = int((RUN / "host2" / "ovn-controller.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    doctor = json.loads(cli("doctor", "h1-a", "h2-a", "--json").stdout)
    first = doctor["first_failure"]
    assert (first["hop"], first["name"]) == ("chassis host2", "ovn-controller"), doctor["summary"]
    assert first["fix_command"] == "containet scenario apply ovn"
    hops = [h["name"] for h in doctor["hops"]]
    assert hops[:5] == ["h1-a", "ovn central (host1)", "chassis host1", "logical switch ls0", "host1 br-int"]
    again = apply("ovn")  # ovn-controller, then the wait until it has caught up
    assert "applied 2 step(s)" in again.stdout, again.stdout
    result = pingall()
    assert unexpected(result) == {} and result["counts"]["reach"] == PAIRS
