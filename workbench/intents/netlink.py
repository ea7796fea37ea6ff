"""Intents on links, through netlink in the host's (or a container's) namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import links
from ..host import Place
from ..marks import IPT_COMMENT
from .base import Cmd, ContainerRef, Intent, Where

if TYPE_CHECKING:
    from ..steps import Context


def place(ctx: Context, host: str, container: ContainerRef | None) -> Place:
    return ctx.place_of(container) if container is not None else ctx.host(host).place


def cmd_in(container: ContainerRef | None, text: str) -> Cmd:
    """A command inside `container`, or in the host's namespace when None."""
    return Cmd(Where.CONTAINER, text, container) if container is not None else Cmd(Where.HOST, text)


@dataclass(frozen=True)
class LinuxBridge(Intent):
    """A linux bridge with an address. A bridge we create carries our mark (its
    ifalias); one that was there before (docker's own docker0 on a real host) only
    gets the address, and undo takes back only the address."""

    host: str
    name: str
    cidr: str

    def key(self) -> str:
        return f"bridge:{self.name}"

    def title(self) -> str:
        return f"linux bridge {self.name} {self.cidr}"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(Where.HOST, f"ip link add {self.name} type bridge"),
            Cmd(Where.HOST, f"ip link set {self.name} alias {IPT_COMMENT}"),  # containet's mark
            Cmd(Where.HOST, f"ip addr add {self.cidr} dev {self.name}"),
            Cmd(Where.HOST, f"ip link set {self.name} up"),
        )

    def apply(self, ctx: Context) -> None:
        def do(ipr: Any) -> None:
            links.add_bridge(ipr, self.name, mark=IPT_COMMENT)
            links.add_address(ipr, self.name, self.cidr)
            links.set_up(ipr, self.name)

        ctx.netlink(ctx.host(self.host).place, do)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(ctx.host(self.host).place, links.link_row, self.name)
        return row is not None and row.kind == "bridge" and self.cidr in row.addresses and row.admin_up

    def undo(self, ctx: Context) -> None:
        def do(ipr: Any) -> None:
            row = links.link_row(ipr, self.name)
            if row is None:
                return
            if row.alias == IPT_COMMENT:
                links.delete_link(ipr, self.name)
            else:
                links.delete_address(ipr, self.name, self.cidr)

        ctx.netlink(ctx.host(self.host).place, do)


@dataclass(frozen=True)
class Enslave(Intent):
    """A link made a port of a linux bridge (`ip link set LINK master BRIDGE`)."""

    host: str
    link: str
    master: str

    def key(self) -> str:
        return f"enslave:{self.link}"

    def title(self) -> str:
        return f"put {self.link} into {self.master}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, f"ip link set {self.link} master {self.master}"),)

    def apply(self, ctx: Context) -> None:
        ctx.netlink(ctx.host(self.host).place, links.set_master, self.link, self.master)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(ctx.host(self.host).place, links.link_row, self.link)
        return row is not None and row.master == self.master

    def undo(self, ctx: Context) -> None:
        def do(ipr: Any) -> None:
            row = links.link_row(ipr, self.link)
            if row is not None and row.master == self.master:
                links.set_master(ipr, self.link, None)

        ctx.netlink(ctx.host(self.host).place, do)


@dataclass(frozen=True)
class LinkUp(Intent):
    """A link administratively up, on the host or inside a container."""

    host: str
    link: str
    container: ContainerRef | None = None

    def key(self) -> str:
        return f"up:{self.link}"

    def title(self) -> str:
        where = f" in {self.container.name}" if self.container else f" on {self.host}"
        return f"bring {self.link} up{where}"

    def commands(self) -> tuple[Cmd, ...]:
        return (cmd_in(self.container, f"ip link set {self.link} up"),)

    def apply(self, ctx: Context) -> None:
        ctx.netlink(place(ctx, self.host, self.container), links.set_up, self.link)

    def verify(self, ctx: Context) -> bool:
        """Up and carrying: a veth set up has no carrier for a few milliseconds, and
        nothing crosses it until it has."""
        row = ctx.netlink(place(ctx, self.host, self.container), links.link_row, self.link)
        return row is not None and row.admin_up and row.state in ("UP", "UNKNOWN")


@dataclass(frozen=True)
class NeighboursRetried(Intent):
    """Unresolved neighbour entries on a link forgotten, so the next packet asks
    again: addresses looked up while the link was down stay INCOMPLETE, then FAILED,
    and answer "Destination Host Unreachable" for seconds after it is back up. An
    action, not a state: there is nothing to verify once it ran."""

    host: str
    link: str
    container: ContainerRef | None = None

    def key(self) -> str:
        return f"neigh:{self.container.name + ':' if self.container else ''}{self.link}"

    def title(self) -> str:
        where = f" in {self.container.name}" if self.container else f" on {self.host}"
        return f"forget unresolved neighbours on {self.link}{where}"

    def commands(self) -> tuple[Cmd, ...]:
        return (cmd_in(self.container, f"ip neigh flush dev {self.link} nud incomplete nud failed"),)

    def apply(self, ctx: Context) -> None:
        at = place(ctx, self.host, self.container)
        stale = ctx.netlink(at, links.unresolved_neighbours, self.link)
        if stale:
            ctx.netlink(at, links.forget_neighbours, self.link, stale)

    def verify(self, ctx: Context) -> bool:
        return True


@dataclass(frozen=True)
class SetMtu(Intent):
    """A link's MTU, on the host or inside a container."""

    host: str
    link: str
    mtu: int
    container: ContainerRef | None = None

    def key(self) -> str:
        return f"mtu:{self.container.name + ':' if self.container else ''}{self.link}"

    def title(self) -> str:
        where = f" in {self.container.name}" if self.container else f" on {self.host}"
        return f"MTU {self.mtu} on {self.link}{where}"

    def commands(self) -> tuple[Cmd, ...]:
        return (cmd_in(self.container, f"ip link set {self.link} mtu {self.mtu}"),)

    def apply(self, ctx: Context) -> None:
        ctx.netlink(place(ctx, self.host, self.container), links.set_mtu, self.link, self.mtu)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(place(ctx, self.host, self.container), links.link_row, self.link)
        return row is not None and row.mtu == self.mtu
