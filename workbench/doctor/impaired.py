"""Faults that are deliberate or intermittent: a flapping link, loss in the underlay.

Read live like every other fact (the doctor does not ask containet what it
injected): a host-side veth's carrier-change counter at the start and at the end
of the doctor's run (a link that went down and up meanwhile is flapping), and the
rules of the lab's underlay namespace that drop a share of what goes to a host
(iptables `-m statistic`, containet's loss substitute or anyone's).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..host import Host, Place
from ..intents.base import Cmd, Intent, Where
from .model import Out, Status

if TYPE_CHECKING:
    from ..steps import Context
    from .facts import DoctorFacts, EndFacts

#: the lab's underlay namespace (workbench.lab.UNDERLAY_NS; read here without importing the lab)
MIN_WINDOW = 0.6  # seconds: a flap of period 1 s changes the carrier at least once in this


@dataclass(frozen=True)
class Flap:
    link: str
    changes: int  # carrier changes seen while the doctor ran
    seconds: float


@dataclass(frozen=True)
class LinkImpair:
    """What shapes one container's link: its bridge port state, a netem qdisc on the
    host side, random drops in the container's INPUT chain."""

    container: str
    veth: str
    port_state: str = ""  # "forwarding", "disabled", ... ("" when not a linux bridge port)
    netem: str = ""  # the netem qdisc's options, "" when none
    drop_percent: float = 0.0  # iptables statistic DROP in the container's INPUT


@dataclass(frozen=True)
class UnderlayDrop:
    dst_ip: str
    percent: float
    rule: tuple[str, ...]  # as iptables-save prints it, chain first (for the fix)


def _carrier_changes(ipr: Any, name: str) -> int | None:
    for msg in ipr.get_links(ifname=name):
        value = msg.get("IFLA_CARRIER_CHANGES")
        return int(value) if value is not None else None
    return None


def carrier_changes(host: Host, veth: str) -> int | None:
    try:
        return host.place.netlink(_carrier_changes, veth)
    except Exception:  # noqa: BLE001 - gone, or the namespace: other checks say so
        return None


def underlay_drops(ns: str) -> tuple[UnderlayDrop, ...]:
    place = Place.named(ns)
    if not place.exists():
        return ()
    try:
        out = place.run(["iptables-save", "-t", "filter"], check=False, timeout=10).stdout
    except Exception:  # noqa: BLE001 - no iptables: nothing to report
        return ()
    found = []
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", "FORWARD"] or "statistic" not in words or words[-2:] != ["-j", "DROP"]:
            continue
        dst = _after(words, "-d")
        prob = _after(words, "--probability")
        if dst and prob:
            found.append(UnderlayDrop(dst.split("/")[0], round(float(prob) * 100, 1), tuple(words[1:])))
    return tuple(found)


def _netem(ipr: Any, name: str) -> str:
    idx = ipr.link_lookup(ifname=name)
    for q in ipr.get_qdiscs(idx[0]) if idx else []:
        if q.get("kind") == "netem":
            opts = q.get("TCA_OPTIONS") or {}
            delay = (opts.get("delay") or 0) if isinstance(opts, dict) else 0
            return f"netem qdisc{f' (delay {delay} ticks)' if delay else ''}"
    return ""


def link_impair(host: Host, container: str, pid: int, veth: str) -> LinkImpair:
    state = ""
    try:
        out = host.place.run(["bridge", "-j", "link", "show", "dev", veth], check=False, timeout=10).stdout
        rows = json.loads(out or "[]")
        state = str(rows[0].get("state", "")) if rows and rows[0].get("master") else ""
    except Exception:  # noqa: BLE001 - no bridge tool, or not a bridge port
        pass
    try:
        netem = host.place.netlink(_netem, veth)
    except Exception:  # noqa: BLE001
        netem = ""
    drop = 0.0
    if pid:
        try:
            save = Place.of_pid(pid, container).run(
                ["iptables-save", "-t", "filter"], check=False, timeout=10
            )
            for line in save.stdout.splitlines():
                words = shlex.split(line)
                prob = _after(words, "--probability")
                if words[:2] == ["-A", "INPUT"] and prob and words[-2:] == ["-j", "DROP"]:
                    drop += float(prob) * 100
        except Exception:  # noqa: BLE001 - no iptables inside: nothing drops there
            pass
    return LinkImpair(container, veth, state, netem, round(drop, 1))


def _after(words: list[str], key: str) -> str | None:
    return words[words.index(key) + 1] if key in words[:-1] else None


@dataclass(frozen=True)
class DeleteRule(Intent):
    """Delete one iptables rule (as iptables-save printed it) in a namespace."""

    host: str
    ns: str
    rule: tuple[str, ...]

    def key(self) -> str:
        return f"delete-rule:{self.ns}"

    def title(self) -> str:
        return f"delete the rule {' '.join(self.rule[:1])} ... in {self.ns}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINET, f"ip netns exec {self.ns} iptables -D {shlex.join(self.rule)}"),)

    def apply(self, ctx: Context) -> None:
        ctx.run(Place.named(self.ns), ["iptables", "-w", "-D", *self.rule], check=False)

    def verify(self, ctx: Context) -> bool:
        return (
            ctx.run(Place.named(self.ns), ["iptables", "-w", "-C", *self.rule], check=False).returncode != 0
        )


def check_flap(out: Out, f: DoctorFacts, end: EndFacts) -> None:
    flap = next((fl for fl in f.flaps if fl.link == end.host_veth), None)
    if flap is None or flap.changes <= 0:
        return
    out.add(
        f"veth {end.host_veth} ({end.host})",
        "flapping",
        Status.FAIL,
        f"{end.host_veth} went down and up {flap.changes} time(s) in the {flap.seconds:.1f} s the doctor "
        "looked: the link is flapping (a cable, a driver, or `containet link flap`); "
        "stop what toggles it, then bring it up",
    )


def check_underlay_loss(out: Out, f: DoctorFacts, host_name: str, tunnel: str) -> None:
    host = f.hosts[host_name]
    for drop in f.underlay_drops:
        if drop.dst_ip != host.underlay_ip:
            continue
        out.add(
            f"tunnel {tunnel} ({host_name})",
            "loss",
            Status.FAIL if drop.percent >= 5 else Status.WARN,
            f"the underlay drops {drop.percent:g}% of what goes to {host_name} ({drop.dst_ip}) at random: "
            f"iptables FORWARD {' '.join(drop.rule[1:])} in {f.underlay_ns}",
            out.fix(
                f"delete the rule that drops {drop.percent:g}% toward {host_name}",
                DeleteRule(host_name, f.underlay_ns, drop.rule),
            ),
        )


def check_link_impair(out: Out, f: DoctorFacts, end: EndFacts) -> None:
    """A link impaired on purpose works, but not as a plain link does: say how (WARN),
    and FAIL a bridge port that forwards nothing when nothing else carries its frames."""
    imp = next((i for i in f.impairs if i.container == end.name), None)
    if imp is None:
        return
    hop = f"veth {imp.veth} ({end.host})"
    if imp.port_state and imp.port_state != "forwarding":
        carried = f.small is not None and f.small.ok
        out.add(
            hop,
            "bridge port",
            Status.WARN if carried else Status.FAIL,
            f"bridge port state {imp.port_state}: the bridge forwards nothing through {imp.veth}"
            + (
                "; its frames go another way (containet's delay line: `containet netem show`)"
                if carried
                else f" (`bridge link set dev {imp.veth} state 3` forwards again)"
            ),
        )
    if imp.netem:
        out.add(hop, "netem", Status.WARN, f"{imp.netem} on {imp.veth}: what {end.name} receives is impaired")
    if imp.drop_percent:
        out.add(
            f"container {end.name} ({end.host})",
            "random drops",
            Status.FAIL if imp.drop_percent >= 30 else Status.WARN,
            f"{end.name}'s INPUT chain drops {imp.drop_percent:g}% of what it receives at random "
            "(iptables -m statistic; `containet netem clear` removes containet's)",
        )
