"""ofproto/trace: what OVS would do with a frame, read from `ovs-appctl` output."""

from __future__ import annotations

import re

from .facts import TraceFact


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
