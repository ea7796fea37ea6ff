"""What a scenario expects, read from its intents (never from its shell text).

The doctor compares the facts with this: a container's address, attachment,
VLAN tag and gateway (its Plumb intent), each host's linux bridge and tunnels
(LinuxBridge, TunnelPort). With no scenario applied, only each host's OVS
bridge name is known (from its tunrc), and the checks judge the facts alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..intents import Intent, LinuxBridge, Plumb, TunnelPort, VxlanDevice
from .facts import EndPlan, Expected, HostPlan, VxlanPlan


def expected_from(
    scenario: str | None, subnet: str | None, ovs_bridges: Mapping[str, str], intents: Iterable[Intent] = ()
) -> Expected:
    """`ovs_bridges`: each host's OVS bridge (the tunrc's OVS_BRIDGE)."""
    intents = tuple(intents)
    bridges = {i.host: i.name for i in reversed(intents) if isinstance(i, LinuxBridge)}
    vxlans = {
        i.host: VxlanPlan(i.name, i.vni, i.remotes, i.port, i.local, i.mtu, i.underlay)
        for i in intents
        if isinstance(i, VxlanDevice)
    }
    hosts = {
        host: HostPlan(
            linux_bridge=bridges.get(host),
            ovs_bridge=bridge,
            tunnels=tuple(
                (i.port, i.kind, i.remote_ip) for i in intents if isinstance(i, TunnelPort) and i.host == host
            ),
            vxlan=vxlans.get(host),
        )
        for host, bridge in ovs_bridges.items()
    }
    ends = {
        i.name: EndPlan(
            cidr=i.cidr,
            attach=i.attach.bridge,
            ovs=i.attach.ovs,
            vlan=i.vlan if i.attach.ovs else None,
            vlan_known=i.attach.ovs,
            gateway=i.gateway,
        )
        for i in intents
        if isinstance(i, Plumb)
    }
    return Expected(scenario, subnet, ends, hosts)
