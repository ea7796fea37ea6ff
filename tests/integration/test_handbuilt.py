"""Setups built by hand (issue 12, "Done when"): the seed's experiments built with plain
`ip`, `ovs-vsctl`, `iptables`, `docker` and `nsenter` commands (tests/handbuilt.py),
carrying none of containet's marks, and containet's own CLI driven on them as a user
would: status finds the containers on their hosts, the doctor and `mtu --fix` work on
docker names and IDs, `clean` leaves them alone.

One lab for the module, in its own instance; each setup is built once (a class each)
and taken away after its tests. The last exp1 test runs `containet clean`, which takes
the lab down: the next setup brings it up again. Real mode runs on this machine's root
namespace with an OVS of the test's own, on names prefixed cn-hb."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import handbuilt as hb
import pytest
import tests_support as support
from handbuilt import Built

pytestmark = pytest.mark.lab

HB = f"{os.environ['CONTAINET_INSTANCE'][:6]}hb"  # this module's own instance
#: how the text status may say that a container is not containet's (the spelling is the product's)
NOT_OURS = re.compile(r"not ours|not containet's|not managed|unmanaged|foreign|by hand|hand-built|external")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return support.run_cli(HB, *args, timeout=timeout)


def said(out: subprocess.CompletedProcess[str]) -> str:
    """What containet printed, for assertion messages."""
    return f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"


def cli_json(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], Any]:
    out = cli(*args, "--json", timeout=timeout)
    try:
        return out, json.loads(out.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"`containet {' '.join(args)} --json` printed no JSON: {said(out)}")


def container(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in snapshot["containers"] if name in (c.get("name"), c.get("docker_name"))]
    assert found, f"{name} not in status --json: {[c.get('name') for c in snapshot['containers']]}"
    return found[0]


def host_section(status_text: str, host: str) -> list[str]:
    """The lines of `containet status` under one host's heading."""
    lines, inside = [], False
    for line in status_text.splitlines():
        if line and not line[0].isspace():
            inside = line.split()[0] == host
        elif inside:
            lines.append(line)
    return lines


def assert_shown(status_text: str, c: Built) -> None:
    rows = [line for line in host_section(status_text, c.host) if c.name in line]
    assert rows, f"{c.name} is not shown under {c.host}:\n{status_text}"
    row = rows[0]
    assert c.host_veth in row and c.attached_to in row, f"attachment missing: {row!r}"
    assert NOT_OURS.search(row), f"not marked as not containet's: {row!r}"


def assert_in_status_json(snapshot: dict[str, Any], c: Built) -> None:
    got = container(snapshot, c.name)
    want = {"host": c.host, "host_veth": c.host_veth, "attached_to": c.attached_to, "ours": False}
    assert {k: got.get(k) for k in want} == want
    eth0 = [i for i in got.get("interfaces", []) if i["name"] == "eth0"]
    assert eth0 and f"{c.ip}/24" in eth0[0]["addresses"]


def first_failure(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`containet doctor A B --json`, which must fail; returns its first failing check."""
    out, report = cli_json("doctor", *args)
    assert out.returncode != 0, f"doctor found nothing wrong: {said(out)}"
    first = report.get("first_failure")
    assert first is not None, said(out)
    return out, first


def iperf_received_bps(src: str, dst: str) -> float:
    out, result = cli_json("iperf", src, dst, "-t", "2", timeout=60)
    assert out.returncode == 0, said(out)
    return float(result["received_bps"])


def ensure_lab() -> None:
    up = cli("lab", "up")  # a no-op when it is up already
    assert up.returncode == 0, said(up)


@pytest.fixture(scope="module")
def lab() -> Iterator[None]:
    hb.teardown(HB)  # leftovers of a crashed earlier run
    cli("clean")
    try:
        ensure_lab()
        yield
    finally:
        hb.teardown(HB)
        cli("clean")


# --- exp1 by hand: docker0 + OVS br0 + GRE, MTU 1500 (the trap) ------------------------------
@pytest.fixture(scope="class")
def exp1(lab: None) -> Iterator[tuple[Built, ...]]:
    ensure_lab()
    hb.teardown(HB)
    try:
        yield hb.exp1_gre(HB, mtu=1500)
    finally:
        hb.teardown(HB)


class TestExp1GreByHand:
    def test_the_builder_made_the_mtu_trap(self, exp1: tuple[Built, ...]) -> None:
        web1, web2 = exp1
        assert hb.ping(web1, web2.ip) and hb.ping(web2, web1.ip)
        assert hb.ping(web1, web2.ip, size=1400, df=True)
        assert not hb.ping(web1, web2.ip, size=1472, df=True)  # 1500 B does not fit GRE

    def test_status_shows_them_on_their_hosts_as_not_containets(self, exp1: tuple[Built, ...]) -> None:
        out = cli("status")
        assert out.returncode == 0, said(out)
        for c in exp1:
            assert_shown(out.stdout, c)

    def test_status_json_has_host_attachment_and_ours_false(self, exp1: tuple[Built, ...]) -> None:
        out, snapshot = cli_json("status")
        assert out.returncode == 0, said(out)
        for c in exp1:
            assert_in_status_json(snapshot, c)

    def test_doctor_first_failure_is_the_mtu_with_a_fix(self, exp1: tuple[Built, ...]) -> None:
        out, first = first_failure("hb-web1", "hb-web2")
        assert first["name"] == "MTU", said(out)
        assert first["fix"] and first["fix_command"], first

    def test_doctor_accepts_docker_ids(self, exp1: tuple[Built, ...]) -> None:
        web1, web2 = exp1
        out, first = first_failure(web1.id, web2.short_id)
        assert first["name"] == "MTU", said(out)

    def test_tcp_stalls_before_the_fix(self, exp1: tuple[Built, ...]) -> None:
        assert iperf_received_bps("hb-web1", "hb-web2") < 1e6

    def test_mtu_fix_then_iperf_has_real_throughput(self, exp1: tuple[Built, ...]) -> None:
        web1, web2 = exp1
        fix = cli("mtu", "hb-web1", "hb-web2", "--fix")
        assert fix.returncode == 0, said(fix)
        assert hb.ping(web1, web2.ip, size=1400, df=True)  # still talks after the fix
        assert iperf_received_bps("hb-web1", "hb-web2") > 10e6

    def test_doctor_is_ok_after_the_fix(self, exp1: tuple[Built, ...]) -> None:
        out = cli("doctor", "hb-web1", "hb-web2")
        assert out.returncode == 0, said(out)

    def test_ping_iperf_pingall_by_docker_name(self, exp1: tuple[Built, ...]) -> None:
        ping = cli("ping", "hb-web1", "hb-web2", "-c", "2", "-i", "0.2")
        assert ping.returncode == 0 and "2 received" in ping.stdout, said(ping)
        iperf = cli("iperf", "hb-web2", "hb-web1", "-t", "1", timeout=60)
        assert iperf.returncode == 0 and "received" in iperf.stdout, said(iperf)
        out, result = cli_json("pingall", "-c", "1", "-W", "1")
        assert out.returncode == 0, said(out)
        assert {"hb-web1", "hb-web2"} <= set(result["names"]), result["names"]
        pair = [c for c in result["cells"] if {c["src"], c["dst"]} == {"hb-web1", "hb-web2"}]
        assert len(pair) == 2 and all(c["result"]["received"] == 1 for c in pair), pair

    def test_ping_accepts_docker_ids(self, exp1: tuple[Built, ...]) -> None:
        web1, web2 = exp1
        out = cli("ping", web1.short_id, web2.short_id, "-c", "2", "-i", "0.2")
        assert out.returncode == 0 and "2 received" in out.stdout, said(out)

    def test_clean_leaves_hand_built_containers_in_place(self, exp1: tuple[Built, ...]) -> None:
        """Last of the class: `clean` takes the lab (our marked namespaces) down."""
        dry = cli("clean", "--dry-run")
        assert dry.returncode == 0, said(dry)
        for c in exp1:
            assert c.name not in dry.stdout and c.short_id not in dry.stdout, dry.stdout
        clean = cli("clean")
        assert clean.returncode == 0, said(clean)
        for c in exp1:
            state = hb.run("docker", "inspect", "-f", "{{.State.Running}}", c.name, check=False)
            assert state.stdout.strip() == "true", f"{c.name} is gone after clean: {state.stderr}"

    def test_clean_dry_run_of_the_default_instance_spares_them_too(self, exp1: tuple[Built, ...]) -> None:
        """A user without CONTAINET_INSTANCE: the image containet built offline must not make
        every container run from it containet's. `--dry-run` only lists (nothing changes)."""
        dry = support.run_cli("", "clean", "--dry-run")
        assert dry.returncode == 0, said(dry)
        for c in exp1:
            assert c.name not in dry.stdout and c.short_id not in dry.stdout, dry.stdout


# --- exp2 by hand with the seed's to-do: VXLAN -----------------------------------------------
@pytest.fixture(scope="class")
def vxlan(lab: None) -> Iterator[tuple[Built, ...]]:
    ensure_lab()
    hb.teardown(HB)
    try:
        yield hb.exp2_vxlan(HB, mtu=1450)
    finally:
        hb.teardown(HB)


class TestVxlanByHand:
    def test_the_builder_made_a_working_vxlan(self, vxlan: tuple[Built, ...]) -> None:
        vx1, vx2 = vxlan
        assert hb.ping(vx1, vx2.ip) and hb.ping(vx2, vx1.ip)
        assert hb.ping(vx1, vx2.ip, size=1422, df=True)  # 1450 fits VXLAN over 1500

    def test_status_shows_the_vxlan_tunnel_on_each_host(self, vxlan: tuple[Built, ...]) -> None:
        out, snapshot = cli_json("status")
        assert out.returncode == 0, said(out)
        for host in hb.HOSTS:
            (h,) = [h for h in snapshot["hosts"] if h["name"] == host]
            ports = [p for b in h["ovs_bridges"] if b["name"] == "br0" for p in b["ports"]]
            tunnel = [p for p in ports if p["name"] == "vxlan0"]
            assert tunnel, f"no vxlan0 on {host}: {ports}"
            assert tunnel[0]["type"] == "vxlan"
            assert ["remote_ip", hb.UNDERLAY[hb.PEER[host]]] in tunnel[0]["options"]
        text = cli("status")
        for host in hb.HOSTS:
            rows = [line for line in host_section(text.stdout, host) if "vxlan0" in line]
            want = f"remote_ip={hb.UNDERLAY[hb.PEER[host]]}"
            assert rows and "vxlan" in rows[0].split("vxlan0", 1)[1] and want in rows[0], said(text)

    def test_status_shows_the_containers_on_their_hosts(self, vxlan: tuple[Built, ...]) -> None:
        out, snapshot = cli_json("status")
        assert out.returncode == 0, said(out)
        for c in vxlan:
            assert_in_status_json(snapshot, c)
        text = cli("status")
        for c in vxlan:
            assert_shown(text.stdout, c)

    def test_doctor_is_ok_when_mtu_fits_and_offload_is_off(self, vxlan: tuple[Built, ...]) -> None:
        out = cli("doctor", "hb-vx1", "hb-vx2")
        assert out.returncode == 0, said(out)

    def test_a_wrong_remote_ip_is_the_first_failure(self, vxlan: tuple[Built, ...]) -> None:
        host1 = hb.lab_host(HB, "host1")
        host1.vsctl("set", "interface", "vxlan0", "options:remote_ip=10.0.0.9")
        try:
            out, first = first_failure("hb-vx1", "hb-vx2")
            assert first["name"] == "remote_ip", said(out)
        finally:
            host1.vsctl("set", "interface", "vxlan0", "options:remote_ip=10.0.0.4")


# --- exp3 by hand: VLAN tags set with ovs-vsctl ----------------------------------------------
@pytest.fixture(scope="class")
def vlan(lab: None) -> Iterator[tuple[Built, ...]]:
    ensure_lab()
    hb.teardown(HB)
    try:
        yield hb.exp3_vlan(HB, tags=(10, 20, 10, 20))
    finally:
        hb.teardown(HB)


class TestVlanByHand:
    def test_the_builder_made_two_vlans(self, vlan: tuple[Built, ...]) -> None:
        vl1, _, vl3, vl4 = vlan
        assert hb.ping(vl1, vl3.ip)  # tag 10 on both hosts
        assert not hb.ping(vl1, vl4.ip, count=1)  # 10 -> 20

    def test_doctor_names_the_vlan_tag_on_different_tags(self, vlan: tuple[Built, ...]) -> None:
        out, first = first_failure("hb-vl1", "hb-vl4")
        assert first["name"] == "VLAN tag", said(out)

    def test_doctor_is_ok_on_the_same_tag(self, vlan: tuple[Built, ...]) -> None:
        out = cli("doctor", "hb-vl1", "hb-vl3")
        assert out.returncode == 0, said(out)

    def test_a_tag_changed_by_hand_is_followed(self, vlan: tuple[Built, ...]) -> None:
        vl4 = vlan[3]
        host2 = hb.lab_host(HB, vl4.host)
        hb.set_tag(host2, vl4.host_veth, 10)
        try:
            out = cli("doctor", "hb-vl1", "hb-vl4")
            assert out.returncode == 0, said(out)
        finally:
            hb.set_tag(host2, vl4.host_veth, 20)

    def test_pingall_shows_the_different_tag_pairs_failing(self, vlan: tuple[Built, ...]) -> None:
        out = cli("pingall", "-c", "1", "-W", "1")
        # no scenario is active, so there is no expectation: the counts are what it saw
        assert re.search(r"\b12 pairs, 4 reachable\b", out.stdout), said(out)
        js, result = cli_json("pingall", "-c", "1", "-W", "1")
        reached = {(c["src"], c["dst"]) for c in result["cells"] if c["result"]["received"] > 0}
        same_tag = {(a.name, b.name) for a in vlan for b in vlan if a is not b and a.tag == b.tag}
        assert reached == same_tag, said(js)


# --- real mode: containers containet did not start, on this machine's own OVS ----------------------
@pytest.fixture
def real_ovs() -> Iterator[str]:
    """An OVS in the root namespace like a VM's own (its own run directory, stopped after)."""
    from workbench.host import Place
    from workbench.ovs import OvsPaths, start_daemons, stop_daemons

    paths = OvsPaths(Path(f"/run/containet-hbovs-{HB}"))
    db = f"unix:{paths.sock}"
    stop_daemons(paths)
    hb.teardown_real(None)  # containers and veths of a crashed run (their bridge died with its OVS)
    start_daemons(Place.root(), paths)
    try:
        yield db
    finally:
        try:
            hb.teardown_real(db)
        finally:
            stop_daemons(paths)
            subprocess.run(["rm", "-rf", str(paths.run_dir)], check=False)


def test_real_mode_sees_and_pings_hand_built_containers(real_ovs: str) -> None:
    r1, r2 = hb.real_pair(real_ovs)
    assert hb.ping(r1, r2.ip)  # the builder works
    real = ("--real", "--host", "host1", "--ovs-db", real_ovs)
    out, snapshot = cli_json(*real, "status")
    assert out.returncode == 0, said(out)
    for c in (r1, r2):
        assert_in_status_json(snapshot, c)
    ping = cli(*real, "ping", "hb-r1", "hb-r2", "-c", "2", "-i", "0.2")
    assert ping.returncode == 0 and "2 received" in ping.stdout, said(ping)
    # the doctor walks them too (same host: veth, OVS port, the bridge between them)
    doctor = cli(*real, "doctor", "hb-r1", "hb-r2", "--json")
    assert doctor.returncode == 0, said(doctor)
    report = json.loads(doctor.stdout)
    assert report["ok"] and report["src_host"] == report["dst_host"] == "host1", report["summary"]
    assert any(h["name"].startswith("veth cn-hbr1") for h in report["hops"]), report["hops"]
