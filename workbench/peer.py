"""Seeing the other host in real mode, only when the user asks for it.

On the seed's VMs each machine runs its own workbench and sees only itself.
To show the peer's side, a host shares its Open vSwitch database read-only on
the private network (`containet --real share --listen 10.0.0.4`): a replica
ovsdb-server in backup mode copies the local database and listens only on
`ptcp:6640:10.0.0.4`, refusing every write (see workbench.replica); `share
--stop`, `clean` and `lab down` stop it. The other host reads it
(`containet --real status --peer host2=tcp:10.0.0.4:6640`): the peer's bridges,
ports, VLAN tags and tunnels appear beside its own. Nothing listens, and
nothing is read from the peer, unless asked.
"""

from __future__ import annotations

import ipaddress
import socket

from pyroute2 import IPRoute

from . import replica
from .errors import BadInput
from .host import Host, Place
from .inventory.collect import ovs_bridges
from .inventory.model import HostView
from .marks import MARK_VALUE, OVS_MARK
from .ovs import Ovs

PORT = 6640


def listen_target(ip: str, port: int = PORT) -> str:
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise BadInput(f"--listen {ip!r} is not an IPv4 address of this host") from None
    return f"ptcp:{port}:{ip}"


def share(host: Host, ip: str, port: int = PORT) -> str:
    """Start (or keep) the read-only replica of `host`'s database on ip:port."""
    target = listen_target(ip, port)
    if ip not in _local_addresses(host.place):
        raise BadInput(f"--listen {ip}: not an address of this host (share on its private-network address)")
    replica.start(host.place, host.ovs_db, target)
    return target


def _local_addresses(place: Place) -> set[str]:
    def read(ipr: IPRoute) -> set[str]:
        return {str(m.get("address")) for m in ipr.get_addr(family=socket.AF_INET)}

    return place.netlink(read)


def unshare(host: Host) -> list[str]:
    """Stop the replica; also remove a Manager row an older containet's `share`
    added to the host's database (marked; writable, which is why it is gone)."""
    gone = replica.stop()
    ovs = Ovs(host.ovs_db)
    try:
        ours = [
            r["target"]
            for r in ovs.rows("Manager")
            if (r.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE
        ]
        for target in ours:
            ovs.api.remove_manager(target).execute(check_error=True)
        return gone + [t for t in ours if t not in gone]
    finally:
        ovs.close()


def parse_peer(text: str) -> tuple[str, str]:
    """'host2=tcp:10.0.0.4:6640' (or 'host2=10.0.0.4') -> ('host2', 'tcp:10.0.0.4:6640')."""
    name, sep, remote = text.partition("=")
    if not sep or not name or not remote:
        raise BadInput(f"--peer {text!r}: use NAME=tcp:IP:PORT, e.g. host2=tcp:10.0.0.4:6640")
    if not remote.startswith("tcp:"):
        remote = f"tcp:{remote}:{PORT}"
    ip = remote.split(":")[1]
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise BadInput(f"--peer {text!r}: {ip!r} is not an IPv4 address") from None
    return name, remote


def peer_view(name: str, remote: str, place: Place | None = None) -> HostView:
    """The peer's OVS side, read from its shared database (from `place`'s namespace)."""
    ip = remote.split(":")[1]

    def read() -> HostView:
        ovs = Ovs(remote, timeout=5)
        try:
            return HostView(name, ip, True, True, ovs_bridges=ovs_bridges(ovs), error="peer: OVS only")
        finally:
            ovs.close()

    try:
        return (place or Place.root()).call(read)
    except Exception as exc:  # noqa: BLE001 - a peer that does not answer is shown as such
        return HostView(name, ip, False, False, error=f"peer {remote}: {exc}")
