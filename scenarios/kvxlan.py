"""The seed's network joined by the kernel instead of Open vSwitch: per host a linux
bridge with a kernel VXLAN device in it (what Docker's overlay driver and flannel do)."""

from __future__ import annotations

from workbench import actions as a
from workbench.errors import BadInput
from workbench.lab import NIC, PHY_BRIDGE, UNDERLAY_PREFIX
from workbench.setup import Setup
from workbench.steps import Plan, Step
from workbench.tunrc import Tunrc

from .common import carries, run_containers

NAME = "kvxlan"
TITLE = "Kernel VXLAN"
SUMMARY = (
    "No OVS on the path: containers on a linux bridge docker0 with a kernel VXLAN device "
    "(VNI from the tunrc, port 4789) in it, flooding to every other host."
)


def device_name(rc: Tunrc) -> str:
    """The tunrc's TUN_IF when it names a VXLAN tunnel, else vxlan0 (the seed's is gre0)."""
    return rc.tun_if if rc.tun_type == "vxlan" else "vxlan0"


def one_vni(setup: Setup) -> int:
    """Both ends of a VXLAN tunnel need one VNI: the hosts' tunrcs must agree."""
    vnis = {h.name: setup.rc(h.name).vni for h in setup.hosts}
    if len(set(vnis.values())) > 1:
        said = ", ".join(f"{h} VNI={v}" for h, v in vnis.items())
        raise BadInput(f"the tunrcs disagree on the VNI ({said}): both ends of a VXLAN tunnel need one")
    return next(iter(vnis.values()))


def host_steps(setup: Setup, host_name: str, vni: int) -> list[Step]:
    host = next(h for h in setup.hosts if h.name == host_name)
    rc = setup.rc(host_name)
    dev = device_name(rc)
    remotes = setup.remotes(host_name)
    steps = []
    if not host.real:
        steps.append(
            a.underlay_to_kernel(
                host_name,
                NIC,
                PHY_BRIDGE,
                f"{host.underlay_ip}/{UNDERLAY_PREFIX}",
                why=f"The lab only (the seed's VMs have their address on the NIC already): the "
                f"underlay address {host.underlay_ip} sits on OVS's {PHY_BRIDGE} so that OVS's "
                f"userspace tunnels can use it. A kernel VXLAN device sending through it would "
                f"cross OVS's userspace datapath twice per packet; {NIC} leaves {PHY_BRIDGE} and "
                f"takes the address, so the kernel sends the tunnel's packets itself. "
                f"{PHY_BRIDGE} is marked, so `lab up` knows this is meant; undo puts it back.",
            )
        )
    fanout = (
        f"to the other host ({remotes[0]}), the tunrc's REMOTE_IP"
        if len(remotes) == 1
        else f"to each other host ({', '.join(remotes)}): head-end replication, one all-zeros "
        "fdb entry per host. Frames that came in by the VXLAN port are never flooded back out of "
        "it, so a full mesh has no loop and needs no spanning tree"
    )
    steps += [
        a.linux_bridge(
            host_name,
            rc.bridge_name,
            rc.bridge_address,
            why=f"Containers on {host_name} plug into a linux bridge, as in exp1; it holds the "
            f"host's address {rc.bridge_ip} in the container subnet.",
        ),
        a.vxlan_device(
            host_name,
            dev,
            vni,
            host.underlay_ip,
            remotes,
            a.tunnel_mtu("vxlan"),
            underlay=None if host.real else NIC,
            why=f"The kernel's own tunnel: Ethernet frames in UDP port 4789 with VNI {vni}, from "
            f"{host.underlay_ip}{'' if host.real else f' by {NIC}'}, flooded {fanout}. "
            f"MTU {a.tunnel_mtu('vxlan')}: 1500 minus 50 bytes of outer IPv4, UDP, VXLAN and "
            "inner Ethernet headers.",
        ),
        a.enslave(
            host_name,
            dev,
            rc.bridge_name,
            why=f"{dev} becomes a port of {rc.bridge_name}: the bridge learns which MACs are behind "
            "the tunnel and the VXLAN device learns which host each one is on.",
        ),
        a.iptables_rules(
            host_name,
            a.seed_rules(rc.subnet, rc.bridge_name),
            why=f"The seed's iptables.sh, on the bridge that forwards here ({rc.bridge_name}; there "
            "is no br0): masquerade what leaves the subnet, accept forwarding through the bridge "
            "(each rule is marked 'containet' so undo removes exactly these).",
        ),
    ]
    return steps


def plan(setup: Setup) -> Plan:
    vni = one_vni(setup)
    steps = []
    for host in setup.hosts:
        steps += host_steps(setup, host.name, vni)
    steps += run_containers(setup)
    gateway = setup.rc(setup.hosts[0].name).bridge_ip
    mtu = setup.container_mtu("vxlan")
    for spec in setup.all_containers:
        rc = setup.rc(spec.host)
        steps.append(
            a.container_plumb(
                spec,
                a.Attach(rc.bridge_name),
                gateway=gateway,
                mtu=mtu,
                why=f"As in exp1: a veth pair, eth0 inside with {spec.cidr} and a default route via "
                f"{gateway}, the other end joins {rc.bridge_name}. MTU {mtu} fits the VXLAN "
                "tunnel (at 1500 ping works but TCP stalls). The kernel fills in checksums "
                "through the VXLAN device: offload stays on.",
            )
        )
    steps += carries(
        setup,
        lambda _c: "",
        waiting="Every device is configured, but the first frames still wait for the "
        "underlay's ARP and the bridges' and VXLAN devices' learning",
    )
    return Plan(NAME, TITLE, SUMMARY, tuple(steps), expect={"all_talk": True})
