"""The doctor's logic: pure functions from facts (already read) to checks.

Nothing here touches the system: `workbench.doctor` reads the facts (netlink,
OVSDB, iptables, sysctls, ofproto/trace, probes) and hands them to
`build_report`, which walks the path between two containers hop by hop, in
path order, and says OK / FAIL / WARN for each check with the value it read
and, on FAIL, the fix: a shell command and an action the workbench can apply.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .actions import TUNNEL_OVERHEAD, UNDERLAY_MTU
from .links import LinkRow
from .marks import IPT_COMMENT

OK, FAIL, WARN = "ok", "fail", "warn"
VLAN_TAG = 4  # bytes of an 802.1Q header


# --- what the doctor answers -------------------------------------------------------
@dataclass(frozen=True)
class FixOp:
    """One change: `kind` says what the workbench does, `cmd` is the same as a shell command.

    where: "host" (the host's namespace), "ovs" (its OVS database), "container:NAME",
    or "containet" (a containet command)."""

    kind: str
    host: str
    where: str
    cmd: str
    args: tuple[tuple[str, str], ...] = ()

    def arg(self, key: str) -> str:
        return dict(self.args)[key]


@dataclass(frozen=True)
class FixAction:
    title: str
    ops: tuple[FixOp, ...]


@dataclass(frozen=True)
class Check:
    name: str
    hop: str
    status: str  # ok | fail | warn
    evidence: str
    fix_command: str | None = None
    fix: FixAction | None = None


@dataclass(frozen=True)
class DoctorReport:
    src: str
    dst: str
    src_host: str
    dst_host: str
    scenario: str | None
    checks: tuple[Check, ...]
    seconds: float = 0.0

    @property
    def hops(self) -> tuple[str, ...]:
        """Hop names in path order."""
        return tuple(dict.fromkeys(c.hop for c in self.checks))

    def hop_checks(self, hop: str) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.hop == hop)

    def hop_status(self, hop: str) -> str:
        states = {c.status for c in self.hop_checks(hop)}
        return FAIL if FAIL in states else WARN if WARN in states else OK

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status == FAIL), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None

    @property
    def summary(self) -> str:
        bad = self.first_failure
        if bad is None:
            warns = sum(c.status == WARN for c in self.checks)
            extra = f", {warns} warning(s)" if warns else ""
            return f"{self.src} -> {self.dst}: every hop is OK ({len(self.checks)} checks{extra})"
        return f"{self.src} -> {self.dst}: first broken hop is {bad.hop}: {bad.name}: {bad.evidence}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hops"] = [{"name": h, "status": self.hop_status(h)} for h in self.hops]
        first = self.first_failure
        data["first_failure"] = asdict(first) if first else None
        data["ok"] = self.ok
        data["summary"] = self.summary
        return data


# --- what the doctor reads ---------------------------------------------------------
@dataclass(frozen=True)
class RouteFact:
    """The kernel's answer to `ip route get DST` in a namespace."""

    dst: str
    dev: str | None = None
    gateway: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ProbeFact:
    """A ping: payload size, don't-fragment, packets sent and answered."""

    size: int
    df: bool
    sent: int
    received: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.received > 0

    def describe(self) -> str:
        what = f"{self.size + 28} B" + (" DF" if self.df else "")
        extra = f" ({self.error})" if self.error else ""
        return f"{what} {self.received}/{self.sent}{extra}"


@dataclass(frozen=True)
class OvsPortFact:
    name: str
    bridge: str
    type: str = ""
    tag: int | None = None
    options: tuple[tuple[str, str], ...] = ()
    admin_state: str = ""
    link_state: str = ""
    error: str = ""
    stats: tuple[tuple[str, int], ...] = ()

    @property
    def remote_ip(self) -> str | None:
        return dict(self.options).get("remote_ip")

    @property
    def is_tunnel(self) -> bool:
        return self.type in TUNNEL_OVERHEAD or self.type in ("geneve", "stt")

    def stat(self, key: str) -> int:
        return dict(self.stats).get(key, 0)


@dataclass(frozen=True)
class FirewallFact:
    save: str = ""  # `iptables-save -c -t filter`
    bridge_nf: int | None = None  # net.bridge.bridge-nf-call-iptables; None: not there
    error: str | None = None


@dataclass(frozen=True)
class TraceFact:
    """`ovs-appctl ofproto/trace`: the flow asked about and OVS's decision."""

    bridge: str
    flow: str
    actions: str = ""  # the "Datapath actions:" line
    outputs: tuple[str, ...] = ()  # port names the frame leaves by
    tunnels: tuple[str, ...] = ()  # remote IPs it is tunnelled to
    notes: tuple[str, ...] = ()  # the "->" lines
    error: str | None = None

    @property
    def dropped(self) -> bool:
        return self.error is None and (not self.actions or self.actions == "drop")


@dataclass(frozen=True)
class HostFacts:
    name: str
    underlay_ip: str
    ns_ok: bool = True
    ovs_ok: bool = True
    error: str | None = None
    links: tuple[LinkRow, ...] = ()
    ovs_bridges: tuple[str, ...] = ()
    ovs_ports: tuple[OvsPortFact, ...] = ()
    firewall: FirewallFact | None = None
    underlay_route: str | None = None  # ovs/route/lookup of the peer's underlay address
    underlay_route_error: str | None = None
    underlay_ping: ProbeFact | None = None  # to the peer host's underlay address
    trace: TraceFact | None = None
    userspace: bool = True  # OVS's userspace datapath (netdev), not the kernel's

    def link(self, name: str | None) -> LinkRow | None:
        return next((lk for lk in self.links if lk.name == name), None) if name else None

    def port(self, name: str | None) -> OvsPortFact | None:
        return next((p for p in self.ovs_ports if p.name == name), None) if name else None

    def underlay_mtu(self) -> int:
        for name in ("br-phy", "eth1"):
            row = self.link(name)
            if row is not None and row.mtu:
                return row.mtu
        return UNDERLAY_MTU


@dataclass(frozen=True)
class EndFacts:
    """One container of the pair, as read from inside and from docker."""

    name: str
    host: str
    running: bool
    eth0: LinkRow | None = None
    route: RouteFact | None = None  # to the other end
    host_veth: str = ""
    tx_checksum: bool | None = None  # tx checksum offload of eth0 (None: unknown)


@dataclass(frozen=True)
class EndPlan:
    """What the active scenario says about one container (None: no scenario knows it)."""

    cidr: str | None = None
    attach: str | None = None  # bridge the host side joins
    ovs: bool = False
    vlan: int | None = None
    vlan_known: bool = False
    gateway: str | None = None


@dataclass(frozen=True)
class HostPlan:
    linux_bridge: str | None = None  # exp1: docker0
    ovs_bridge: str = "br0"
    tunnels: tuple[tuple[str, str, str], ...] = ()  # (port, type, remote_ip) the plan creates


@dataclass(frozen=True)
class DoctorFacts:
    src: EndFacts
    dst: EndFacts
    src_ip: str | None
    dst_ip: str | None
    hosts: dict[str, HostFacts]
    src_plan: EndPlan = field(default_factory=EndPlan)
    dst_plan: EndPlan = field(default_factory=EndPlan)
    host_plans: dict[str, HostPlan] = field(default_factory=dict)
    scenario: str | None = None
    subnet: str | None = None
    small: ProbeFact | None = None
    big: ProbeFact | None = None
    route: tuple[str, ...] = ()  # the hosts a frame crosses, src's first (see tunnel_route)

    @property
    def cross_host(self) -> bool:
        return self.src.host != self.dst.host

    @property
    def hosts_on_path(self) -> tuple[str, ...]:
        if len(self.route) >= 2 and self.route[0] == self.src.host and self.route[-1] == self.dst.host:
            return self.route
        return tuple(dict.fromkeys((self.src.host, self.dst.host)))

    def next_host(self, host: str) -> str | None:
        path = self.hosts_on_path
        i = path.index(host) if host in path else -1
        return path[i + 1] if 0 <= i < len(path) - 1 else None

    def previous_host(self, host: str) -> str | None:
        path = self.hosts_on_path
        i = path.index(host) if host in path else -1
        return path[i - 1] if i > 0 else None


def tunnel_route(
    src: str, dst: str, underlay: Mapping[str, str], remotes: Mapping[str, Iterable[str]]
) -> tuple[str, ...]:
    """The hosts a frame crosses from host `src` to host `dst`: the shortest chain of
    tunnels, each host's tunnel remotes (underlay addresses) naming the next host.
    Direct where src has a tunnel to dst; through host1 in a star. (src, dst) when no
    chain is known, so a missing tunnel is still looked for where it should be."""
    if src == dst:
        return (src,)
    by_ip = {ip: host for host, ip in underlay.items()}
    came_from: dict[str, str] = {src: src}
    frontier = [src]
    while frontier and dst not in came_from:
        nxt = []
        for host in frontier:
            for peer in sorted({by_ip[r] for r in remotes.get(host, ()) if r in by_ip}):
                if peer not in came_from:
                    came_from[peer] = host
                    nxt.append(peer)
        frontier = nxt
    if dst not in came_from:
        return (src, dst)
    path = [dst]
    while path[-1] != src:
        path.append(came_from[path[-1]])
    return tuple(reversed(path))


#: turns (host, where, plain command) into the command as typed in this mode
Render = Callable[[str, str, str], str]


def plain(_host: str, _where: str, text: str) -> str:
    return text


def _fix(title: str, ops: Iterable[FixOp], render: Render) -> tuple[str, FixAction]:
    ops = tuple(ops)
    return "; ".join(render(op.host, op.where, op.cmd) for op in ops), FixAction(title, ops)


class _Out:
    """Collects checks of one report."""

    def __init__(self, render: Render) -> None:
        self.checks: list[Check] = []
        self.render = render

    def add(self, hop: str, name: str, status: str, evidence: str, fix: tuple[str, FixAction] | None = None):  # type: ignore[no-untyped-def]
        cmd, action = fix if fix and status == FAIL else (None, None)
        self.checks.append(Check(name, hop, status, evidence, cmd, action))

    def fix(self, title: str, *ops: FixOp) -> tuple[str, FixAction]:
        return _fix(title, ops, self.render)


# --- iptables: would FORWARD let a bridged frame through? ------------------------
@dataclass(frozen=True)
class FwVerdict:
    accept: bool
    by: str  # the rule or policy that decides
    caveats: tuple[str, ...] = ()


def parse_iptables_save(text: str) -> tuple[dict[str, str], dict[str, list[str]], dict[str, int]]:
    """Chain policies, rules per chain (as the -A line without "-A CHAIN") and policy packet counts."""
    policies: dict[str, str] = {}
    counts: dict[str, int] = {}
    rules: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(":"):
            parts = line[1:].split()
            policies[parts[0]] = parts[1] if len(parts) > 1 else "-"
            m = re.match(r"\[(\d+):\d+\]", parts[2]) if len(parts) > 2 else None
            counts[parts[0]] = int(m.group(1)) if m else 0
            rules.setdefault(parts[0], [])
        else:
            line = re.sub(r"^\[\d+:\d+\]\s*", "", line)
            if line.startswith("-A "):
                _, chain, rest = line.split(" ", 2)
                rules.setdefault(chain, []).append(rest)
    return policies, rules, counts


def _iface_match(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else pattern == name


def _net_match(spec: str, ip: str | None) -> bool | None:
    if ip is None:
        return None
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return None


def _rule_match(rule: str, bridge: str, src: str | None, dst: str | None) -> tuple[str, str, str | None]:
    """("yes" | "no" | "some", target, condition) for a frame bridged on `bridge`."""
    words = shlex.split(rule)
    result, target, cond = "yes", "", None
    i, neg = 0, False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg = True
            i += 1
            continue
        val = words[i + 1] if i + 1 < len(words) else ""
        if w in ("-i", "--in-interface", "-o", "--out-interface"):
            hit = _iface_match(val, bridge) != neg
            if not hit:
                result = "no"
        elif w in ("-s", "--source", "-d", "--destination"):
            m = _net_match(val, src if w in ("-s", "--source") else dst)
            if m is None:
                result, cond = ("some" if result == "yes" else result), f"{w} {val}"
            elif m == neg:
                result = "no"
        elif w in ("-p", "--protocol"):
            if val not in ("all", "0") and result == "yes":
                result, cond = "some", f"only {'not ' if neg else ''}{val}"
        elif w in ("-m", "--match"):
            if val == "comment":
                i += 4 if i + 2 < len(words) and words[i + 2] == "--comment" else 2
                neg = False
                continue
            if result == "yes":
                result, cond = "some", f"-m {val}"
            j = i + 2
            while j < len(words) and words[j] not in ("-j", "-g", "-m", "-i", "-o", "-s", "-d", "-p"):
                j += 1
            i, neg = j, False
            continue
        elif w in ("-j", "--jump", "-g", "--goto"):
            target = val
        elif w.startswith("-") and result == "yes":
            result, cond = "some", w
        i += 2
        neg = False
    return result, target, cond


def forward_verdict(
    save: str, bridge: str, src: str | None, dst: str | None, chain: str = "FORWARD", depth: int = 0
) -> FwVerdict | None:
    """Walk `chain` as the kernel would for a new frame bridged on `bridge` (in and out)."""
    policies, rules, _ = parse_iptables_save(save)
    caveats: list[str] = []
    for n, rule in enumerate(rules.get(chain, []), start=1):
        hit, target, cond = _rule_match(rule, bridge, src, dst)
        if hit == "no" or not target:
            continue
        where = f"{chain} rule {n}: -A {chain} {rule}"
        if hit == "some":
            if target in ("DROP", "REJECT"):
                caveats.append(f"may drop ({cond}): {where}")
            continue
        if target == "ACCEPT":
            return FwVerdict(True, where, tuple(caveats))
        if target in ("DROP", "REJECT"):
            return FwVerdict(False, where, tuple(caveats))
        if target == "RETURN":
            return None
        if target in rules and depth < 8:
            sub = forward_verdict(save, bridge, src, dst, target, depth + 1)
            if sub is not None:
                return FwVerdict(sub.accept, sub.by, tuple(caveats) + sub.caveats)
    if depth:
        return None
    policy = policies.get(chain, "ACCEPT")
    return FwVerdict(policy == "ACCEPT", f"{chain} policy {policy}", tuple(caveats))


# --- ofproto/trace -----------------------------------------------------------------
def parse_dp_ports(dpif_show: str) -> dict[int, str]:
    """`ovs-appctl dpif/show`: datapath port number -> port name."""
    out = {}
    for line in dpif_show.splitlines():
        m = re.match(r"\s+(\S+) (\d+|LOCAL|\d+)/(\d+):", line)
        if m:
            out[int(m.group(3))] = m.group(1)
    return out


def _top_level(actions: str) -> list[str]:
    items, depth, cur = [], 0, ""
    for ch in actions:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        items.append(cur)
    return [i.strip() for i in items if i.strip()]


def parse_trace(bridge: str, flow: str, text: str, dp_ports: dict[int, str]) -> TraceFact:
    actions = ""
    notes = []
    for line in text.splitlines():
        if line.startswith("Datapath actions:"):
            actions = line.split(":", 1)[1].strip()
        elif line.strip().startswith("->"):
            notes.append(line.strip()[2:].strip())
    outputs: list[str] = []
    tunnels: list[str] = []
    for item in _top_level(actions):
        if item.isdigit():
            outputs.append(dp_ports.get(int(item), item))
        elif item.startswith("tnl_push("):
            m = re.search(r"tnl_port\((\d+)\)", item)
            if m:
                outputs.append(dp_ports.get(int(m.group(1)), m.group(1)))
            m = re.search(r"ipv4\(src=[^,]+,dst=([^,]+)", item)
            if m:
                tunnels.append(m.group(1))
    for note in notes:
        m = re.match(r"tunneling to (\S+)", note)
        if m and m.group(1) not in tunnels:
            tunnels.append(m.group(1))
    return TraceFact(bridge, flow, actions, tuple(dict.fromkeys(outputs)), tuple(tunnels), tuple(notes))


# --- the walk ------------------------------------------------------------------------
def _carrier(row: LinkRow) -> str:
    return "carrier" if row.state in ("UP", "UNKNOWN") else f"no carrier ({row.state})"


def check_container(out: _Out, f: DoctorFacts, end: EndFacts, plan: EndPlan, other_ip: str | None) -> None:
    hop = f"container {end.name} ({end.host})"
    where = f"container:{end.name}"
    if not end.running:
        out.add(hop, "running", FAIL, "the container is not running", _redo(out, end.host, f.scenario))
        return
    eth0 = end.eth0
    if eth0 is None:
        out.add(hop, "eth0", FAIL, "no eth0 inside: the veth pair is gone", _redo(out, end.host, f.scenario))
        return
    if not eth0.admin_up:
        out.add(
            hop,
            "eth0 up",
            FAIL,
            f"eth0 is administratively DOWN (state {eth0.state})",
            out.fix(
                f"bring eth0 up in {end.name}",
                FixOp("link_up", end.host, where, "ip link set eth0 up", (("link", "eth0"),)),
            ),
        )
    elif eth0.state not in ("UP", "UNKNOWN"):
        out.add(hop, "eth0 up", WARN, f"eth0 is up but has {_carrier(eth0)}: the host side is down")
    else:
        out.add(hop, "eth0 up", OK, f"eth0 UP, {_carrier(eth0)}, mac {eth0.mac}")
    # address in the right subnet
    addrs = [a for a in eth0.addresses if ":" not in a]
    want = plan.cidr
    if not addrs:
        fix = (
            out.fix(
                f"give {end.name} its address {want}",
                FixOp("add_address", end.host, where, f"ip addr add {want} dev eth0", (("cidr", want),)),
            )
            if want
            else None
        )
        out.add(hop, "address", FAIL, "eth0 has no IPv4 address", fix)
    elif want and want not in addrs:
        out.add(
            hop,
            "address",
            FAIL,
            f"eth0 has {', '.join(addrs)}, the scenario gives it {want}",
            out.fix(
                f"give {end.name} its address {want}",
                FixOp("add_address", end.host, where, f"ip addr add {want} dev eth0", (("cidr", want),)),
            ),
        )
    elif f.subnet and not any(_in_net(a.split("/")[0], f.subnet) for a in addrs):
        out.add(hop, "address", FAIL, f"eth0 has {', '.join(addrs)}, outside the subnet {f.subnet}")
    else:
        out.add(hop, "address", OK, f"eth0 {', '.join(addrs)}" + (f" in {f.subnet}" if f.subnet else ""))
    # route to the other end
    route = end.route
    if route is None or other_ip is None:
        out.add(hop, "route", WARN, "route not read (the other end has no address)")
    elif route.error:
        net = str(ipaddress.ip_interface(addrs[0]).network) if addrs else (f.subnet or "")
        ops = [FixOp("add_route", end.host, where, f"ip route add {net} dev eth0", (("dst", net),))]
        if plan.gateway:
            ops.append(
                FixOp(
                    "add_route",
                    end.host,
                    where,
                    f"ip route add default via {plan.gateway}",
                    (("dst", "0.0.0.0/0"), ("gateway", plan.gateway)),
                )
            )
        out.add(
            hop,
            "route",
            FAIL,
            f"no route to {other_ip}: {route.error}",
            out.fix(f"restore {end.name}'s routes", *ops) if net else None,
        )
    elif route.dev != "eth0":
        out.add(hop, "route", FAIL, f"{other_ip} is routed via {route.dev}, not eth0")
    else:
        via = f" via {route.gateway}" if route.gateway else " (on-link)"
        out.add(hop, "route", OK, f"{other_ip} dev eth0{via}")
    check_mtu(out, f, end, hop)
    check_offload(out, f, end, hop)


def path_mtu_limit(f: DoctorFacts) -> tuple[int | None, str]:
    """The largest container MTU the path carries, and why."""
    if not f.cross_host:
        return None, "same host: no tunnel"
    tun = path_tunnel(f, f.src.host, f.next_host(f.src.host) or f.dst.host)
    host = f.hosts.get(f.src.host)
    kind = tun.type if tun else next((t for _p, t, _r in _plan_tunnels(f, f.src.host)), "gre")
    if kind not in TUNNEL_OVERHEAD:
        return None, f"{kind} tunnel"
    under = host.underlay_mtu() if host else UNDERLAY_MTU
    # an access port's tag travels inside the tunnel: 4 more bytes of 802.1Q header
    tagged = any(
        (p := f.hosts[e.host].port(e.host_veth)) is not None and p.tag is not None
        for e in (f.src, f.dst)
        if e.host in f.hosts
    )
    if tagged:
        return under - TUNNEL_OVERHEAD[
            kind
        ] - VLAN_TAG, f"{kind.upper()} + 802.1Q tag over a {under} underlay"
    return under - TUNNEL_OVERHEAD[kind], f"{kind.upper()} over a {under} underlay"


def check_mtu(out: _Out, f: DoctorFacts, end: EndFacts, hop: str) -> None:
    assert end.eth0 is not None
    mtu = end.eth0.mtu
    limit, why = path_mtu_limit(f)
    probes = ", ".join(p.describe() for p in (f.small, f.big) if p is not None)
    if limit is None:
        out.add(hop, "MTU", OK, f"eth0 MTU {mtu} ({why})")
        return
    if mtu <= limit:
        out.add(hop, "MTU", OK, f"eth0 MTU {mtu} fits {limit} ({why})")
        return
    trap = (
        " — the MTU trap: ping works, TCP stalls"
        if f.small is not None and f.small.ok and f.big is not None and not f.big.ok
        else ""
    )
    if f.small is not None and not f.small.ok:
        # too big for the tunnel, but not why even small pings fail: let the real cause come first
        out.add(
            hop,
            "MTU",
            WARN,
            f"eth0 MTU {mtu} > {limit} that fits {why}: fix it after the hop that stops small pings",
        )
        return
    ops = []
    for e in (f.src, f.dst):
        if e.eth0 is not None and e.eth0.mtu > limit:
            ops.append(mtu_op(e.host, f"container:{e.name}", "eth0", limit))
            ops.append(mtu_op(e.host, "host", e.host_veth, limit))
    out.add(
        hop,
        "MTU",
        FAIL,
        f"eth0 MTU {mtu} > {limit} that fits {why}: full-size frames are lost in the tunnel"
        + (f" (probes: {probes}){trap}" if probes else ""),
        out.fix(f"set the MTU to {limit} on both containers and their host sides", *ops),
    )


def check_offload(out: _Out, f: DoctorFacts, end: EndFacts, hop: str) -> None:
    """A container on a port of OVS's userspace datapath must checksum its own
    frames: OVS forwards them as they are, so a TCP checksum left to the "NIC"
    is never filled in, and TCP dies while ping (checksummed in software) works."""
    host = f.hosts.get(end.host)
    if host is None or not host.userspace or host.port(end.host_veth) is None or end.tx_checksum is None:
        return
    if not end.tx_checksum:
        out.add(hop, "checksums", OK, "tx checksum offload off: eth0 computes its own checksums")
        return
    out.add(
        hop,
        "checksums",
        FAIL,
        "tx checksum offload is on, and its port is on OVS's userspace datapath, which forwards "
        "frames as they are: TCP checksums are never filled in (ping works, TCP dies)",
        out.fix(
            f"turn tx checksum offload off in {end.name}",
            FixOp(
                "tx_offload_off",
                end.host,
                f"container:{end.name}",
                "ethtool -K eth0 tx off",
                (("link", "eth0"),),
            ),
        ),
    )


def mtu_op(host: str, where: str, link: str, mtu: int) -> FixOp:
    return FixOp("set_mtu", host, where, f"ip link set {link} mtu {mtu}", (("link", link), ("mtu", str(mtu))))


def _in_net(ip: str, net: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)
    except ValueError:
        return False


def _redo(out: _Out, host: str, scenario: str | None) -> tuple[str, FixAction] | None:
    if not scenario:
        return None
    return out.fix(
        f"re-apply scenario {scenario} (re-creates what is missing)",
        FixOp(
            "scenario_apply", host, "containet", f"containet scenario apply {scenario}", (("name", scenario),)
        ),
    )


def check_veth(out: _Out, f: DoctorFacts, end: EndFacts, plan: EndPlan, other: EndFacts) -> None:
    host = f.hosts[end.host]
    veth = end.host_veth
    hop = f"veth {veth} ({end.host})"
    row = host.link(veth)
    if row is None:
        out.add(hop, "exists", FAIL, f"no link {veth} on {end.host}", _redo(out, end.host, f.scenario))
        return
    if not row.admin_up:
        out.add(
            hop,
            "up",
            FAIL,
            f"{veth} is DOWN on {end.host} (container side: {end.eth0.state if end.eth0 else '-'})",
            out.fix(
                f"bring {veth} up on {end.host}",
                FixOp("link_up", end.host, "host", f"ip link set {veth} up", (("link", veth),)),
            ),
        )
    else:
        out.add(hop, "up", OK, f"{veth} UP, {_carrier(row)}")
    port = host.port(veth)
    attach = plan.attach
    if plan.ovs or (attach is None and port is not None):
        bridge = attach or (port.bridge if port else host_plan(f, end.host).ovs_bridge)
        if port is None or port.bridge != bridge:
            tag = f" tag={plan.vlan}" if plan.vlan is not None else ""
            now = f"a port of {port.bridge}" if port else "not an OVS port"
            out.add(
                hop,
                "OVS port",
                FAIL,
                f"{veth} is {now}, should be a port of OVS {bridge}",
                out.fix(
                    f"add {veth} to {bridge}",
                    FixOp(
                        "ovs_add_port",
                        end.host,
                        "ovs",
                        f"ovs-vsctl add-port {bridge} {veth}{tag}",
                        (("bridge", bridge), ("port", veth), ("tag", str(plan.vlan or ""))),
                    ),
                ),
            )
        else:
            bad = port.admin_state == "down" or port.link_state == "down"
            state = f"admin {port.admin_state or '?'}, link {port.link_state or '?'}"
            out.add(hop, "OVS port", WARN if bad else OK, f"port of OVS {bridge} ({state})")
            other_plan = f.dst_plan if end is f.src else f.src_plan
            check_tag(out, hop, end, plan, port, f.hosts[other.host].port(other.host_veth), other, other_plan)
    else:
        want = attach or host_plan(f, end.host).linux_bridge
        if want and row.master != want:
            out.add(
                hop,
                "bridge",
                FAIL,
                f"{veth} is {'in ' + row.master if row.master else 'in no bridge'}, should be in {want}",
                out.fix(
                    f"put {veth} into {want}",
                    FixOp(
                        "set_master",
                        end.host,
                        "host",
                        f"ip link set {veth} master {want}",
                        (("link", veth), ("master", want)),
                    ),
                ),
            )
        elif row.master is None:
            out.add(hop, "bridge", FAIL, f"{veth} is in no bridge")
        else:
            out.add(hop, "bridge", OK, f"enslaved to {row.master}")
    if end.eth0 is not None:
        if row.mtu < end.eth0.mtu:
            out.add(
                hop,
                "MTU pair",
                FAIL,
                f"{veth} MTU {row.mtu} < eth0 MTU {end.eth0.mtu}: bigger frames die on the veth",
                out.fix(f"set {veth} MTU to {end.eth0.mtu}", mtu_op(end.host, "host", veth, end.eth0.mtu)),
            )
        elif row.mtu > end.eth0.mtu:
            out.add(hop, "MTU pair", WARN, f"{veth} MTU {row.mtu}, eth0 MTU {end.eth0.mtu}")
        else:
            out.add(hop, "MTU pair", OK, f"both ends MTU {row.mtu}")


def check_tag(
    out: _Out,
    hop: str,
    end: EndFacts,
    plan: EndPlan,
    port: OvsPortFact,
    other_port: OvsPortFact | None,
    other: EndFacts,
    other_plan: EndPlan,
) -> None:
    have = port.tag
    if plan.vlan_known and have != plan.vlan:
        want = plan.vlan
        op = FixOp(
            "ovs_set_tag",
            end.host,
            "ovs",
            f"ovs-vsctl set port {port.name} tag={want}"
            if want is not None
            else f"ovs-vsctl clear port {port.name} tag",
            (("port", port.name), ("tag", "" if want is None else str(want))),
        )
        out.add(
            hop,
            "VLAN tag",
            FAIL,
            f"tag {_tag(have)}, the scenario gives {end.name} {_tag(want)}",
            out.fix(f"set {port.name}'s tag to {_tag(want)}", op),
        )
        return
    if other_port is not None and other_port.tag != have:
        if other_plan.vlan_known and other_port.tag != other_plan.vlan:
            out.add(hop, "VLAN tag", OK, f"tag {_tag(have)} as planned ({other.name}'s port is not)")
            return
        out.add(
            hop,
            "VLAN tag",
            FAIL,
            f"tag {_tag(have)}, {other.name} is on {_tag(other_port.tag)}: different VLANs do not talk"
            + (" (isolated by design in this scenario)" if plan.vlan_known else ""),
        )
        return
    out.add(hop, "VLAN tag", OK, f"tag {_tag(have)}" + (" as planned" if plan.vlan_known else ""))


def _tag(tag: int | None) -> str:
    return "none (untagged)" if tag is None else str(tag)


def host_plan(f: DoctorFacts, host: str) -> HostPlan:
    return f.host_plans.get(host, HostPlan())


def check_linux_bridge(out: _Out, f: DoctorFacts, host_name: str, bridge: str) -> None:
    host = f.hosts[host_name]
    hop = f"{bridge} ({host_name})"
    row = host.link(bridge)
    if row is None:
        out.add(hop, "exists", FAIL, f"no bridge {bridge}", _redo(out, host_name, f.scenario))
        return
    if not row.admin_up:
        out.add(
            hop,
            "up",
            FAIL,
            f"{bridge} is DOWN",
            out.fix(
                f"bring {bridge} up",
                FixOp("link_up", host_name, "host", f"ip link set {bridge} up", (("link", bridge),)),
            ),
        )
    else:
        out.add(hop, "up", OK, f"{bridge} UP, mtu {row.mtu}, {', '.join(row.addresses) or 'no address'}")
    if f.cross_host:
        ovs_br = host_plan(f, host_name).ovs_bridge
        obr = host.link(ovs_br)
        if obr is None or obr.master != bridge:
            now = "missing" if obr is None else (f"in {obr.master}" if obr.master else "in no bridge")
            out.add(
                hop,
                f"{ovs_br} in {bridge}",
                FAIL,
                f"{ovs_br} is {now}: {bridge} cannot reach OVS and the tunnel",
                out.fix(
                    f"put {ovs_br} into {bridge}",
                    FixOp(
                        "set_master",
                        host_name,
                        "host",
                        f"ip link set {ovs_br} master {bridge}",
                        (("link", ovs_br), ("master", bridge)),
                    ),
                ),
            )
        elif not obr.admin_up:
            out.add(
                hop,
                f"{ovs_br} in {bridge}",
                FAIL,
                f"{ovs_br} is in {bridge} but DOWN",
                out.fix(
                    f"bring {ovs_br} up",
                    FixOp("link_up", host_name, "host", f"ip link set {ovs_br} up", (("link", ovs_br),)),
                ),
            )
        else:
            out.add(hop, f"{ovs_br} in {bridge}", OK, f"{ovs_br} is a port of {bridge}, UP")
    check_firewall(out, f, host_name, bridge, hop)


def check_firewall(out: _Out, f: DoctorFacts, host_name: str, bridge: str | None, hop: str) -> None:
    fw = f.hosts[host_name].firewall
    if fw is None:
        return
    if bridge is None:
        policy = parse_iptables_save(fw.save)[0].get("FORWARD", "?") if not fw.error else "?"
        out.add(
            hop,
            "firewall",
            OK,
            "not on this path: OVS's userspace datapath forwards without netfilter "
            f"(FORWARD policy {policy})",
        )
        return
    if fw.bridge_nf is None:
        out.add(
            hop,
            "firewall",
            WARN,
            "bridge netfilter unknown (br_netfilter not loaded: net.bridge.bridge-nf-call-iptables "
            "missing); bridged frames then bypass iptables",
        )
        return
    if fw.bridge_nf == 0:
        out.add(hop, "firewall", OK, "bridge-nf-call-iptables=0: bridged frames skip iptables FORWARD")
        return
    if fw.error:
        out.add(hop, "firewall", WARN, f"bridge-nf-call-iptables=1 but iptables unreadable: {fw.error}")
        return
    verdict = forward_verdict(fw.save, bridge, f.src_ip, f.dst_ip)
    back = forward_verdict(fw.save, bridge, f.dst_ip, f.src_ip)
    assert verdict is not None and back is not None
    dropped = _policy_drops(fw.save)
    note = f" ({dropped} packets hit the policy)" if dropped else ""
    if not verdict.accept or not back.accept:
        by = verdict.by if not verdict.accept else back.by
        cmd = f"iptables -I FORWARD -i {bridge} -o {bridge} -m comment --comment {IPT_COMMENT} -j ACCEPT"
        out.add(
            hop,
            "firewall",
            FAIL,
            f"bridge-nf-call-iptables=1 sends frames bridged on {bridge} through iptables, and "
            f"{by} drops them{note} (or: sysctl -w net.bridge.bridge-nf-call-iptables=0)",
            out.fix(
                f"accept frames bridged on {bridge} in FORWARD",
                FixOp("iptables_accept_bridge", host_name, "host", cmd, (("bridge", bridge),)),
            ),
        )
        return
    caveats = "; ".join(verdict.caveats)
    out.add(
        hop,
        "firewall",
        WARN if caveats else OK,
        f"bridge-nf-call-iptables=1, FORWARD accepts (decided by {verdict.by})"
        + (f"; {caveats}" if caveats else ""),
    )


def _policy_drops(save: str) -> int:
    policies, _, counts = parse_iptables_save(save)
    return counts.get("FORWARD", 0) if policies.get("FORWARD") in ("DROP", "REJECT") else 0


def check_ovs(out: _Out, f: DoctorFacts, host_name: str, entry: str | None, deliver: str | None) -> None:
    """OVS bridge state, the ports the path uses, and the flow trace verdict."""
    host = f.hosts[host_name]
    bridge = host_plan(f, host_name).ovs_bridge
    hop = f"OVS {bridge} ({host_name})"
    if not host.ovs_ok:
        out.add(
            hop,
            "ovs",
            FAIL,
            f"Open vSwitch not answering: {host.error or 'disconnected'}",
            out.fix(
                "restart the lab's Open vSwitch (lab up repairs a half-built lab)",
                FixOp("lab_up", host_name, "containet", "containet lab up"),
            ),
        )
        return
    if bridge not in host.ovs_bridges:
        out.add(hop, "bridge", FAIL, f"no OVS bridge {bridge}", _redo(out, host_name, f.scenario))
        return
    link = host.link(bridge)
    out.add(hop, "bridge", OK, f"{bridge} present" + (f", tap {link.state}" if link else ""))
    for name in dict.fromkeys(p for p in (entry, deliver) if p):
        port = host.port(name)
        if port is None:
            continue
        counters = (
            f"rx {port.stat('rx_packets')} tx {port.stat('tx_packets')} "
            f"drops {port.stat('rx_dropped') + port.stat('tx_dropped')} "
            f"errors {port.stat('rx_errors') + port.stat('tx_errors')}"
        )
        bad = port.error or port.admin_state == "down" or port.link_state == "down"
        errs = port.stat("rx_errors") + port.stat("tx_errors")
        status = WARN if bad or errs else OK
        detail = f"error {port.error!r}, " if port.error else ""
        out.add(
            hop,
            f"port {name}",
            status,
            f"{detail}admin {port.admin_state or '?'}, link {port.link_state or '?'}, {counters}",
        )
    check_trace(out, f, host_name, hop, deliver)


def check_trace(out: _Out, f: DoctorFacts, host_name: str, hop: str, deliver: str | None) -> None:
    trace = f.hosts[host_name].trace
    if trace is None:
        return
    if trace.error:
        out.add(hop, "ofproto/trace", WARN, f"trace failed: {trace.error}")
        return
    where = ", ".join(trace.outputs) or "nowhere"
    tun = f" (tunnelled to {', '.join(trace.tunnels)})" if trace.tunnels else ""
    flood = " by flooding" if any("flooding" in n for n in trace.notes) else ""
    if trace.dropped:
        miss = next((n for n in trace.notes if n.startswith("neighbor cache miss")), None)
        if trace.tunnels and miss:  # not OVS's choice: the tunnel's far end does not answer ARP
            where = ", ".join(trace.tunnels)
            out.add(
                hop,
                "ofproto/trace",
                WARN,
                f"frame heads for the tunnel to {where}, but {miss}: see the tunnel",
            )
            return
        out.add(
            hop, "ofproto/trace", FAIL, f"OVS drops the frame: Datapath actions: {trace.actions or 'none'}"
        )
        return
    if deliver is None:  # toward the tunnel
        if trace.tunnels:
            out.add(hop, "ofproto/trace", OK, f"frame leaves by {where}{tun}{flood}")
        else:
            out.add(hop, "ofproto/trace", FAIL, f"frame never reaches a tunnel: goes to {where}")
        return
    if deliver in trace.outputs:
        out.add(hop, "ofproto/trace", OK, f"frame is delivered to {deliver}{flood}")
        return
    # not delivered: if the port itself is wrong, its own check says so below; do not blame OVS twice
    out.add(
        hop,
        "ofproto/trace",
        WARN,
        f"frame goes to {where}, not {deliver}: see the checks of {deliver}",
    )


def _plan_tunnels(f: DoctorFacts, host: str) -> tuple[tuple[str, str, str], ...]:
    return host_plan(f, host).tunnels


def path_tunnel(f: DoctorFacts, host: str, peer: str) -> OvsPortFact | None:
    """The tunnel port `host` uses toward `peer`: the planned one, else by remote_ip, else the only one."""
    facts = f.hosts.get(host)
    peer_facts = f.hosts.get(peer)
    if facts is None:
        return None
    bridge = host_plan(f, host).ovs_bridge
    mine = [p for p in facts.ovs_ports if p.is_tunnel and p.bridge == bridge]
    if peer_facts is not None:
        for port, _t, remote in _plan_tunnels(f, host):
            if remote == peer_facts.underlay_ip:
                found = facts.port(port)
                if found is not None:
                    return found
        for p in mine:
            if p.remote_ip == peer_facts.underlay_ip:
                return p
    return mine[0] if len(mine) == 1 else None


def check_tunnel(out: _Out, f: DoctorFacts, host_name: str, peer_name: str, outbound: bool) -> None:
    host, peer = f.hosts[host_name], f.hosts[peer_name]
    hop_port = path_tunnel(f, host_name, peer_name)
    planned = next((t for t in _plan_tunnels(f, host_name) if t[2] == peer.underlay_ip), None)
    name = hop_port.name if hop_port else (planned[0] if planned else "?")
    hop = f"tunnel {name} ({host_name})"
    if not host.ovs_ok:
        out.add(
            hop,
            "ovs",
            FAIL,
            f"Open vSwitch on {host_name} is not answering: {host.error or 'disconnected'}",
            out.fix(
                "restart the lab's Open vSwitch (lab up repairs a half-built lab)",
                FixOp("lab_up", host_name, "containet", "containet lab up"),
            ),
        )
        return
    if hop_port is None:
        out.add(
            hop,
            "tunnel port",
            FAIL,
            f"no tunnel port toward {peer_name} ({peer.underlay_ip}) on {host_plan(f, host_name).ovs_bridge}",
            _redo(out, host_name, f.scenario),
        )
        return
    want_type = planned[1] if planned else None
    peer_port = path_tunnel(f, peer_name, host_name)
    if want_type and hop_port.type != want_type:
        out.add(
            hop,
            "type",
            FAIL,
            f"type {hop_port.type}, the scenario uses {want_type}",
            out.fix(
                f"make {name} a {want_type} port",
                FixOp(
                    "ovs_set_type",
                    host_name,
                    "ovs",
                    f"ovs-vsctl set interface {name} type={want_type}",
                    (("port", name), ("type", want_type)),
                ),
            ),
        )
    elif peer_port is not None and peer_port.type != hop_port.type:
        out.add(hop, "type", FAIL, f"type {hop_port.type}, {peer_name}'s end is {peer_port.type}")
    else:
        out.add(hop, "type", OK, f"{hop_port.type}" + (f", as {peer_name}'s end" if peer_port else ""))
    remote = hop_port.remote_ip
    if remote != peer.underlay_ip:
        out.add(
            hop,
            "remote_ip",
            FAIL,
            f"options:remote_ip={remote}, but {peer_name}'s underlay address is {peer.underlay_ip}",
            out.fix(
                f"point {name} at {peer.underlay_ip}",
                FixOp(
                    "ovs_set_remote_ip",
                    host_name,
                    "ovs",
                    f"ovs-vsctl set interface {name} options:remote_ip={peer.underlay_ip}",
                    (("port", name), ("remote_ip", peer.underlay_ip)),
                ),
            ),
        )
    else:
        out.add(hop, "remote_ip", OK, f"remote_ip={remote} is {peer_name}'s underlay address")
    if hop_port.error:
        out.add(hop, "interface", WARN, f"OVS reports: {hop_port.error}")
    if not outbound:
        return
    if host.underlay_route_error:
        out.add(
            hop,
            "underlay route",
            FAIL,
            f"OVS has no route to {peer.underlay_ip}: {host.underlay_route_error}",
            out.fix(
                "rebuild the lab's underlay (lab up repairs it)",
                FixOp("lab_up", host_name, "containet", "containet lab up"),
            ),
        )
    elif host.underlay_route is not None:
        out.add(hop, "underlay route", OK, f"{peer.underlay_ip}: {host.underlay_route}")
    ping = host.underlay_ping
    if ping is not None:
        if ping.ok:
            out.add(hop, "underlay reach", OK, f"{host_name} -> {peer.underlay_ip}: {ping.describe()}")
        else:
            out.add(
                hop,
                "underlay reach",
                FAIL,
                f"{host_name} cannot reach {peer_name}'s underlay {peer.underlay_ip}: {ping.describe()}",
                out.fix(
                    "rebuild the lab's underlay (lab up repairs it)",
                    FixOp("lab_up", host_name, "containet", "containet lab up"),
                ),
            )


def check_host_ok(out: _Out, f: DoctorFacts, host_name: str) -> bool:
    host = f.hosts[host_name]
    if host.ns_ok:
        return True
    out.add(
        f"host {host_name}",
        "reachable",
        FAIL,
        f"{host_name} cannot be read: {host.error or 'namespace missing'}",
        out.fix("bring the lab up", FixOp("lab_up", host_name, "containet", "containet lab up")),
    )
    return False


def ovs_entry(f: DoctorFacts, end: EndFacts, plan: EndPlan) -> str | None:
    """The OVS port a container's frames enter or leave by."""
    host = f.hosts[end.host]
    port = host.port(end.host_veth)
    if port is not None:
        return port.name
    if plan.ovs:
        return end.host_veth
    return host_plan(f, end.host).ovs_bridge  # exp1: br0's own port, inside docker0


def _linux_bridge(f: DoctorFacts, end: EndFacts, plan: EndPlan) -> str | None:
    if plan.ovs:
        return None
    if plan.attach:
        return plan.attach
    row = f.hosts[end.host].link(end.host_veth)
    if row is not None and row.master and f.hosts[end.host].port(end.host_veth) is None:
        return row.master
    return host_plan(f, end.host).linux_bridge


def check_end_to_end(out: _Out, f: DoctorFacts) -> None:
    hop = "end to end"
    if f.small is None:
        return
    if f.small.ok and (f.big is None or f.big.ok):
        out.add(hop, "ping", OK, ", ".join(p.describe() for p in (f.small, f.big) if p))
    elif f.small.ok:
        out.add(
            hop,
            "ping",
            FAIL,
            f"small pings pass ({f.small.describe()}) but full-size DF frames are lost ({f.big.describe()})"  # type: ignore[union-attr]
            ": a hop drops big frames (MTU)",
        )
    else:
        out.add(hop, "ping", FAIL, f"{f.src.name} cannot ping {f.dst.name}: {f.small.describe()}")


def build_report(f: DoctorFacts, render: Render = plain, seconds: float = 0.0) -> DoctorReport:
    """Every check, in path order: src container, its veth, its bridge(s), its OVS and tunnel,
    both ends of each tunnel on the way (and the OVS of any host in between), the far host's
    OVS, bridge, veth and the destination container; then end to end."""
    out = _Out(render)
    src, dst = f.src, f.dst
    hosts_ok = all(check_host_ok(out, f, h) for h in f.hosts_on_path)
    if not hosts_ok:
        return DoctorReport(src.name, dst.name, src.host, dst.host, f.scenario, tuple(out.checks), seconds)
    check_container(out, f, src, f.src_plan, f.dst_ip)
    if src.running and src.eth0 is not None:
        check_veth(out, f, src, f.src_plan, dst)
    lb_src = _linux_bridge(f, src, f.src_plan)
    lb_dst = _linux_bridge(f, dst, f.dst_plan)
    if lb_src:
        check_linux_bridge(out, f, src.host, lb_src)
    src_br = host_plan(f, src.host).ovs_bridge
    dst_br = host_plan(f, dst.host).ovs_bridge
    if f.cross_host:
        check_ovs(out, f, src.host, ovs_entry(f, src, f.src_plan), None)
        if not lb_src:
            check_firewall(out, f, src.host, None, f"OVS {src_br} ({src.host})")
        path = f.hosts_on_path
        for a, b in zip(path, path[1:], strict=False):
            check_tunnel(out, f, a, b, outbound=True)
            check_tunnel(out, f, b, a, outbound=False)
            back = path_tunnel(f, b, a)
            if b != dst.host:  # a host in between: in by one tunnel, out by the next
                check_ovs(out, f, b, back.name if back else None, None)
        back = path_tunnel(f, dst.host, path[-2])
        check_ovs(out, f, dst.host, back.name if back else None, ovs_entry(f, dst, f.dst_plan))
        if not lb_dst:
            check_firewall(out, f, dst.host, None, f"OVS {dst_br} ({dst.host})")
    elif f.src_plan.ovs or lb_src is None:
        check_ovs(out, f, src.host, ovs_entry(f, src, f.src_plan), ovs_entry(f, dst, f.dst_plan))
    if lb_dst and (f.cross_host or lb_dst != lb_src):
        check_linux_bridge(out, f, dst.host, lb_dst)
    if dst.running and dst.eth0 is not None:
        check_veth(out, f, dst, f.dst_plan, src)
    check_container(out, f, dst, f.dst_plan, f.src_ip)
    check_end_to_end(out, f)
    return DoctorReport(src.name, dst.name, src.host, dst.host, f.scenario, tuple(out.checks), seconds)


# --- printing ------------------------------------------------------------------------
MARKS = {OK: "OK  ", FAIL: "FAIL", WARN: "WARN"}


def format_report(report: DoctorReport) -> str:
    lines = [
        f"doctor {report.src} ({report.src_host}) -> {report.dst} ({report.dst_host})"
        + (f", scenario {report.scenario}" if report.scenario else ", no scenario applied")
    ]
    for n, hop in enumerate(report.hops, start=1):
        lines.append(f"{n:2}. {hop}  [{report.hop_status(hop).upper()}]")
        for c in report.hop_checks(hop):
            lines.append(f"      {MARKS[c.status]} {c.name}: {c.evidence}")
            if c.fix_command:
                lines.append(f"           fix: {c.fix_command}")
    first = report.first_failure
    lines.append("")
    lines.append(report.summary)
    if first and first.fix:
        lines.append(f"fix: {first.fix.title}: `containet doctor {report.src} {report.dst} --fix` applies it")
    return "\n".join(lines)


# --- path MTU ------------------------------------------------------------------------
@dataclass(frozen=True)
class MtuHop:
    where: str  # e.g. "h1-a eth0", "host1 cn-h1-a", "host1 gre0 (GRE, fits 1462)"
    mtu: int


@dataclass(frozen=True)
class MtuReport:
    src: str
    dst: str
    interfaces: tuple[MtuHop, ...]
    tunnel: str | None  # "gre over a 1500 underlay" or None (same host)
    fits: int | None  # the largest container MTU the tunnel carries
    path_mtu: int | None  # largest packet (IP bytes) a DF ping got through; None: none did
    probes: tuple[tuple[int, bool], ...]  # (packet bytes, answered)
    verdict: str
    ok: bool
    fixed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_probe(lo: int, hi: int) -> int | None:
    """Binary search step between a size that passed (lo) and one that failed (hi)."""
    if hi - lo <= 1:
        return None
    return (lo + hi) // 2


def growing_sizes(top: int) -> list[int]:
    """Packet sizes (IP bytes) to try first, smallest first, up to the local MTU."""
    sizes = [s for s in (576, 1280, 1400, 1450) if s < top]
    return [*sizes, top]


def mtu_verdict(
    interfaces: tuple[MtuHop, ...], fits: int | None, path_mtu: int | None, local: int, tunnel: str | None
) -> tuple[bool, str]:
    if path_mtu is None:
        return (
            False,
            "no don't-fragment ping got through at any size: the pair does not talk (run the doctor)",
        )
    too_big = [h for h in interfaces if fits is not None and h.mtu > fits and "tunnel" not in h.where]
    if fits is not None and local > fits:
        return False, (
            f"interfaces allow {local} B but the {tunnel} carries only {fits}: "
            f"packets above {path_mtu} B are lost (ping works, TCP stalls); "
            f"`containet mtu ... --fix` sets {fits} on "
            f"{', '.join(h.where for h in too_big) or 'the containers'}"
        )
    if path_mtu < local:
        return False, f"path MTU {path_mtu} B is below the interface MTU {local}: a hop drops bigger packets"
    return True, f"path MTU {path_mtu} B = interface MTU {local}" + (f", fits the {tunnel}" if tunnel else "")


def format_mtu(report: MtuReport) -> str:
    lines = [f"mtu {report.src} -> {report.dst}" + (f" across {report.tunnel}" if report.tunnel else "")]
    lines.append("  interface MTUs along the path:")
    for hop in report.interfaces:
        lines.append(f"    {hop.where:32} {hop.mtu}")
    tried = ", ".join(f"{size}{'' if ok else ' lost'}" for size, ok in report.probes)
    lines.append(f"  don't-fragment pings (IP bytes): {tried}")
    lines.append(f"  path MTU: {report.path_mtu if report.path_mtu is not None else 'none'}")
    for cmd in report.fixed:
        lines.append(f"  fixed: {cmd}")
    lines.append(("OK: " if report.ok else "FAIL: ") + report.verdict)
    return "\n".join(lines)
