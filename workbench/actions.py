"""Step factories: the building blocks scenarios declare.

Each factory returns a Step around a typed intent (workbench.intents): the
intent carries the parameters, renders the shell equivalent a presenter would
type on the seed's VMs, and applies, verifies and undoes itself with the
libraries (pyroute2, ovsdbapp, docker SDK; iptables as an argument list).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from . import ovn
from .errors import BadInput
from .intents import (
    Attach,
    ContainerRef,
    ContainerRun,
    ContainerSpec,
    Enslave,
    FirewallRules,
    KernelUnderlay,
    LinuxBridge,
    OvsBridge,
    Plumb,
    QosCap,
    Rstp,
    RstpConverged,
    Rule,
    TunnelPort,
    TunnelsCarry,
    VxlanDevice,
    render,
    render_plain,
    seed_rules,
)
from .intents.ovn import (
    LogicalPort,
    LogicalSwitch,
    OvnChassis,
    OvnController,
    OvnDatabase,
    OvnNorthd,
    OvnPlumb,
    OvnReady,
    SystemCentral,
    SystemController,
)
from .steps import Step

__all__ = [
    "TUNNEL_OVERHEAD",
    "UNDERLAY_MTU",
    "Attach",
    "ContainerSpec",
    "bridge_rstp",
    "rstp_converged",
    "check_spec",
    "container_plumb",
    "container_run",
    "enslave",
    "iptables_rules",
    "linux_bridge",
    "ovs_bridge",
    "qos_cap",
    "render",
    "render_plain",
    "seed_rules",
    "tunnel_mtu",
    "tunnel_port",
    "tunnels_carry",
    "underlay_to_kernel",
    "vxlan_device",
]

# Bytes a tunnel adds in front of the inner Ethernet frame, and the Ethernet
# header itself: outer IPv4 (20) + GRE (4) or UDP (8) + VXLAN (8), + inner 14.
TUNNEL_OVERHEAD = {"gre": 20 + 4 + 14, "vxlan": 20 + 8 + 8 + 14, "geneve": ovn.GENEVE_OVERHEAD}
UNDERLAY_MTU = 1500


def tunnel_mtu(tun_type: str, underlay_mtu: int = UNDERLAY_MTU) -> int:
    """The largest container MTU whose packets still fit the tunnel."""
    return underlay_mtu - TUNNEL_OVERHEAD.get(tun_type, 50)


def linux_bridge(host: str, name: str, address: str, *, why: str) -> Step:
    return Step(LinuxBridge(host, name, address), why)


def ovs_bridge(
    host: str, name: str, *, why: str, datapath: str = "netdev", fail_mode: str | None = None
) -> Step:
    return Step(OvsBridge(host, name, datapath, fail_mode), why)


def tunnel_port(host: str, bridge: str, port: str, tun_type: str, remote_ip: str, *, why: str) -> Step:
    return Step(TunnelPort(host, bridge, port, tun_type, remote_ip), why)


def underlay_to_kernel(host: str, nic: str, bridge: str, cidr: str, *, why: str) -> Step:
    """The lab only: the underlay address from OVS's bridge onto its NIC (see intents.kernel)."""
    return Step(KernelUnderlay(host, nic, bridge, cidr), why)


def vxlan_device(
    host: str,
    name: str,
    vni: int,
    local: str,
    remotes: tuple[str, ...],
    mtu: int,
    *,
    underlay: str | None,
    why: str,
) -> Step:
    """A kernel VXLAN device flooding to `remotes` (see intents.kernel.VxlanDevice)."""
    return Step(VxlanDevice(host, name, vni, local, tuple(remotes), mtu, underlay), why)


def tunnels_carry(pairs: Sequence[tuple[ContainerSpec, ContainerSpec]], *, why: str) -> Step:
    """A barrier: each (a, b) of `pairs`, a pings b's address from inside a."""
    probes = tuple((a.host, ContainerRef.ours(a.name), b.ip) for a, b in pairs)
    return Step(TunnelsCarry("", probes), why)


def bridge_rstp(host: str, bridge: str, *, why: str) -> Step:
    return Step(Rstp(host, bridge), why)


def rstp_converged(bridges: tuple[tuple[str, str], ...], *, why: str) -> Step:
    """A barrier over every (host, bridge): waits until spanning tree has converged."""
    return Step(RstpConverged("", bridges), why)


def enslave(host: str, link: str, master: str, *, why: str) -> Step:
    return Step(Enslave(host, link, master), why)


def iptables_rules(host: str, rules: tuple[Rule, ...], *, why: str) -> Step:
    return Step(FirewallRules(host, tuple(rules)), why)


def split_cidr(cidr: str) -> tuple[ipaddress.IPv4Address, int]:
    """The address and prefix length of "A.B.C.D/N", or a one-line error."""
    try:
        iface = ipaddress.IPv4Interface(cidr)
    except ValueError:
        raise BadInput(f"{cidr!r} is not an IPv4 address with prefix (e.g. 172.15.42.110/24)") from None
    if "/" not in cidr:
        raise BadInput(f"{cidr!r} needs a prefix length (e.g. {cidr}/24)")
    return iface.ip, iface.network.prefixlen


def check_spec(spec: ContainerSpec, subnet: str, taken: dict[str, str]) -> None:
    """Reject a bad container before anything changes (taken: ip -> name)."""
    split_cidr(spec.cidr)
    iface = ipaddress.IPv4Interface(spec.cidr)
    net = ipaddress.IPv4Network(subnet)
    if iface.ip not in net:
        raise BadInput(f"{iface.ip} is outside the container subnet {net}")
    if iface.ip in (net.network_address, net.broadcast_address):
        raise BadInput(f"{iface.ip} is the network or broadcast address of {net}")
    other = taken.get(str(iface.ip))
    if other and other != spec.name:
        raise BadInput(f"{iface.ip} is already used by {other}")
    if spec.vlan is not None and not 1 <= spec.vlan <= 4094:
        raise BadInput(f"VLAN {spec.vlan} is out of range (1-4094)")


def container_run(spec: ContainerSpec, *, why: str) -> Step:
    return Step(ContainerRun(spec.host, spec.name), why)


def container_plumb(
    spec: ContainerSpec,
    attach: Attach,
    gateway: str | None,
    mtu: int,
    *,
    why: str,
    tx_offload: bool = True,
) -> Step:
    """The seed's start-container.sh (see intents.Plumb)."""
    return Step(Plumb(spec.host, spec.name, spec.cidr, attach, gateway, mtu, spec.vlan, tx_offload), why)


def qos_cap(spec: ContainerSpec, rate_mbit: float, *, on_ovs: bool, why: str) -> Step:
    """Cap a container both ways (see workbench.qos for what enforces it here)."""
    return Step(QosCap(spec.host, spec.name, rate_mbit, on_ovs), why)


# --- OVN (workbench.intents.ovn) ----------------------------------------------------
def ovn_database(host: str, run_dir: str, which: str, listen_ip: str, *, why: str) -> Step:
    return Step(OvnDatabase(host, run_dir, which, listen_ip), why)


def ovn_northd(host: str, run_dir: str, *, why: str) -> Step:
    return Step(OvnNorthd(host, run_dir), why)


def ovn_chassis(host: str, sb_remote: str, encap_ip: str, *, datapath: str, why: str) -> Step:
    return Step(OvnChassis(host, sb_remote, encap_ip, system_id=host, datapath=datapath), why)


def ovn_controller(host: str, run_dir: str, *, why: str) -> Step:
    return Step(OvnController(host, run_dir), why)


def logical_switch(host: str, nb: str, name: str, *, why: str) -> Step:
    return Step(LogicalSwitch(host, nb, name), why)


def logical_port(host: str, nb: str, switch: str, spec: ContainerSpec, *, why: str) -> Step:
    return Step(LogicalPort(host, nb, switch, spec.name, ovn.mac_for(spec.ip), spec.ip), why)


def ovn_plumb(spec: ContainerSpec, bridge: str, gateway: str | None, mtu: int, *, why: str) -> Step:
    """A container's veth on br-int, bound to the logical port of its name."""
    return Step(
        OvnPlumb(
            spec.host,
            spec.name,
            spec.cidr,
            Attach(bridge, ovs=True),
            gateway,
            mtu,
            None,
            False,
            mac=ovn.mac_for(spec.ip),
            iface_id=spec.name,
        ),
        why,
    )


def ovn_ready(nb: str, sb: str, ports: tuple[str, ...], hosts: tuple[str, ...], *, why: str) -> Step:
    """A barrier: every logical port up, every chassis tunnelled to the others, every
    ovn-controller caught up with the northbound."""
    return Step(OvnReady("", nb, sb, ports, hosts), why)


def system_ovn_central(host: str, nb: str, sb: str, ovs_sock: str, *, local: bool, why: str) -> Step:
    """Real mode: the system's OVN central answers (started on host1 when it does not run)."""
    return Step(SystemCentral(host, ovs_sock, nb, sb, local), why)


def system_ovn_controller(host: str, ovs_sock: str, *, why: str) -> Step:
    """Real mode: the system's ovn-controller runs here (started when it does not)."""
    return Step(SystemController(host, ovs_sock), why)
