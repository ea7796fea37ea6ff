"""What every scenario is built from: the hosts, their tunrc, the containers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from .actions import ContainerSpec, tunnel_mtu
from .host import Host
from .tunrc import Tunrc, load, parse_text, validate

VLAN_TAG = 4  # bytes of an 802.1Q tag


@dataclass(frozen=True)
class Setup:
    """The input of a scenario: hosts, their tunrc, the containers to attach."""

    hosts: tuple[Host, ...]
    tunrc: dict[str, Tunrc]
    containers: tuple[ContainerSpec, ...] = ()
    mtu: int | None = None  # None: fit the tunnel
    extra: tuple[ContainerSpec, ...] = field(default=())  # added with `container add`
    topology: str = "mesh"  # with more than two hosts: "mesh" (every pair) or "star" (via host1)
    peers: dict[str, str] = field(default_factory=dict)  # every host of the lab -> underlay IP

    def tunnels(self, host: str) -> list[tuple[str, str]]:
        """(port name, remote_ip) of each tunnel this host has.

        Two hosts: the seed's single tunnel, TUN_IF to REMOTE_IP from the tunrc.
        More: one port per peer, named TUN_IF-PEER; a star links host1 to every
        other host and nothing else."""
        rc = self.rc(host)
        others = {h: ip for h, ip in self.peers.items() if h != host}
        if len(others) <= 1:
            return [(rc.tun_if, rc.remote_ip)]
        if self.topology == "star":
            hub = min(self.peers, key=lambda h: int(h.removeprefix("host")))
            if host != hub:
                others = {hub: self.peers[hub]}
        return [(f"{rc.tun_if}-{peer}"[:15], ip) for peer, ip in sorted(others.items())]

    def remotes(self, host: str) -> tuple[str, ...]:
        """The underlay addresses of every other host (a kernel VXLAN device floods to
        each: no loop, so no star is needed); with one peer or none known (real mode),
        the tunrc's REMOTE_IP."""
        return tuple(ip for _port, ip in replace(self, topology="mesh").tunnels(host))

    def loops(self) -> bool:
        """A mesh of three or more hosts has layer-2 loops through the tunnels."""
        return self.topology == "mesh" and len(self.peers) > 2

    def rc(self, host: str) -> Tunrc:
        return self.tunrc[host]

    def container_mtu(self, tun_type: str, tagged: bool = False) -> int:
        """The given MTU, or the largest that fits the tunnel: a VLAN-tagged frame
        carries 4 more bytes through it."""
        return self.mtu or tunnel_mtu(tun_type) - (VLAN_TAG if tagged else 0)

    @property
    def all_containers(self) -> tuple[ContainerSpec, ...]:
        return self.containers + self.extra

    def with_tunnel(self, tun_type: str) -> Setup:
        return replace(self, tunrc={h: rc.with_tunnel(tun_type) for h, rc in self.tunrc.items()})


def shipped_tunrc(host: str, count: int = 2) -> Tunrc:
    """The seed's host1_tunrc / host2_tunrc (and the same pattern for more hosts)."""
    ref = resources.files("workbench") / "seed" / f"{host}_tunrc"
    if ref.is_file():
        return validate(parse_text(ref.read_text(), f"seed/{host}_tunrc"), f"seed/{host}_tunrc")
    index = int(host.removeprefix("host"))
    values = parse_text((resources.files("workbench") / "seed" / "host1_tunrc").read_text())
    values["BRIDGE_ADDRESS"] = f"172.15.42.{index}/24"
    values["REMOTE_IP"] = "10.0.0.3" if index != 1 else "10.0.0.4"
    return validate(values, f"<generated {host}_tunrc>")


def load_tunrc(hosts: tuple[Host, ...], directory: str | Path | None) -> dict[str, Tunrc]:
    """Each host's tunrc: DIR/<host>_tunrc when a directory is given, else the shipped one."""
    out = {}
    for h in hosts:
        if directory is not None:
            out[h.name] = load(Path(directory) / f"{h.name}_tunrc")
        else:
            out[h.name] = shipped_tunrc(h.name, len(hosts))
    return out


def default_containers(
    hosts: tuple[Host, ...], subnet: str, vlans: bool = False, total: int | None = None
) -> tuple[ContainerSpec, ...]:
    """Two per host: hostK-a gets .(100+K-1) and hostK-b .(100+N+K-1) for N hosts in
    all, so the seed's first two are host1 .100 and host2 .101, and a host in real
    mode (one of N) numbers its containers as it would in the full lab."""
    base = subnet.rsplit(".", 1)[0]
    prefix = subnet.split("/")[1]
    n = total or len(hosts)
    specs = []
    for h in hosts:
        k = h.index
        for j, letter in enumerate("ab"):
            specs.append(
                ContainerSpec(
                    name=f"h{k}-{letter}",
                    host=h.name,
                    cidr=f"{base}.{100 + j * n + (k - 1)}/{prefix}",
                    vlan=(10 * (j + 1)) if vlans else None,
                )
            )
    return tuple(specs)
