"""An OVS bridge's OpenFlow rules (`ovs-ofctl dump-flows`) and the datapath flows
it installed (`ovs-appctl dpif/dump-flows BRIDGE`), with their counters, read
from the host's own OVS (its bridge's management socket, its vswitchd control
socket). Parsing is pure; datapath port numbers are named from `dpif/show`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..doctor.trace import parse_dp_ports
from ..errors import BadInput, WorkbenchError
from ..host import Host
from ..ovs import appctl


@dataclass(frozen=True)
class FlowRule:
    """One OpenFlow rule."""

    table: int
    priority: int
    match: str
    actions: str
    n_packets: int
    n_bytes: int
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DpFlow:
    """One datapath flow (a cached decision), port numbers named."""

    match: str
    actions: str
    packets: int
    bytes: int
    used: str  # "0.5s", "never"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class BridgeFlows:
    host: str
    bridge: str
    rules: tuple[FlowRule, ...] = ()
    datapath: tuple[DpFlow, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "bridge": self.bridge,
            "rules": [r.to_dict() for r in self.rules],
            "datapath": [f.to_dict() for f in self.datapath],
            "error": self.error,
        }

    def lines(self, width: int = 0) -> list[str]:
        """Text lines; `width` > 0 cuts the datapath lines to it."""
        n_rules, n_dp = len(self.rules), len(self.datapath)
        out = [f"{self.host} {self.bridge}: {n_rules} OpenFlow rule(s), {n_dp} datapath flow(s)"]
        if self.error:
            out.append(f"  ! {self.error}")
        for r in self.rules:
            match = r.match or "(any)"
            counts = f"{r.n_packets:>9} pkts {r.n_bytes:>11} B"
            out.append(f"  table {r.table:<3} prio {r.priority:<6} {counts}  {match} -> {r.actions}")
        if self.datapath:
            out.append("  datapath:")
        for f in sorted(self.datapath, key=lambda f: -f.packets):
            line = f"  {f.packets:>9} pkts {f.bytes:>11} B  used {f.used:<7} {f.match} -> {f.actions}"
            out.append(line if not width or len(line) <= width else line[: width - 1] + "…")
        return out


_RULE_FIELDS = re.compile(r"(\w+)=([^,\s]+)")
_DP_STATS = re.compile(r", packets:(\d+), bytes:(\d+), used:(\S+?)(?:, flags:\S+)?, actions:(.*)$")


def parse_ofctl(text: str) -> list[FlowRule]:
    """`ovs-ofctl dump-flows` lines -> rules (the header line is skipped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("cookie=") or " actions=" not in line:
            continue
        head, actions = line.rsplit(" actions=", 1)
        fields = dict(_RULE_FIELDS.findall(head))
        # the stats are ", "-separated; the match (priority first) is the part after them
        stats = ("cookie=", "duration=", "table=", "n_packets=", "n_bytes=", "idle_age=", "hard_age=")
        rest = [p for p in head.split(", ") if not p.startswith(stats)]
        match = ",".join(
            f for p in rest for f in p.split(",") if f and not f.startswith(("priority=", "idle_timeout="))
        )
        out.append(
            FlowRule(
                table=int(fields.get("table", 0)),
                priority=int(fields.get("priority", 32768)),
                match=match,
                actions=actions,
                n_packets=int(fields.get("n_packets", 0)),
                n_bytes=int(fields.get("n_bytes", 0)),
                duration=float(fields.get("duration", "0s").rstrip("s") or 0),
            )
        )
    return out


def _name_ports(text: str, ports: dict[int, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        n = int(m.group(2))
        return f"{m.group(1)}({ports.get(n, n)})"

    return re.sub(r"\b(in_port|out_port|tnl_port)\((\d+)\)", sub, text)


def _name_outputs(actions: str, ports: dict[int, str]) -> str:
    """Bare port numbers among the top-level actions ("3,2") named."""
    depth, cur, items = 0, "", []
    for ch in actions:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    items.append(cur)
    named = [ports.get(int(i), i) if i.isdigit() else _name_ports(i, ports) for i in items]
    return ",".join(named)


def parse_dpif(text: str, ports: dict[int, str]) -> list[DpFlow]:
    """`ovs-appctl dpif/dump-flows BR` lines -> datapath flows."""
    out = []
    for line in text.splitlines():
        m = _DP_STATS.search(line)
        if not m or line.startswith("flow-dump"):
            continue
        match = line[: m.start()]
        match = re.sub(r"(^|,)(recirc_id\(0\)|packet_type\(ns=0,id=0\))", r"\1", match).strip(",")
        match = re.sub(r",,+", ",", match)
        out.append(
            DpFlow(
                match=_name_ports(match, ports),
                actions=_name_outputs(m.group(4), ports),
                packets=int(m.group(1)),
                bytes=int(m.group(2)),
                used=m.group(3),
            )
        )
    return out


def _ofctl(host: Host, bridge: str) -> str:
    target = f"unix:{host.run_dir / (bridge + '.mgmt')}" if host.run_dir is not None else bridge
    return host.place.run(["ovs-ofctl", "dump-flows", target], timeout=10).stdout


def read_flows(host: Host, bridge: str) -> BridgeFlows:
    """A bridge's rules and datapath flows now (errors are in the result)."""
    try:
        rules = parse_ofctl(_ofctl(host, bridge))
        ports = parse_dp_ports(appctl(host, "dpif/show"))
        dp = parse_dpif(appctl(host, "dpif/dump-flows", bridge), ports)
    except WorkbenchError as exc:
        return BridgeFlows(host.name, bridge, error=str(exc))
    return BridgeFlows(host.name, bridge, tuple(rules), tuple(dp))


def parse_where(where: str, hosts: list[Host], bridges: dict[str, list[str]]) -> list[tuple[Host, str]]:
    """HOST or HOST:BRIDGE -> (host, bridge) pairs; BadInput naming what there is."""
    name, _, bridge = where.partition(":")
    by_name = {h.name: h for h in hosts}
    if name not in by_name:
        raise BadInput(f"unknown host {name!r} (have: {', '.join(by_name)})")
    have = bridges.get(name, [])
    if bridge:
        if bridge not in have:
            raise BadInput(f"{name} has no OVS bridge {bridge!r} (have: {', '.join(have) or 'none'})")
        return [(by_name[name], bridge)]
    if not have:
        raise BadInput(f"{name} has no OVS bridge")
    return [(by_name[name], b) for b in have]
