"""The OVN scenarios' plans (issue 16): one plan shape for 2 to 8 hosts, the commands
shown, the isolation variant's expectation (no root, nothing runs)."""

from __future__ import annotations

import pytest

from workbench.engine import Engine
from workbench.intents import TunnelsCarry
from workbench.intents.ovn import LogicalPort, OvnReady
from workbench.measure.pingall import Member, expectations
from workbench.ovn import Controller, OvnDb, mac_for
from workbench.steps import Plan


def plan(name: str, hosts: int) -> Plan:
    return Engine(hosts=hosts).plan(name)


def kinds(p: Plan) -> list[str]:
    return [s.id.split("/", 1)[1].split(":")[0] for s in p.steps]


@pytest.mark.parametrize("hosts", [2, 4, 8])
def test_one_plan_shape_for_two_to_eight_hosts(hosts: int) -> None:
    p = plan("ovn", hosts)
    k = kinds(p)
    containers = 2 * hosts
    # central once, on host1
    assert [s.id for s in p.steps[:3]] == ["host1/ovn-nb-db", "host1/ovn-sb-db", "host1/ovn-northd"]
    # a chassis per host: br-int, external_ids, ovn-controller -- and no tunnel, no RSTP by hand
    assert k.count("ovs") == k.count("ovn-chassis") == k.count("ovn-controller") == hosts
    assert "tunnel" not in k and "rstp" not in k and "rstp-converged" not in k
    assert k.count("ls") == 1 and k.count("lsp") == containers
    assert k.count("run") == k.count("plumb") == containers
    # the last two steps wait, barriers that change nothing: OVN's own view of ready,
    # then traffic -- each host's first container reaches every other host's first, and
    # the other container of each host the first of the next host
    ready, carry = p.steps[-2:]
    assert ready.id == "/ovn-ready" and ready.readiness and ready.host == ""
    assert f"wait until {containers} logical ports are up and {hosts} chassis tunnelled" == ready.title
    assert carry.id == "/tunnels-carry" and carry.readiness and carry.host == ""
    assert isinstance(carry.intent, TunnelsCarry) and len(carry.intent.probes) == hosts * (hosts - 1) + hosts
    assert {ip for _h, _src, ip in carry.intent.probes} == {f"172.15.42.{100 + i}" for i in range(hosts)}
    assert p.expect == {"all_talk": True}
    assert len(p.steps) == 3 + 3 * hosts + 1 + 3 * containers + 2


def test_commands_are_what_runs() -> None:
    p = plan("ovn", 2)
    run1 = "/run/containet/"
    nb = next(s for s in p.steps if s.id == "host1/ovn-nb-db")
    server = nb.commands[1].text
    assert server.startswith("ovsdb-server ") and "--remote=ptcp:6641:10.0.0.3" in server and run1 in server
    assert nb.commands[0].text.endswith("/usr/share/ovn/ovn-nb.ovsschema")

    chassis = next(s for s in p.steps if s.id == "host2/ovn-chassis")
    text = chassis.commands[0].text
    assert text.startswith("ovs-vsctl set open_vswitch . ")
    for part in (
        "external_ids:ovn-remote=tcp:10.0.0.3:6642",
        "external_ids:ovn-encap-type=geneve",
        "external_ids:ovn-encap-ip=10.0.0.4",
        "external_ids:system-id=host2",
        "external_ids:ovn-bridge-datapath-type=netdev",
    ):
        assert part in text

    br_int = next(s for s in p.steps if s.id == "host2/ovs:br-int")
    assert "fail_mode=secure" in br_int.commands[0].text  # from its creation: see scenarios.ovn

    ctl = next(s for s in p.steps if s.id == "host2/ovn-controller")
    assert ctl.commands[0].text.startswith("env OVS_RUNDIR=")
    assert " ovn-controller unix:" in ctl.commands[0].text and "/host2/db.sock" in ctl.commands[0].text

    lsp = next(s for s in p.steps if s.id == "host1/lsp:h2-a")
    assert (
        "lsp-add ls0 h2-a -- lsp-set-addresses h2-a '0a:00:ac:0f:2a:65 172.15.42.101'" in lsp.commands[0].text
    )

    plumb = next(s for s in p.steps if s.id == "host2/plumb:h2-a")
    texts = [c.text for c in plumb.commands]
    assert any("peer name eth0 address 0a:00:ac:0f:2a:65 mtu 1442" in t for t in texts)
    assert "ovs-vsctl add-port br-int cn-h2-a -- set interface cn-h2-a external_ids:iface-id=h2-a" in texts
    assert "ethtool -K eth0 tx off" in texts


def test_rendered_for_the_lab_runs_in_the_host_namespace() -> None:
    script = Engine(hosts=2).export("ovn")
    assert "ip netns exec cn-" in script and "-host1 ovn-northd --ovnnb-db=unix:" in script
    assert "ovs-vsctl --db=unix:" in script  # the host's own OVS


def test_ovn_vlan_has_a_switch_per_vlan_and_expects_exp3s_isolation() -> None:
    p = plan("ovn-vlan", 3)
    switches = [s.id for s in p.steps if "/ls:" in s.id]
    assert switches == ["host1/ls:ls10", "host1/ls:ls20"]
    groups = p.expect["same_group_only"]
    assert groups == {f"h{k}-a": "ls10" for k in (1, 2, 3)} | {f"h{k}-b": "ls20" for k in (1, 2, 3)}
    lsp = next(s for s in p.steps if s.id == "host1/lsp:h2-b")
    assert "lsp-add ls20 h2-b" in lsp.commands[0].text
    # the traffic barrier probes within a switch only: across would never answer
    switch_of_ip = {s.intent.ip: s.intent.switch for s in p.steps if isinstance(s.intent, LogicalPort)}
    carry = p.steps[-1].intent
    assert isinstance(carry, TunnelsCarry) and len(carry.probes) == 2 * 3 * 2
    assert all(groups[src.name] == switch_of_ip[ip] for _host, src, ip in carry.probes)


def test_same_group_expectation() -> None:
    from workbench.host import Place

    members = [Member(n, f"172.15.42.{i}", Place.root()) for i, n in enumerate(("a1", "a2", "b1", "x"))]
    want = expectations({"same_group_only": {"a1": "ls10", "a2": "ls10", "b1": "ls20"}}, members)
    assert want[("a1", "a2")] and want[("a2", "a1")]
    assert not want[("a1", "b1")] and not want[("b1", "a2")]
    assert ("x", "a1") not in want  # the map does not name it: no expectation


def test_files_and_mac() -> None:
    from pathlib import Path

    run = Path("/run/containet/t/host1")
    assert OvnDb(run, "sb").remote == "unix:/run/containet/t/host1/ovnsb_db.sock"
    assert Controller(run).pidfile == run / "ovn-controller.pid"
    assert mac_for("172.15.42.100") == "0a:00:ac:0f:2a:64"


def test_ovn_source_waits_quietly_while_no_ovn_runs(tmp_path: object) -> None:
    """The TUI's NB/SB monitor on a lab without OVN: no state, no change, stops at once."""
    import time
    from pathlib import Path

    from workbench.host import Host, Place
    from workbench.inventory.watch import OvnSource, Watcher

    run = Path(str(tmp_path))
    host = Host("host1", 1, "10.0.0.3", Place.root(), f"unix:{run}/db.sock", run_dir=run)
    seen: list[object] = []
    src = OvnSource(host, "nb", seen.append, seen.append)
    assert (
        src.source == "ovn-nb" and src.database == "OVN_Northbound" and src.remote.endswith("ovnnb_db.sock")
    )
    src.start()
    time.sleep(0.7)
    t0 = time.monotonic()
    src.stop()
    src.join(2)
    assert not src.is_alive() and time.monotonic() - t0 < 1.0
    assert seen == []
    kinds = [s.source for s in Watcher([host], seen.append, docker=False, netlink=False).sources]
    assert kinds == ["ovs", "ovn-nb", "ovn-sb"]


@pytest.mark.parametrize("host", ["host1", "host3"])
def test_real_mode_uses_the_systems_ovn(host: str) -> None:
    """On a VM: no daemon, database or br-int of containet's; host1's central over the
    underlay; this host's chassis settings and containers only; the wait is for its own."""
    engine = Engine(mode="real", real_host=host, ovs_db="unix:/run/sysovs/db.sock")
    p = engine.plan("ovn")
    k = kinds(p)
    assert k[:3] == ["ovn-central", "ovn-chassis", "ovn-controller"]
    assert "ovn-nb-db" not in k and "ovn-northd" not in k and "ovs" not in k  # br-int: the controller's
    central = p.steps[0]
    shown = [c.text for c in central.commands]
    assert shown[-1] == "ovn-nbctl --db=tcp:10.0.0.3:6641 get-connection"
    starts = host == "host1"  # only host1 runs (and so may start) the central
    assert any("start" in t and "ovn" in t for t in shown) == starts
    index = int(host[4:])
    chassis = next(s for s in p.steps if s.id == f"{host}/ovn-chassis").commands[0].text
    assert "external_ids:ovn-remote=tcp:10.0.0.3:6642" in chassis
    assert f"external_ids:ovn-encap-ip=10.0.0.{index + 2}" in chassis and f"system-id={host}" in chassis
    ctl = next(s for s in p.steps if s.id == f"{host}/ovn-controller").commands[0].text
    assert ctl.endswith(("ovn-ctl start_controller", "systemctl start ovn-controller"))
    lsp = next(s for s in p.steps if s.id == f"{host}/lsp:h{index}-a").commands[0].text
    assert lsp.startswith("ovn-nbctl --db=tcp:10.0.0.3:6641 lsp-add ls0 ")
    assert f"external_ids:containet.host={host}" in lsp
    last = p.steps[-1].intent
    assert isinstance(last, OvnReady)
    assert last.ports == (f"h{index}-a", f"h{index}-b") and last.hosts == (host,)
    assert last.sb == "tcp:10.0.0.3:6642"


def test_the_system_ovn_is_started_the_packages_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from workbench.ovn import OVN_CTL, SystemOvn

    monkeypatch.setenv("OVN_RUNDIR", "/run/elsewhere")
    system = SystemOvn("/run/sysovs/db.sock")
    assert system.run_dir == Path("/run/elsewhere")  # ovn-ctl's own variable
    if not Path("/run/systemd/system").is_dir():
        assert system.start_argv("controller") == [
            "env",
            "OVS_RUNDIR=/run/sysovs",
            OVN_CTL,
            "start_controller",
        ]
        assert system.start_argv("central")[-1] == "start_northd"
    monkeypatch.delenv("OVN_RUNDIR")
    assert SystemOvn("/x/db.sock").run_dir == Path("/var/run/ovn")


def test_chassis_settings_keep_what_they_replace() -> None:
    import json

    from workbench.marks import MARK_VALUE
    from workbench.ovn import SAVED, nb_of, saved_settings

    blob = {"mark": MARK_VALUE, "replaced": {"ovn-remote": "tcp:1.2.3.4:6642", "system-id": None}}
    assert saved_settings({SAVED: json.dumps(blob)}) == blob["replaced"]
    assert saved_settings({SAVED: json.dumps({**blob, "mark": "another"})}) is None  # another instance's
    assert saved_settings({"ovn-remote": "x"}) is None and saved_settings({SAVED: "{"}) is None
    assert nb_of("tcp:10.0.0.3:6642") == "tcp:10.0.0.3:6641" and nb_of("unix:/x.sock") is None


def test_the_vagrantfile_provisions_what_real_mode_expects() -> None:
    """The Vagrantfile cannot run here: read it against what the code reaches for."""
    import re
    from pathlib import Path

    from scenarios.ovn import remotes
    from workbench.lab import underlay_ip

    root = Path(__file__).resolve().parents[2]
    text = (root / "Vagrantfile").read_text()
    consts = dict(re.findall(r'^(OVN_\w+) = "?([0-9.]+)"?', text, re.M))
    assert consts == {"OVN_CENTRAL": underlay_ip(1), "OVN_NB_PORT": "6641", "OVN_SB_PORT": "6642"}
    nb, sb = remotes(Engine(mode="real", real_host="host2").setup("ovn"))
    assert (nb, sb) == (f"tcp:{underlay_ip(1)}:6641", f"tcp:{underlay_ip(1)}:6642")
    # each VM's address is the one real mode gives that host
    [ip] = re.findall(r'"private_network", ip: "([^"]+)"', text)
    assert [ip.replace("#{i + 2}", str(i + 2)) for i in range(1, 9)] == [underlay_ip(i) for i in range(1, 9)]
    # host1's NB and SB listen there; ovn-host everywhere, ovn-central on host1 only
    host1, others = text.split('if [ "#{name}" = host1 ]; then', 1)[1].split("else", 1)
    for which, port in (("nbctl", "NB"), ("sbctl", "SB")):
        assert f"ovn-{which} --timeout=30 set-connection ptcp:#{{OVN_{port}_PORT}}:#{{OVN_CENTRAL}}" in host1
    assert (
        "systemctl enable --now ovn-central" in host1 and "disable --now ovn-central" in others.split("fi")[0]
    )
    before = text.split('if [ "#{name}" = host1 ]', 1)[0]
    assert "systemctl enable --now ovn-host" in before.rsplit("SHELL", 1)[-1]
    packages = set(re.findall(r"[\w-]+", (root / "scripts" / "bootstrap.sh").read_text()))
    assert {"ovn-central", "ovn-host"} <= packages
