"""OVN: the seed's network on a distributed engine -- one logical switch that spans
every host, Geneve tunnels built by ovn-controller itself, no spanning tree."""

from __future__ import annotations

from pathlib import Path

from workbench import actions as a
from workbench.lab import underlay_ip
from workbench.marks import RUN_DIR
from workbench.ovn import BR_INT, NB_PORT, SB_PORT, OvnDb, tcp_remote
from workbench.setup import Setup
from workbench.steps import Plan, Step

from .common import SegmentOf, carries, run_containers

NAME = "ovn"
TITLE = "OVN logical switch"
SUMMARY = (
    "OVN central on host1, ovn-controller on every host: one logical switch for the subnet, "
    "a logical port per container, Geneve tunnels built by OVN."
)

DEFAULT_SWITCH = "ls0"
#: a container's logical switch (ovn-vlan: one per VLAN)


def _run_dir(setup: Setup, host: str) -> str:
    h = next(h for h in setup.hosts if h.name == host)
    return str(h.run_dir or RUN_DIR / host)


def central(setup: Setup) -> list[Step]:
    hub = setup.hosts[0]
    run_dir = _run_dir(setup, hub.name)
    return [
        a.ovn_database(
            hub.name,
            run_dir,
            "nb",
            hub.underlay_ip,
            why=f"OVN's northbound database holds the network as an operator thinks of it: "
            f"logical switches and ports. One ovsdb-server on {hub.name}, on a local socket and on "
            f"the underlay ({hub.underlay_ip}:{NB_PORT}).",
        ),
        a.ovn_database(
            hub.name,
            run_dir,
            "sb",
            hub.underlay_ip,
            why=f"The southbound database is what the hosts read: chassis, logical flows, which "
            f"port is bound where. Every ovn-controller connects to it at {hub.underlay_ip}:{SB_PORT}.",
        ),
        a.ovn_northd(
            hub.name,
            run_dir,
            why="ovn-northd turns the northbound's switches and ports into logical flows in the "
            "southbound, and reports back which ports are up.",
        ),
    ]


def remotes(setup: Setup) -> tuple[str, str]:
    """The NB and SB remotes this plan writes and reads: host1's run directory's
    sockets in the lab; in real mode host1's databases on the underlay."""
    hub = setup.hosts[0]
    if hub.real:
        ip = underlay_ip(1)
        return tcp_remote(ip, "nb"), tcp_remote(ip, "sb")
    run_dir = Path(_run_dir(setup, hub.name))
    return OvnDb(run_dir, "nb").remote, OvnDb(run_dir, "sb").remote


def system_ovn(setup: Setup) -> list[Step]:
    """Real mode (this machine is one of the seed's VMs): the system's OVN, Debian's
    ovn-central on host1 and ovn-host on every VM; each host's containet adds its own
    containers' logical ports to host1's northbound."""
    host = setup.hosts[0]
    nb, sb = remotes(setup)
    central = host.index == 1
    sock = host.ovs_db.removeprefix("unix:")
    return [
        a.system_ovn_central(
            host.name,
            nb,
            sb,
            sock,
            local=central,
            why="OVN central is the system's (the ovn-central package on host1): its northbound "
            f"holds the logical network, its southbound what the hosts read, both on the underlay "
            f"({nb}, {sb}). "
            + (
                "Started the package's way if it does not run; never stopped by containet."
                if central
                else "It runs on host1; this host only uses it."
            ),
        ),
        a.ovn_chassis(
            host.name,
            sb,
            host.underlay_ip,
            datapath=host.datapath,
            why=f"Tells the system's OVS (external_ids, read by ovn-controller) where the southbound "
            f"is, that {host.name} is its chassis name, and to tunnel in Geneve from "
            f"{host.underlay_ip}. What these settings replace is kept and put back by undo.",
        ),
        a.system_ovn_controller(
            host.name,
            sock,
            why="ovn-controller is the system's (the ovn-host package): it registers the chassis, "
            f"makes {BR_INT} and builds a Geneve tunnel to every other chassis. Started the "
            "package's way if it does not run; never stopped by containet.",
        ),
    ]


def chassis(setup: Setup) -> list[Step]:
    hub = setup.hosts[0]
    steps = []
    for host in setup.hosts:
        run_dir = _run_dir(setup, host.name)
        steps += [
            a.ovs_bridge(
                host.name,
                BR_INT,
                datapath=host.datapath,
                fail_mode="secure",
                why="The integration bridge: containers' ports and OVN's tunnels go here. "
                "ovn-controller would create it; made here it carries containet's mark, "
                "so undo and clean know it is ours. Secure from the start, as ovn-controller "
                "wants it: switched later, while the controller already installs flows, OVS "
                "flushes every flow of the bridge and the controller never learns it (measured "
                "here: about one apply in fifty, a chassis that drops everything).",
            ),
            a.ovn_chassis(
                host.name,
                f"tcp:{hub.underlay_ip}:{SB_PORT}",
                host.underlay_ip,
                datapath=host.datapath,
                why=f"Tells this host's OVS (external_ids, read by ovn-controller) where the "
                f"southbound is, that {host.name} is its chassis name, and to tunnel in Geneve "
                f"from its underlay address {host.underlay_ip}.",
            ),
            a.ovn_controller(
                host.name,
                run_dir,
                why="ovn-controller registers the chassis, programs br-int from the logical flows "
                "and creates a Geneve port to every other chassis by itself: no tunnel by hand, "
                "no loop, no spanning tree. Started in the host's namespace on its OVS socket.",
            ),
        ]
    return steps


def build(setup: Setup, name: str, title: str, summary: str, switch_of: SegmentOf) -> Plan:
    hub = setup.hosts[0]
    nb, sb = remotes(setup)
    switches = sorted({switch_of(c) for c in setup.all_containers} or {DEFAULT_SWITCH})
    mtu = setup.container_mtu("geneve")
    gateway = setup.rc(hub.name).bridge_ip
    steps = system_ovn(setup) if hub.real else central(setup) + chassis(setup)
    steps += [
        a.logical_switch(
            hub.name,
            nb,
            sw,
            why=f"One layer-2 segment for {setup.rc(hub.name).subnet} that spans every chassis"
            + (": a switch per VLAN keeps them apart, as tags did in exp3." if len(switches) > 1 else "."),
        )
        for sw in switches
    ]
    steps += [
        a.logical_port(
            hub.name,
            nb,
            switch_of(spec),
            spec,
            why=f"The logical port {spec.name} with its MAC and IP: OVN answers ARP for it and "
            "delivers to it wherever it is bound.",
        )
        for spec in setup.all_containers
    ]
    steps += run_containers(setup)
    steps += [
        a.ovn_plumb(
            spec,
            BR_INT,
            gateway,
            mtu,
            why=f"A veth pair, eth0 inside with {spec.cidr} and the logical port's MAC; the host end "
            f"becomes a port of {BR_INT} with external_ids:iface-id={spec.name}, so ovn-controller "
            f"binds the logical port on {spec.host}. MTU {mtu} fits Geneve; checksum offload is off "
            "(the userspace datapath forwards frames as they are).",
        )
        for spec in setup.all_containers
    ]
    steps.append(
        a.ovn_ready(
            nb,
            sb,
            tuple(c.name for c in setup.all_containers),
            tuple(h.name for h in setup.hosts),
            why="Writing the northbound is instant, the network is not: ovn-northd computes flows, "
            "each ovn-controller binds its ports and installs them. This waits (30 s at most) until "
            "every logical port is up, every chassis has its tunnels and every ovn-controller has "
            "caught up with the northbound (as `--wait=hv` does), so applied means ready.",
        )
    )
    groups = {c.name: switch_of(c) for c in setup.all_containers}
    steps += carries(
        setup,
        switch_of,
        waiting="Ports up and controllers caught up say the flows are written, not that "
        "Geneve carries frames",
        within="on each logical switch, ",
        after=" An ovn-controller that crashed and was restarted by its monitor reprograms "
        "br-int from scratch, and this waits for that too.",
    )
    expect = {"all_talk": True} if len(switches) == 1 else {"same_group_only": groups}
    return Plan(name, title, summary, tuple(steps), expect=expect)


def plan(setup: Setup) -> Plan:
    return build(setup, NAME, TITLE, SUMMARY, lambda _c: DEFAULT_SWITCH)
