"""Where an impairment sits: a container's link or a tunnel, as a place on a host.

Impairments act on what travels *toward* the target, as netem on one link does:
- a container (`h1-a`): its host-side veth (`cn-h1-a`), whose egress is what the
  container receives; loss substitutes in the container's INPUT chain;
- a tunnel (`host1:gre0`, lab mode): the host's underlay link, as the underlay
  sees it: port `host1` of the underlay bridge `ul0`, whose egress is what host1's
  tunnels receive; loss substitutes in the underlay's FORWARD chain.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..host import Host, Place
from ..intents.base import ContainerRef
from ..marks import INSTANCE, host_veth

if TYPE_CHECKING:
    from ..inventory.model import Snapshot


@dataclass(frozen=True)
class ImpairLink:
    target: str  # as the user names it: "h1-a" or "host1:gre0"
    kind: str  # "container" or "tunnel"
    host: str  # the host it belongs to
    ns: str | None  # network namespace of `port` (None: the root namespace)
    port: str  # the link whose egress is impaired
    bridge: str | None  # the linux bridge `port` is a port of (the delay line splices there)
    mtu: int
    container: ContainerRef | None = None  # a container target
    on_ovs: bool = False  # the container hangs on OVS (exp2, exp3, vxlan)
    dst_ip: str | None = None  # tunnel: the host's underlay address (what the loss rule matches)
    pid: int = 0  # a container target: its pid when resolved

    @property
    def place(self) -> Place:
        return Place.root() if self.ns is None else Place.named(self.ns)

    @property
    def key(self) -> str:
        """A file-name-safe key of the target (for records and pidfiles)."""
        return self.target.replace(":", "_").replace("/", "_")

    @property
    def delay_links(self) -> tuple[str, str]:
        """The delay line's veth pair: (the end in the bridge, the relay's end)."""
        tag = f"{zlib.crc32(f'{INSTANCE}/{self.target}'.encode()):08x}"
        return f"dl{tag}a", f"dl{tag}b"


def resolve(target: str, hosts: list[Host], snap: Snapshot) -> ImpairLink:
    """A container's link (by name or IP) or a tunnel (HOST:PORT); BadInput otherwise."""
    names = {h.name: h for h in hosts}
    if ":" in target:
        host_name, port = target.split(":", 1)
        host = names.get(host_name)
        if host is None:
            raise BadInput(f"unknown host {host_name!r} in {target!r} (have: {', '.join(names)})")
        view = snap.host(host_name)
        tunnels = [p.name for p in view.tunnels] if view is not None else []
        if port not in tunnels:
            have = ", ".join(f"{host_name}:{t}" for t in tunnels) or "none: apply a scenario first"
            raise BadInput(f"unknown tunnel {target!r} (have: {have})")
        if host.real:
            raise BadInput("tunnel impairments need the lab's underlay: in real mode, name a container")
        from ..lab import UNDERLAY_BRIDGE, UNDERLAY_NS

        return ImpairLink(
            target=f"{host_name}:{port}",
            kind="tunnel",
            host=host_name,
            ns=UNDERLAY_NS,
            port=host_name,  # the underlay veth toward the host is named after it
            bridge=UNDERLAY_BRIDGE,
            mtu=1500,
            dst_ip=host.underlay_ip,
        )
    c = snap.container(target)
    if c is None:
        have = ", ".join(c.name for c in snap.containers) or "none"
        raise BadInput(f"unknown target {target!r}: a container ({have}) or a tunnel HOST:PORT")
    host = names.get(c.host)
    if host is None or not c.pid or c.host_veth is None:
        raise BadInput(f"container {c.name} is not wired to a host: apply a scenario first")
    on_ovs = c.attach_kind is not None and "ovs" in c.attach_kind
    ref = ContainerRef.ours(c.name) if c.ours else ContainerRef.foreign(c.docker_name)
    return ImpairLink(
        target=c.name,
        kind="container",
        host=host.name,
        ns=host.netns,
        port=c.host_veth or host_veth(c.name),
        bridge=None if on_ovs else c.attached_to,
        mtu=c.mtu or 1500,
        container=ref,
        on_ovs=on_ovs,
        pid=c.pid,
    )
