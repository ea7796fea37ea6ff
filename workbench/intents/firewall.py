"""Intents on iptables in a host's namespace (argument lists, marked with a comment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..marks import IPT_COMMENT
from .base import Cmd, Intent, Where

if TYPE_CHECKING:
    from ..steps import Context

#: one rule: its table and the rule as `iptables -A` takes it (chain first)
Rule = tuple[str, tuple[str, ...]]


def seed_rules(subnet: str, ovs_bridge: str) -> tuple[Rule, ...]:
    """The seed's iptables.sh: NAT out of the subnet, FORWARD through the bridge."""
    return (
        ("nat", ("POSTROUTING", "-s", subnet, "!", "-d", subnet, "-j", "MASQUERADE")),
        (
            "filter",
            (
                "FORWARD",
                "-o",
                ovs_bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ),
        ),
        ("filter", ("FORWARD", "-i", ovs_bridge, "!", "-o", ovs_bridge, "-j", "ACCEPT")),
        ("filter", ("FORWARD", "-i", ovs_bridge, "-o", ovs_bridge, "-j", "ACCEPT")),
    )


def _ipt(table: str, op: str, rule: tuple[str, ...]) -> list[str]:
    return ["iptables", "-w", "-t", table, op, rule[0], *rule[1:], "-m", "comment", "--comment", IPT_COMMENT]


def _restore_text(rules: tuple[Rule, ...], op: str = "-A") -> str:
    lines = []
    for table in dict.fromkeys(t for t, _ in rules):
        lines.append(f"*{table}")
        for t, rule in rules:
            if t == table:
                lines.append(" ".join([op, *rule, "-m", "comment", "--comment", IPT_COMMENT]))
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FirewallRules(Intent):
    """Rules appended in order, each marked so that undo removes exactly these."""

    host: str
    rules: tuple[Rule, ...]

    def key(self) -> str:
        return "iptables"

    def title(self) -> str:
        return "NAT and FORWARD rules"

    def commands(self) -> tuple[Cmd, ...]:
        return tuple(Cmd(Where.HOST, " ".join(_ipt(t, "-A", r)).replace(" -w", "")) for t, r in self.rules)

    def _present(self, ctx: Context, table: str, rule: tuple[str, ...]) -> bool:
        return ctx.run(ctx.host(self.host).place, _ipt(table, "-C", rule), check=False).returncode == 0

    def apply(self, ctx: Context) -> None:
        todo = tuple(tr for tr in self.rules if not self._present(ctx, *tr))
        if todo:  # one iptables-restore for all of them, appended in order
            place = ctx.host(self.host).place
            ctx.run(place, ["iptables-restore", "--noflush", "-w"], stdin=_restore_text(todo))

    def verify(self, ctx: Context) -> bool:
        """Every rule there, asked in one go: iptables-restore stops at a -C that fails."""
        check = ["iptables-restore", "--noflush", "-w"]
        place = ctx.host(self.host).place
        return ctx.run(place, check, check=False, stdin=_restore_text(self.rules, "-C")).returncode == 0

    def undo(self, ctx: Context) -> None:
        for table, rule in self.rules:
            while self._present(ctx, table, rule):
                ctx.run(ctx.host(self.host).place, _ipt(table, "-D", rule))


@dataclass(frozen=True)
class AcceptBridged(Intent):
    """FORWARD accepts frames bridged on `bridge` (inserted first, marked)."""

    host: str
    bridge: str

    def _rule(self) -> list[str]:
        br = self.bridge
        return ["FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", IPT_COMMENT, "-j", "ACCEPT"]

    def key(self) -> str:
        return f"accept:{self.bridge}"

    def title(self) -> str:
        return f"accept frames bridged on {self.bridge} in FORWARD"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, " ".join(["iptables", "-I", *self._rule()])),)

    def apply(self, ctx: Context) -> None:
        if not self.verify(ctx):
            ctx.run(ctx.host(self.host).place, ["iptables", "-w", "-I", *self._rule()])

    def verify(self, ctx: Context) -> bool:
        place = ctx.host(self.host).place
        return ctx.run(place, ["iptables", "-w", "-C", *self._rule()], check=False).returncode == 0

    def undo(self, ctx: Context) -> None:
        while self.verify(ctx):
            ctx.run(ctx.host(self.host).place, ["iptables", "-w", "-D", *self._rule()])
