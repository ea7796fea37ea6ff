"""The fast path (issue 17) on the real lab: `containet compare` measures one pair over
each path beside a raw veth ceiling of the same run, and `lab up --ovs-io afxdp` turns
OVS's data ports to AF_XDP in place (and back). Every assertion is on what the
commands print; traffic goes only to the lab's containers and the compare's own
throwaway namespaces."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workbench.engine import Engine
from workbench.measure.compare import CEIL_NS

pytestmark = pytest.mark.lab

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ok(cli: Cli, *args: str, timeout: float = 120) -> str:
    res = cli(*args, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(args)}: {res.stderr or res.stdout}"
    return res.stdout


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def container_ids(cli: Cli) -> dict[str, str]:
    snap = json.loads(ok(cli, "status", "--json"))
    return {c["name"]: c["id"] for c in snap["containers"]}


def port_types(cli: Cli) -> dict[tuple[str, str], str]:
    snap = json.loads(ok(cli, "status", "--json"))
    return {
        (h["name"], p["name"]): p["type"]
        for h in snap["hosts"]
        for br in h["ovs_bridges"]
        for p in br["ports"]
    }


@pytest.fixture
def exp2(kept: Callable[[str], Any]) -> Engine:
    engine = kept("exp2")
    assert isinstance(engine, Engine)
    return engine


def test_compare_measures_the_applied_path_beside_the_ceiling(exp2: Engine, cli: Cli) -> None:
    data = json.loads(ok(cli, "compare", "-t", "1", "--json"))
    assert (data["src"], data["dst"]) == ("h1-a", "h2-a")
    ceiling, (path,) = data["ceiling"], data["paths"]
    assert ceiling["path"] == "ceiling" and ceiling["bps"] > 0 and ceiling["rtt_ms"] > 0
    assert path["path"] == "exp2" and path["bps"] > 0 and path["rtt_ms"] > 0
    # the tunnel through userspace OVS is slower than a raw veth, on any machine
    assert 0 < path["ratio"] < 1 and path["ratio"] == pytest.approx(path["bps"] / ceiling["bps"])
    assert data["restored"] is None
    assert not {*CEIL_NS} & namespaces()  # the ceiling's namespaces are gone
    # the text table: tests/unit/test_compare.py


def test_compare_switches_paths_and_gives_the_lab_back(exp2: Engine, cli: Cli) -> None:
    res = cli("compare", "-t", "1", "--paths", "vxlan,exp2", timeout=180)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "  vxlan: undo exp2, apply vxlan" in lines
    assert "  restoring: apply exp2" in lines
    measured = [
        line.split()[0] for line in lines if line.startswith("  exp2 ") or line.startswith("  vxlan ")
    ]
    assert measured == ["exp2", "vxlan"]  # the applied path first, where it stood
    assert "exp2 applied again at the end" in res.stdout
    assert ok(cli, "scenario", "list").splitlines()[1].startswith("* exp2")
    # given back ready: pingall at once is clean
    assert json.loads(ok(cli, "pingall", "--json"))["all_passed"] is True


def test_compare_bad_input_is_one_line_and_changes_nothing(exp2: Engine, cli: Cli) -> None:
    before = container_ids(cli)
    for args, says in (
        (("compare", "--paths", "nope"), "unknown path 'nope'"),
        (("compare", "h1-a", "ghost", "--paths", "vxlan"), "ghost"),
    ):
        res = cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and says in res.stderr
    assert container_ids(cli) == before  # nothing rebuilt
    assert ok(cli, "scenario", "list").splitlines()[1].startswith("* exp2")


@pytest.fixture
def packet_io_after(cli: Cli) -> Iterator[None]:
    yield
    cli("lab", "up", "--ovs-io", "packet")  # the session lab goes back to the default


def test_ovs_io_afxdp_reopens_the_ports_in_place(exp2: Engine, cli: Cli, packet_io_after: None) -> None:
    before = container_ids(cli)
    out = ok(cli, "lab", "up", "--ovs-io", "afxdp")
    assert "OVS port I/O afxdp: 6 port(s) reopened, nothing else touched" in out
    types = port_types(cli)
    for host, port in (("host1", "eth1"), ("host1", "cn-h1-a"), ("host2", "eth1"), ("host2", "cn-h2-b")):
        assert types[(host, port)] == "afxdp"
    assert types[("host1", "gre0")] == "gre" and types[("host1", "br0")] == "internal"
    assert container_ids(cli) == before  # no container was touched
    assert json.loads(ok(cli, "pingall", "--json"))["all_passed"] is True  # ready at once

    # tcpdump on an AF_XDP port sees nothing: containet's capture goes through a mirror
    cap = subprocess.Popen(
        [*capture_cmd(), "host1:eth1", "-c", "2", "-t", "10", "--filter", "ip proto 47"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        waited = ok(cli, "ping", "h1-a", "h2-a", "-c", "8", "-i", "0.2")
        assert "8 received" in waited
        out_cap, err_cap = cap.communicate(timeout=20)
    finally:
        cap.kill()
    assert "host1:eth1 (mirror)" in out_cap + err_cap
    assert out_cap.count("GRE 10.0.0.") == 2

    # a container added now gets the lab's port type; the shown command says it
    show = ok(cli, "scenario", "show", "exp2")
    assert "add-port br0 cn-h1-a -- set interface cn-h1-a type=afxdp options:xdp-mode=generic" in show
    back = ok(cli, "lab", "up", "--ovs-io", "packet")
    assert "OVS port I/O packet: 6 port(s) reopened" in back
    assert port_types(cli)[("host1", "eth1")] == ""
    assert json.loads(ok(cli, "pingall", "--json"))["all_passed"] is True


def capture_cmd() -> list[str]:
    import os
    import sys

    os.environ.setdefault("CONTAINET_INSTANCE", "test")
    return [sys.executable, "-m", "workbench.cli", "capture"]


def test_ovs_io_bad_value_is_refused(cli: Cli) -> None:
    res = cli("lab", "up", "--ovs-io", "dpdk")
    assert res.returncode == 2 and "invalid choice: 'dpdk'" in res.stderr
