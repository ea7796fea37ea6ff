"""The impairment of one link as an intent: render, apply, verify, undo.

Two backends (workbench.impair.backend):
- netem: one `tc qdisc replace dev PORT root netem ...` on the port whose egress
  goes toward the target (rate too; a container's upload is a tbf on its eth0);
- substitute: each part by what this kernel has —
  loss       an iptables `statistic` rule (marked) in the target's INPUT chain, or for a
             tunnel in the underlay's FORWARD chain;
  rate       tc tbf (a container: the QoS cap, both ways; workbench.qos);
  delay, jitter, duplicate, reorder
             the delay line: the port is set to bridge state disabled (it no longer
             forwards), a marked veth pair is added to its bridge, and a relay
             (workbench/impair/relay.py) forwards frames between the port and the pair,
             delaying those toward the target.
The commands shown are the ones run (argument lists, no shell).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import links, qos
from ..host import Place
from ..intents.base import Cmd, ContainerRef, Intent, Where
from ..marks import IPT_COMMENT
from . import codec, procs
from .backend import NETEM, netem_kwargs
from .link import ImpairLink
from .spec import Spec

if TYPE_CHECKING:
    from ..steps import Context

codec.register(ContainerRef)
codec.register(ImpairLink)
codec.register(Spec)

NETEM_HANDLE = 0x10000
ROOT = 0xFFFFFFFF
BR_DISABLED, BR_FORWARDING = 0, 3


def relay_args(link: ImpairLink, spec: Spec) -> list[str]:
    near = link.port
    far = link.delay_links[1]
    args = ["--near", near, "--far", far]
    for name in ("delay", "jitter", "duplicate", "reorder"):
        value = getattr(spec, name)
        if value:
            args += [f"--{name}", f"{value:g}"]
    return args


def loss_rule(link: ImpairLink, loss: float) -> tuple[str, list[str]]:
    """(chain, match words) of the loss rule; the probability as iptables takes it."""
    prob = f"{loss / 100:.4f}".rstrip("0").rstrip(".") or "0"
    stat = ["-m", "statistic", "--mode", "random", "--probability", prob]
    if link.kind == "tunnel":
        return "FORWARD", ["-d", str(link.dst_ip), *stat]
    return "INPUT", stat


def _ipt(op: str, chain: str, words: list[str]) -> list[str]:
    return ["iptables", "-w", op, chain, *words, "-m", "comment", "--comment", IPT_COMMENT, "-j", "DROP"]


@codec.register
@dataclass(frozen=True)
class Impair(Intent):
    host: str
    link: ImpairLink
    spec: Spec
    backend: str

    @property
    def settle(self) -> float:
        return 1.0

    def key(self) -> str:
        return f"impair:{self.link.target}"

    def title(self) -> str:
        return f"impair {self.link.target}: {self.spec.describe()} ({self.backend})"

    # --- rendering -------------------------------------------------------------
    def _at(self, text: str) -> Cmd:
        """A command in the port's namespace: the host's, or the lab's underlay."""
        if self.link.kind == "container" or self.link.ns is None:
            return Cmd(Where.HOST, text)
        ns = self.link.ns
        if text.startswith("ip "):
            return Cmd(Where.CONTAINET, f"ip -n {ns} {text[3:]}")
        return Cmd(Where.CONTAINET, f"ip netns exec {ns} {text}")

    def _in_target(self, text: str) -> Cmd:
        if self.link.container is not None:
            return Cmd(Where.CONTAINER, text, self.link.container)
        return self._at(text)

    def commands(self) -> tuple[Cmd, ...]:
        return self.part_commands(self.spec, ("delay", "loss", "rate"))

    def part_commands(self, spec: Spec, parts: tuple[str, ...]) -> tuple[Cmd, ...]:
        link, out = self.link, []
        if self.backend == NETEM:
            words = spec.netem_words() + ([f"rate {spec.rate:g}mbit"] if spec.rate else [])
            if words:
                out.append(self._at(f"tc qdisc replace dev {link.port} root netem {' '.join(words)}"))
            if spec.rate and link.container is not None:
                out.append(self._in_target(f"tc qdisc replace dev eth0 root {_tbf_words(spec.rate)}"))
            return tuple(out)
        if "delay" in parts and spec.needs_delay_line:
            a, b = link.delay_links
            out += [
                self._at(f"ip link add {a} mtu {link.mtu} type veth peer name {b} mtu {link.mtu}"),
                self._at(f"ip link set {a} alias {IPT_COMMENT}"),
                self._at(f"ip link set {b} alias {IPT_COMMENT}"),
                self._at(f"ip link set {a} master {link.bridge} up"),
                self._at(f"ip link set {b} up"),
                self._at(f"bridge link set dev {link.port} state {BR_DISABLED}"),
                self._at(procs.shown("relay", link.key, relay_args(link, spec))),
            ]
        if "loss" in parts and spec.loss:
            chain, words = loss_rule(link, spec.loss)
            out.append(self._in_target(shlex.join(_ipt("-A", chain, words)).replace(" -w", "")))
        if "rate" in parts and spec.rate:
            if link.kind == "container" and link.container is not None:
                from ..intents.shaping import QosCap

                out += QosCap(self.host, link.container.name, spec.rate, link.on_ovs).commands()
            else:
                out.append(self._at(f"tc qdisc add dev {link.port} root {_tbf_words(spec.rate)}"))
        return tuple(out)

    # --- apply / verify / undo ----------------------------------------------------
    def _target_place(self, ctx: Context) -> Place:
        if self.link.container is not None:
            return ctx.place_of(self.link.container)
        return self.link.place

    def apply(self, ctx: Context) -> None:
        change(ctx, None, self)

    def verify(self, ctx: Context) -> bool:
        link, spec = self.link, self.spec
        if self.backend == NETEM:
            return ctx.netlink(link.place, _netem_on, link.port) == (not spec.empty)
        if spec.needs_delay_line:
            pid = procs.pid_of("relay", link.key)
            if pid is None or procs.args_of(pid)[-len(relay_args(link, spec)) :] != relay_args(link, spec):
                return False
        elif procs.pid_of("relay", link.key) is not None:
            return False
        rules = _marked_drops(ctx, self._target_place(ctx))
        if spec.loss:
            chain, words = loss_rule(link, spec.loss)
            if not any(r[:1] == [chain] and _prob(r) == _prob(words) for r in rules):
                return False
        elif rules:
            return False
        rate = self._rate(ctx)
        return (
            (rate is None)
            if not spec.rate
            else (rate is not None and abs(rate - spec.rate) < 0.02 * spec.rate)
        )

    def _rate(self, ctx: Context) -> float | None:
        link = self.link
        if link.kind == "container":
            return qos.read(self._qos_target(ctx), self._ovs(ctx)).rate_mbit
        return ctx.netlink(link.place, qos.tbf_rate, link.port)

    def _qos_target(self, ctx: Context) -> qos.Target:
        assert self.link.container is not None
        pid = _pid(ctx, self.link.container)
        return qos.Target(self.link.target, ctx.host(self.host), pid, self.link.on_ovs)

    def _ovs(self, ctx: Context) -> Any:
        return ctx.ovs(self.host) if self.link.on_ovs else None

    def undo(self, ctx: Context) -> None:
        change(ctx, self, None)


def _tbf_words(rate: float) -> str:
    return f"tbf rate {rate:g}mbit burst {qos.default_burst_kb(rate):g}kb latency 50ms"


def _pid(ctx: Context, ref: ContainerRef) -> int:
    path = ctx.place_of(ref).path or ""
    return int(path.split("/")[2])


def _netem_on(ipr: Any, port: str) -> bool:
    idx = links.index_of(ipr, port)
    return idx is not None and any(q.get("kind") == "netem" for q in ipr.get_qdiscs(idx))


def _netem_set(ipr: Any, port: str, spec: Spec) -> None:
    idx = links.must_index(ipr, port)
    kw = netem_kwargs(spec.delay, spec.jitter, spec.loss, spec.duplicate, spec.reorder)
    if spec.rate:
        kw["rate"] = f"{int(spec.rate * 1000)}kbit"
    ipr.tc("replace", "netem", idx, NETEM_HANDLE, **kw)


def _netem_clear(ipr: Any, port: str) -> None:
    if _netem_on(ipr, port):
        ipr.tc("del", index=links.must_index(ipr, port), handle=NETEM_HANDLE, parent=ROOT)


def _prob(words: list[str]) -> float:
    for i, w in enumerate(words[:-1]):
        if w == "--probability":
            return round(float(words[i + 1]), 4)
    return -1.0


def _marked_drops(ctx: Context, place: Place) -> list[list[str]]:
    """containet's statistic DROP rules in a namespace's filter table (chain first)."""
    out = ctx.run(place, ["iptables-save", "-t", "filter"], check=False).stdout
    found = []
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:1] == ["-A"] and "statistic" in words and IPT_COMMENT in words:
            i = words.index("--comment") if "--comment" in words else -1
            if i >= 0 and words[i + 1] == IPT_COMMENT:
                found.append(words[1:])
    return found


def _drop_marked(ctx: Context, place: Place) -> None:
    for rule in _marked_drops(ctx, place):
        ctx.run(place, ["iptables", "-w", "-D", *rule], check=False)


# --- the parts ------------------------------------------------------------------------
def _splice(ipr: Any, link: ImpairLink) -> None:
    a, b = link.delay_links
    if links.index_of(ipr, a) is None:
        ipr.link("add", ifname=a, kind="veth", peer={"ifname": b, "mtu": link.mtu}, mtu=link.mtu)
    for name in (a, b):
        links.set_alias(ipr, name, IPT_COMMENT)
    links.set_master(ipr, a, link.bridge)
    links.set_up(ipr, a)
    links.set_up(ipr, b)


def _unsplice(ipr: Any, link: ImpairLink) -> None:
    links.delete_link(ipr, link.delay_links[0])


def _bridge_state(ctx: Context, link: ImpairLink, state: int) -> None:
    if link.bridge is None:
        return
    row = ctx.netlink(link.place, links.link_row, link.port)
    if row is not None and row.master == link.bridge:
        ctx.run(link.place, ["bridge", "link", "set", "dev", link.port, "state", str(state)])


def change(ctx: Context, old: Impair | None, new: Impair | None) -> None:
    """From one impairment of a link to another (None: none), touching only the parts
    that differ; undo is change(old, None), which removes every part whatever is recorded."""
    some = new or old
    assert some is not None
    link = some.link
    before = old.spec if old is not None else None
    after = new.spec if new is not None else Spec()
    if some.backend == NETEM:
        if after.empty:
            ctx.netlink(link.place, _netem_clear, link.port)
        else:
            ctx.netlink(link.place, _netem_set, link.port, after)
        if link.container is not None:
            place = ctx.place_of(link.container)
            if after.rate:
                ctx.netlink(place, qos._tbf_set, "eth0", after.rate, qos.default_burst_kb(after.rate))
            else:
                ctx.netlink(place, qos._tbf_clear, "eth0")
        return
    # the delay line
    had_line = before is None or before.needs_delay_line  # unknown (undo): take any down
    if (had_line or after.needs_delay_line) and (before is None or _line(before) != _line(after)):
        if after.needs_delay_line:
            if link.bridge is None:
                raise _no_bridge(link)
            ctx.netlink(link.place, _splice, link)
            _bridge_state(ctx, link, BR_DISABLED)
            procs.start(link.place, "relay", link.key, relay_args(link, after))
        else:
            _bridge_state(ctx, link, BR_FORWARDING)
            procs.stop("relay", link.key)
            ctx.netlink(link.place, _unsplice, link)
    # loss
    if before is None or before.loss != after.loss:
        place = some._target_place(ctx)
        _drop_marked(ctx, place)
        if after.loss:
            chain, words = loss_rule(link, after.loss)
            ctx.run(place, _ipt("-A", chain, words))
    # rate
    if before is None or before.rate != after.rate:
        if link.kind == "container":
            target, ovs = some._qos_target(ctx), some._ovs(ctx)
            if after.rate:
                qos.apply(target, ovs, after.rate, qos.default_burst_kb(after.rate))
            else:
                qos.clear(target, ovs)
        elif after.rate:
            ctx.netlink(link.place, qos._tbf_set, link.port, after.rate, qos.default_burst_kb(after.rate))
        else:
            ctx.netlink(link.place, qos._tbf_clear, link.port)


def _line(spec: Spec) -> tuple[float, ...]:
    return (spec.delay, spec.jitter, spec.duplicate, spec.reorder)


def _no_bridge(link: ImpairLink) -> Exception:
    from ..errors import BadInput

    return BadInput(
        f"{link.target} hangs on OVS, not on a linux bridge: without tc netem, delay, jitter, "
        "duplicate and reorder need the delay line, which splices a linux bridge port (exp1); "
        "loss and rate work everywhere"
    )
