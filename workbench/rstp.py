"""Rapid spanning tree as OVSDB reports it: is a mesh of bridges ready to carry traffic?

ovs-vswitchd writes each RSTP bridge's view into `Bridge.rstp_status` (the root it
believes in) and each port's into `Port.rstp_status` (`rstp_port_role`,
`rstp_port_state`). Ports that take no part (a bridge's own internal port, the ports
of a bridge without RSTP) have an empty status.

A port is *stable* when it forwards, or when it is blocked for good: Discarding in
the role Alternate, Backup or Disabled. Anything else is a tree still moving: a port
Learning, a Designated or Root port still Discarding (it waits for its peer's
agreement or its forward-delay timer), a port with no status yet (just added, not yet
seen by ovs-vswitchd). One exception, for traffic: a Designated port still Discarding
or Learning whose link ends, on the other bridge, in an Alternate or Backup port
(that port names it as its designated port) carries no frame either way once it
forwards -- the other end blocks -- so it is counted stable: waiting for its
forward-delay timer (measured: ~3 s more per apply) changes nothing for pingall.
The tree has *converged* when every bridge has RSTP on, every port that should take
part is stable, and all bridges agree on one root.

Pure but for `read_tree`: the readers hand in rows (from an ovsdbapp client or
`ovs.select`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import WorkbenchError
from .host import Host
from .ovs import select, uuids

#: roles in which a Discarding port is blocked on purpose (the tree's redundant links)
BLOCKED_ROLES = frozenset({"Alternate", "Backup", "Disabled"})

Row = Mapping[str, Any]


def port_stable(role: str, state: str) -> bool:
    """Forwarding, or Discarding (or Disabled) in a role that stays blocked."""
    if state == "Forwarding":
        return True
    return state in ("Discarding", "Disabled") and role in BLOCKED_ROLES


@dataclass(frozen=True)
class PortState:
    """One RSTP port of a bridge; role and state "" when it has no status (yet)."""

    host: str
    bridge: str
    port: str
    role: str
    state: str
    #: its own id and its bridge's, and the (bridge id, port id) of the designated port
    #: of its link (itself when it is the designated one)
    port_id: str = ""
    bridge_id: str = ""
    designated: tuple[str, str] = ("", "")
    faces_blocked: bool = False  # Designated, and the other end of its link is blocked

    @property
    def stable(self) -> bool:
        if port_stable(self.role, self.state):
            return True
        return self.role == "Designated" and self.state in ("Discarding", "Learning") and self.faces_blocked

    def describe(self) -> str:
        what = f"{self.role}/{self.state}" if self.state else "no RSTP role yet"
        return f"{self.host} {self.port} {what}"


@dataclass(frozen=True)
class TreeState:
    """The spanning tree over some hosts' bridges, read at one moment."""

    ports: tuple[PortState, ...]
    roots: tuple[tuple[str, str], ...]  # (host, root bridge id it believes in; "" unknown)
    missing: tuple[str, ...] = ()  # "host bridge: why" for a bridge not (yet) running RSTP

    @property
    def unsettled(self) -> list[PortState]:
        return [p for p in self.ports if not p.stable]

    @property
    def agreed_root(self) -> str | None:
        """The root every bridge believes in, None while they differ (or one is unknown)."""
        ids = {root for _host, root in self.roots}
        return next(iter(ids)) if len(ids) == 1 and "" not in ids else None

    @property
    def converged(self) -> bool:
        return not self.missing and not self.unsettled and self.agreed_root is not None

    def describe(self) -> str:
        """One line: how far the tree is, and what it still waits for."""
        if self.missing:
            return "no spanning tree on " + ", ".join(self.missing)
        stable = len(self.ports) - len(self.unsettled)
        text = f"{stable} of {len(self.ports)} ports stable"
        if self.agreed_root is None:
            differ = ", ".join(f"{h} {r or '?'}" for h, r in self.roots)
            text += f", bridges disagree on the root ({differ})"
        if self.unsettled:
            shown = ", ".join(p.describe() for p in self.unsettled[:4])
            more = f" and {len(self.unsettled) - 4} more" if len(self.unsettled) > 4 else ""
            text += f"; waiting for {shown}{more}"
        elif self.converged:
            text += f", root {self.agreed_root}"
        return text


def takes_part(bridge: str, port: Row) -> bool:
    """Ports of an RSTP bridge that should get a role: all but the bridge's own internal
    port and ports with RSTP turned off (other_config:rstp-enable=false)."""
    if port.get("name") == bridge:
        return False
    return (port.get("other_config") or {}).get("rstp-enable") != "false"


def bridge_state(
    host: str, bridge: str, bridge_rows: Iterable[Row], port_rows: Iterable[Row]
) -> tuple[list[PortState], str, str | None]:
    """(ports, root id, why not running RSTP or None) of one host's bridge."""
    br = next((r for r in bridge_rows if r.get("name") == bridge), None)
    if br is None:
        return [], "", f"{host} {bridge}: no such bridge"
    if not br.get("rstp_enable"):
        return [], "", f"{host} {bridge}: RSTP is off"
    by_uuid = {str(r.get("_uuid")): r for r in port_rows}
    ports = []
    for ref in uuids(br.get("ports")):
        row = by_uuid.get(str(ref))
        if row is None or not takes_part(bridge, row):
            continue
        status = row.get("rstp_status") or {}
        ports.append(
            PortState(
                host,
                bridge,
                str(row.get("name")),
                status.get("rstp_port_role", ""),
                status.get("rstp_port_state", ""),
                status.get("rstp_port_id", ""),
                (br.get("rstp_status") or {}).get("rstp_bridge_id", ""),
                (status.get("rstp_designated_bridge_id", ""), status.get("rstp_designated_port_id", "")),
            )
        )
    root = (br.get("rstp_status") or {}).get("rstp_root_id", "")
    return sorted(ports, key=lambda p: p.port), root, None


def tree_state(readings: Sequence[tuple[str, str, Iterable[Row], Iterable[Row]]]) -> TreeState:
    """The tree over every (host, bridge, Bridge rows, Port rows) reading."""
    ports: list[PortState] = []
    roots: list[tuple[str, str]] = []
    missing: list[str] = []
    for host, bridge, bridge_rows, port_rows in readings:
        found, root, why = bridge_state(host, bridge, list(bridge_rows), list(port_rows))
        ports += found
        roots.append((host, root))
        if why:
            missing.append(why)
    # the designated ports named by a blocked port at the other end of their link
    faced = {p.designated for p in ports if p.role in ("Alternate", "Backup") and p.state == "Discarding"}
    faced.discard(("", ""))
    ports = [replace(p, faces_blocked=(p.bridge_id, p.port_id) in faced) for p in ports]
    return TreeState(tuple(ports), tuple(roots), tuple(missing))


def rstp_bridges(bridge_rows: Iterable[Row]) -> list[str]:
    """The names of the bridges with RSTP turned on."""
    return sorted(str(r["name"]) for r in bridge_rows if r.get("rstp_enable"))


def read_tree(hosts: Sequence[Host]) -> TreeState | None:
    """The tree over every bridge with RSTP on, on these hosts (one `select` each, 2 s at
    most); None when no bridge runs RSTP. A host that cannot be read is left out."""
    readings = []
    for host in hosts:
        try:
            rows = select(host.ovs_db, ["Bridge", "Port"], timeout=2.0)
        except WorkbenchError:
            continue
        for bridge in rstp_bridges(rows["Bridge"]):
            readings.append((host.name, bridge, rows["Bridge"], rows["Port"]))
    return tree_state(readings) if readings else None
