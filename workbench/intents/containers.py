"""Intents about containers: run one with no network, wire it, repair its inside."""

from __future__ import annotations

import fcntl
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docker.errors import DockerException
from pyroute2.netlink.exceptions import NetlinkError

from .. import containers as dk
from .. import links, portio
from ..errors import BadInput, WorkbenchError
from ..host import Place
from ..marks import IMAGE, IPT_COMMENT, LABEL, LABEL_HOST, LABEL_NAME, MARK_VALUE, docker_name, host_veth
from ..measure.ping import PingOptions, PingResult, Source, Target, ping_from, ping_sources
from ..ovs import PURGE_EVERY, one, purge_datapath_flows
from .base import Cmd, ContainerRef, Intent, Readiness, Where, every, pid_expr

if TYPE_CHECKING:
    from ..steps import Context


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    host: str
    cidr: str  # e.g. 172.15.42.100/24
    vlan: int | None = None

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]

    @property
    def ref(self) -> ContainerRef:
        return ContainerRef.ours(self.name)


@dataclass(frozen=True)
class Attach:
    """Where a container's host-side veth goes: a linux bridge or an OVS bridge."""

    bridge: str
    ovs: bool = False


@dataclass(frozen=True)
class ContainerRun(Intent):
    """`docker run --net=none`: a marked container with only `lo`."""

    host: str
    name: str

    @property
    def early(self) -> bool:
        return True

    @property
    def settle(self) -> float:
        return 1.0

    @property
    def subject(self) -> str:
        return self.name

    def key(self) -> str:
        return f"run:{self.name}"

    def title(self) -> str:
        return f"docker run {self.name} --net=none"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(
                Where.DOCKER,
                f"docker run -d --net=none --name {docker_name(self.name)} --label {LABEL}={MARK_VALUE} "
                f"--label {LABEL_HOST}={self.host} --label {LABEL_NAME}={self.name} "
                f"{IMAGE} sleep 2147483647",
            ),
        )

    def apply(self, ctx: Context) -> None:
        """Run it; one of ours that stopped (killed, or dockerd restarted) is started
        again: same name and docker ID, in a new namespace that holds only `lo`
        (its Plumb step wires it again). One that cannot start is run anew."""
        ctx.forget(self.name)
        try:
            row = dk.run(ctx.docker, self.name, self.host)
        except BadInput:  # the name is taken: by a container of ours left stopped?
            found = dk.find(ctx.docker, self.name)
            if found is None:
                raise
            row = found
            if row.status != "running":
                row = _start_again(ctx, row) or row
            if row.status != "running" or row.host != self.host:
                dk.remove(ctx.docker, row.id)
                row = dk.run(ctx.docker, self.name, self.host)
        ctx.remember(row)

    def verify(self, ctx: Context) -> bool:
        row = ctx.container(self.name)
        return row is not None and row.status == "running" and row.host == self.host and row.pid > 0

    def undo(self, ctx: Context) -> None:
        ctx.forget(self.name)
        dk.remove(ctx.docker, docker_name(self.name))


def _start_again(ctx: Context, row: dk.ContainerRow) -> dk.ContainerRow | None:
    """`docker start` a stopped container of ours; its row after (None: it did not start)."""
    try:
        ctx.docker.api.start(row.id)
    except DockerException:
        return None
    return dk.find(ctx.docker, row.name)


def _open_in_ovs(ipr: Any, name: str) -> bool:
    """OVS's userspace datapath has this device open: it turns promiscuous mode on
    for every device it opens. A device made again under the same name (a
    container's new veth) is not open until its port is deleted and added again."""
    return bool(ipr.link("get", ifname=name)[0]["flags"] & IFF_PROMISC)


IFF_PROMISC = 0x100
IFF_RUNNING = 0x40  # the link has carrier
SIOCGIFFLAGS = 0x8913


def announce(iface: str, ip: str, wait: float = 1.0) -> None:
    """One gratuitous ARP request (sender = target = `ip`) out of `iface`, from the
    namespace the calling thread is in: neighbours update the MAC they hold for
    `ip`. Sent once the link has carrier (`wait` seconds at most): a veth just set
    up may not carry frames for a few milliseconds. Nothing leaves the lab: it goes
    to the container's own segment."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        deadline = time.monotonic() + wait
        request = struct.pack("16sH14x", iface.encode(), 0)
        while time.monotonic() < deadline:
            flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            if flags & IFF_RUNNING:
                break
            time.sleep(0.005)
        mac = sock.getsockname()[4][:6]
        addr = socket.inet_aton(ip)
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\0" * 6 + addr
        sock.send(b"\xff" * 6 + mac + struct.pack("!H", 0x0806) + arp)


@dataclass(frozen=True)
class Plumb(Intent):
    """The seed's start-container.sh: a veth pair, eth0 inside with the address, MTU
    and default route, the host side on a linux bridge or as an OVS port (VLAN tag).

    With tx_offload=False the container's eth0 computes its own TCP/UDP checksums:
    OVS's userspace datapath forwards frames from a veth port as they are, so a
    checksum left to the "NIC" would never be filled in and TCP would die silently
    while ping (checksummed in software) works."""

    host: str
    name: str
    cidr: str
    attach: Attach
    gateway: str | None
    mtu: int
    vlan: int | None = None
    tx_offload: bool = True

    @property
    def subject(self) -> str:
        return self.name

    @property
    def veth(self) -> str:
        return host_veth(self.name)

    @property
    def ref(self) -> ContainerRef:
        return ContainerRef.ours(self.name)

    def key(self) -> str:
        return f"plumb:{self.name}"

    def title(self) -> str:
        where = f"OVS {self.attach.bridge}" + (f" VLAN {self.vlan}" if self.vlan is not None else "")
        return f"wire {self.name} {self.cidr} to {where if self.attach.ovs else self.attach.bridge}"

    def commands(self) -> tuple[Cmd, ...]:
        veth, mtu, ref = self.veth, self.mtu, self.ref
        inside = Where.CONTAINER
        cmds = [
            Cmd(
                Where.HOST,
                f"ip link add {veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {pid_expr(ref)}",
            ),
            Cmd(inside, f"ip addr add {self.cidr} dev eth0", ref),
            Cmd(inside, "ip link set eth0 up", ref),
        ]
        if self.gateway:
            cmds.append(Cmd(inside, f"ip route add default via {self.gateway}", ref))
        if not self.tx_offload:
            cmds.append(Cmd(inside, "ethtool -K eth0 tx off", ref))
        if self.attach.ovs:
            tag = f" tag={self.vlan}" if self.vlan is not None else ""
            io = portio.current().render(veth)  # the lab's OVS port I/O (workbench.portio)
            cmds.append(Cmd(Where.OVS, f"ovs-vsctl add-port {self.attach.bridge} {veth}{tag}{io}"))
        else:
            cmds.append(Cmd(Where.HOST, f"ip link set {veth} master {self.attach.bridge}"))
        cmds.append(Cmd(Where.HOST, f"ip link set {veth} alias {IPT_COMMENT} up"))
        return tuple(cmds)

    def apply(self, ctx: Context) -> None:
        """Wire the container's current namespace. What an earlier one left (a container
        restarted or started again gets a new, empty namespace) goes first: a
        host-side veth of ours, and an OVS port that still names it (OVS would not
        open the new device of the same name)."""
        row = ctx.container(self.name)
        if row is None or not row.pid:
            raise BadInput(f"container {self.name} is not running")
        if self.attach.ovs and ctx.ovs(self.host).port_bridge(self.veth) is not None:
            ctx.ovs(self.host).del_port(self.veth)  # waits until ovs-vswitchd has let go of it

        def host_side(ipr: Any) -> None:
            stale = links.link_row(ipr, self.veth)
            if stale is not None and stale.alias == IPT_COMMENT:
                links.delete_link(ipr, self.veth)  # a stale half from an earlier run
            master = None if self.attach.ovs else self.attach.bridge
            links.add_veth_into(ipr, self.veth, "eth0", row.pid, self.mtu, master=master, alias=IPT_COMMENT)

        ctx.netlink(ctx.host(self.host).place, host_side)
        inside = Place.of_pid(row.pid, self.name)
        ctx.netlink(inside, links.configure_iface, "eth0", self.cidr, self.gateway, self.mtu)
        if not self.tx_offload:
            ctx.call(inside, links.tx_checksum, "eth0", False)
        if self.attach.ovs:
            io = portio.current()
            ctx.ovs(self.host).add_port(
                self.attach.bridge, self.veth, tag=self.vlan, iface_type=io.type, options=io.options or None
            )
        # a container wired again has a new MAC: its peers' ARP caches would still
        # name the old one (for up to a minute); a gratuitous ARP tells them now
        ctx.call(inside, announce, "eth0", self.cidr.split("/")[0])

    def verify(self, ctx: Context) -> bool:
        """The container's current namespace is wired: its eth0 is the peer of our
        host-side veth (a restarted container has a new, empty namespace), the host
        side is on its bridge (and open in OVS), address, MTU, route as declared."""
        row = ctx.container(self.name)
        if row is None or not row.pid:
            return False
        place = ctx.host(self.host).place
        hrow = ctx.netlink(place, links.link_row, self.veth)
        if hrow is None or not hrow.admin_up or hrow.mtu != self.mtu:
            return False
        if self.attach.ovs:
            ovs = ctx.ovs(self.host)
            if self.veth not in ovs.ports(self.attach.bridge):
                return False
            if one((ovs.row("Port", self.veth) or {}).get("tag")) != self.vlan:
                return False
            netdev = ctx.host(self.host).datapath == "netdev"  # the kernel datapath shows no flag
            if netdev and not ctx.netlink(place, _open_in_ovs, self.veth):
                return False
        elif hrow.master != self.attach.bridge:
            return False
        inside = Place.of_pid(row.pid, self.name)
        crow = ctx.netlink(inside, links.link_row, "eth0")
        if crow is None or self.cidr not in crow.addresses or crow.mtu != self.mtu or not crow.admin_up:
            return False
        if crow.peer_index != hrow.index or hrow.peer_index != crow.index:
            return False  # eth0 and our veth are not two ends of one pair
        return self.tx_offload or not ctx.call(inside, links.tx_checksum, "eth0")

    def undo(self, ctx: Context) -> None:
        if self.attach.ovs:
            ctx.ovs(self.host).del_port(self.veth)
        ctx.netlink(ctx.host(self.host).place, links.delete_link, self.veth)


# --- repairs inside a container (the doctor's fixes) --------------------------------
@dataclass(frozen=True)
class Address(Intent):
    """An address on a container's interface."""

    host: str
    container: ContainerRef
    cidr: str
    link: str = "eth0"

    def key(self) -> str:
        return f"addr:{self.container.name}"

    def title(self) -> str:
        return f"give {self.container.name} its address {self.cidr}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINER, f"ip addr add {self.cidr} dev {self.link}", self.container),)

    def apply(self, ctx: Context) -> None:
        ctx.netlink(ctx.place_of(self.container), links.add_address, self.link, self.cidr)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(ctx.place_of(self.container), links.link_row, self.link)
        return row is not None and self.cidr in row.addresses


def _add_route(ipr: Any, link: str, dst: str, gateway: str | None) -> None:
    kwargs: dict[str, Any] = {"dst": dst, "oif": links.must_index(ipr, link)}
    if gateway:
        kwargs["gateway"] = gateway
    else:
        kwargs["scope"] = 253  # link
    try:
        ipr.route("add", **kwargs)
    except NetlinkError as exc:
        if exc.code != 17:  # EEXIST: there already
            raise


@dataclass(frozen=True)
class Route(Intent):
    """A route inside a container: on-link (no gateway) or via a gateway."""

    host: str
    container: ContainerRef
    dst: str  # a network, or 0.0.0.0/0 for the default route
    gateway: str | None = None
    link: str = "eth0"

    def key(self) -> str:
        return f"route:{self.container.name}:{self.dst}"

    def title(self) -> str:
        return f"route to {self.dst} in {self.container.name}"

    def commands(self) -> tuple[Cmd, ...]:
        if self.gateway:
            dst = "default" if self.dst == "0.0.0.0/0" else self.dst
            return (Cmd(Where.CONTAINER, f"ip route add {dst} via {self.gateway}", self.container),)
        return (Cmd(Where.CONTAINER, f"ip route add {self.dst} dev {self.link}", self.container),)

    def apply(self, ctx: Context) -> None:
        ctx.netlink(ctx.place_of(self.container), _add_route, self.link, self.dst, self.gateway)

    def verify(self, ctx: Context) -> bool:
        def has(ipr: Any) -> bool:
            prefix = int(self.dst.split("/")[1]) if "/" in self.dst else 32
            net = self.dst.split("/")[0]
            for msg in ipr.get_routes(family=2):
                if msg["dst_len"] == prefix and (msg.get("RTA_DST") or "0.0.0.0") == net:
                    return not self.gateway or msg.get("RTA_GATEWAY") == self.gateway
            return False

        return bool(ctx.netlink(ctx.place_of(self.container), has))


@dataclass(frozen=True)
class TxChecksumOff(Intent):
    """The container computes its own checksums (`ethtool -K eth0 tx off`)."""

    host: str
    container: ContainerRef
    link: str = "eth0"

    def key(self) -> str:
        return f"tx-off:{self.container.name}"

    def title(self) -> str:
        return f"turn tx checksum offload off in {self.container.name}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINER, f"ethtool -K {self.link} tx off", self.container),)

    def apply(self, ctx: Context) -> None:
        ctx.call(ctx.place_of(self.container), links.tx_checksum, self.link, False)

    def verify(self, ctx: Context) -> bool:
        return not ctx.call(ctx.place_of(self.container), links.tx_checksum, self.link)


@dataclass(frozen=True)
class PairTalks(Readiness):
    """Readiness: `src` reaches `dst_ip` again. The last intent of a doctor's fix, so
    a fix returns when traffic flows, not when the configuration is written: a link
    brought up, a tunnel re-pointed or a port re-tagged takes a moment to carry
    frames, and addresses looked up while the path was broken sit unresolved in
    the container's neighbour table. It changes nothing; one echo per try."""

    host: str
    src: ContainerRef
    dst_ip: str
    bound: float = 5.0  # seconds it may take

    def key(self) -> str:
        return f"talks:{self.src.name}:{self.dst_ip}"

    def title(self) -> str:
        return f"wait until {self.src.name} reaches {self.dst_ip}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINER, ping_until(self.bound, self.dst_ip), self.src),)

    def verify(self, ctx: Context) -> bool:
        target = Target(self.dst_ip, self.dst_ip)
        once = PingOptions(count=1, timeout=0.5)
        try:
            got = ping_from(ctx.place_of(self.src), self.src.name, [target], once)
        except OSError:
            return False
        return got[target].received > 0


def ping_until(bound: float, ip: str) -> str:
    """A readiness wait in a shell: `-c 1 -w N` sends an echo a second until the first
    answer, N seconds at most, as the step waits (its own tries are 0.5 s apart)."""
    return f"ping -c 1 -w {bound:g} {ip}"


#: (the host of the container that pings, that container, the address it pings)
Probe = tuple[str, ContainerRef, str]


@dataclass(frozen=True)
class TunnelsCarry(Readiness):
    """Readiness, a barrier over the hosts of its probes: across every pair of hosts,
    a container reaches one on the other host. The last step of a plan whose tunnels
    are built by someone else's timing (kernel VXLAN learning, ovn-controller
    programming br-int): configuration written, even "ports up", is not yet frames
    carried, so "applied" is proven by traffic. One echo per probe and try, every
    probe in one ping loop; it changes nothing."""

    host: str  # "": a barrier over the hosts of its probes
    probes: tuple[Probe, ...]
    bound: float = 10.0

    def key(self) -> str:
        return "tunnels-carry"

    def title(self) -> str:
        hosts = sorted({h for h, _c, _ip in self.probes})
        return f"wait until the tunnels carry frames between {', '.join(hosts)} ({len(self.probes)} pairs)"

    def commands(self) -> tuple[Cmd, ...]:
        return tuple(
            Cmd(Where.CONTAINER, ping_until(self.bound, ip), src, host=h) for h, src, ip in self.probes
        )

    def _silent(self, ctx: Context) -> list[str]:
        """The probes that got no answer this time, as "src -> ip"."""
        targets: dict[str, list[Target]] = {}
        refs: dict[str, ContainerRef] = {}
        for _h, src, ip in self.probes:
            targets.setdefault(src.name, []).append(Target(ip, ip))
            refs[src.name] = src
        sources, silent = [], []
        for name, ref in refs.items():
            try:
                sources.append(Source(name, ctx.place_of(ref), tuple(targets[name])))
            except (OSError, WorkbenchError, DockerException):
                silent += [f"{name} -> {t.ip}" for t in targets[name]]
        if sources:
            try:
                got = ping_sources(sources, PingOptions(count=1, timeout=0.5))
            except OSError:
                got = {}
            for s in sources:
                silent += [f"{s.name} -> {t.ip}" for t in s.targets if not _answered(got.get((s.name, t)))]
        return silent

    def verify(self, ctx: Context) -> bool:
        return not self._silent(ctx)

    def nudge(self, ctx: Context, waited: float, before: float) -> None:
        """Every PURGE_EVERY seconds of silence, the probes' hosts drop their OVS
        datapath flows (see ovs.purge_datapath_flows): pairs silent for 13 s after the
        tree had settled answered within a second of one."""
        if every(PURGE_EVERY, waited, before):
            purge_datapath_flows(ctx.host(h) for h in sorted({h for h, _s, _ip in self.probes}))

    def progress(self, ctx: Context) -> str | None:
        silent = self._silent(ctx)
        line = f"{len(self.probes) - len(silent)} of {len(self.probes)} pairs answer"
        if silent:
            line += f" (waiting: {', '.join(silent[:4])}{' ...' if len(silent) > 4 else ''})"
        return line


def _answered(result: PingResult | None) -> bool:
    return result is not None and result.received > 0
