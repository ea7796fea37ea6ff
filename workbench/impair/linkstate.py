"""A link taken down, or flapping, as intents (`containet link down|up|flap`).

The link is the one an impairment of the same target uses (workbench.impair.link):
a container's host-side veth, or for a tunnel the host's underlay port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import links
from ..intents import LinkUp, NeighboursRetried
from ..intents.base import Cmd, Intent, Where
from ..steps import Step, wait_verified
from . import codec, procs
from .link import ImpairLink

if TYPE_CHECKING:
    from ..steps import Context


def _at(link: ImpairLink, text: str) -> Cmd:
    if link.kind == "container" or link.ns is None:
        return Cmd(Where.HOST, text)
    if text.startswith("ip "):
        return Cmd(Where.CONTAINET, f"ip -n {link.ns} {text[3:]}")
    return Cmd(Where.CONTAINET, f"ip netns exec {link.ns} {text}")


@codec.register
@dataclass(frozen=True)
class LinkDown(Intent):
    host: str
    link: ImpairLink

    def key(self) -> str:
        return f"down:{self.link.target}"

    def title(self) -> str:
        return f"{self.link.port} down"

    def commands(self) -> tuple[Cmd, ...]:
        return (_at(self.link, f"ip link set {self.link.port} down"),)

    def apply(self, ctx: Context) -> None:
        ctx.netlink(self.link.place, links.set_up, self.link.port, False)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(self.link.place, links.link_row, self.link.port)
        return row is not None and not row.admin_up

    def undo(self, ctx: Context) -> None:
        """Up again, and back only when frames cross: carrier, and for a container no
        address left unresolved from the outage (`link up`, a flap stopped, a fault
        reverted all come here)."""
        if ctx.netlink(self.link.place, links.link_row, self.link.port) is None:
            return
        ctx.netlink(self.link.place, links.set_up, self.link.port)
        if self.link.container is not None:
            wait_verified(Step(LinkUp(self.link.host, self.link.port), why="link up"), ctx)
            NeighboursRetried(self.link.host, "eth0", self.link.container).apply(ctx)


@codec.register
@dataclass(frozen=True)
class Flap(Intent):
    host: str
    link: ImpairLink
    period: float = 1.0
    count: int = 0  # 0: until stopped

    def _args(self) -> list[str]:
        return ["--link", self.link.port, "--period", f"{self.period:g}", "--count", str(self.count)]

    def key(self) -> str:
        return f"flap:{self.link.target}"

    def title(self) -> str:
        times = {0: "until `link up`", 1: "once"}.get(self.count, f"{self.count} times")
        return f"{self.link.port} flapping every {self.period:g} s, {times}"

    def commands(self) -> tuple[Cmd, ...]:
        return (_at(self.link, procs.shown("flap", self.link.key, self._args())),)

    def apply(self, ctx: Context) -> None:
        procs.start(self.link.place, "flap", self.link.key, self._args())

    def verify(self, ctx: Context) -> bool:
        return procs.pid_of("flap", self.link.key) is not None

    def undo(self, ctx: Context) -> None:
        procs.stop("flap", self.link.key)
        LinkDown(self.host, self.link).undo(ctx)
