"""Parsing `ovs-ofctl dump-flows` and `ovs-appctl dpif/dump-flows` (as OVS 3.1 prints them)."""

# ruff: noqa: E501  (OVS output, as printed)

from __future__ import annotations

import pytest

from workbench.capture.flows import parse_dpif, parse_ofctl, parse_where
from workbench.errors import BadInput
from workbench.lab import lab_host

OFCTL = """NXST_FLOW reply (xid=0x4):
 cookie=0x0, duration=4.189s, table=0, n_packets=57, n_bytes=4842, idle_age=0, priority=0 actions=NORMAL
 cookie=0x0, duration=1.5s, table=0, n_packets=3, n_bytes=294, idle_age=1, priority=100,ip,nw_dst=172.15.42.101 actions=output:2
"""

DPIF = """flow-dump from the main thread:
recirc_id(0),in_port(3),packet_type(ns=0,id=0),eth(src=2e:98:8b:a2:81:18,dst=33:33:00:00:00:16),eth_type(0x86dd),ipv6(frag=no), packets:2, bytes:220, used:1.616s, actions:tnl_push(tnl_port(4),header(size=38,type=3,eth(dst=aa:93:9f:13:d9:42,src=56:e9:6e:20:6e:4a,dl_type=0x0800),ipv4(src=10.0.0.3,dst=10.0.0.4,proto=47,tos=0,ttl=64,frag=0x4000),gre((flags=0x0,proto=0x6558))),out_port(1)),2
tunnel(src=10.0.0.4,dst=10.0.0.3,flags(-df-csum)),recirc_id(0),in_port(4),packet_type(ns=0,id=0),eth(src=36:da:f8:c8:64:8c,dst=33:33:00:00:00:16),eth_type(0x86dd),ipv6(frag=no), packets:1, bytes:110, used:never, actions:3
"""


def test_openflow_rules_with_counters() -> None:
    rules = parse_ofctl(OFCTL)
    assert [(r.priority, r.match, r.actions, r.n_packets, r.n_bytes) for r in rules] == [
        (0, "", "NORMAL", 57, 4842),
        (100, "ip,nw_dst=172.15.42.101", "output:2", 3, 294),
    ]


def test_datapath_flows_with_named_ports() -> None:
    flows = parse_dpif(DPIF, {1: "br-phy", 2: "eth1", 3: "br0", 4: "gre0"})
    assert [(f.packets, f.bytes, f.used) for f in flows] == [(2, 220, "1.616s"), (1, 110, "never")]
    assert flows[0].match.startswith("in_port(br0),eth(") and "recirc_id" not in flows[0].match
    assert "tnl_port(gre0)" in flows[0].actions and flows[0].actions.endswith("out_port(br-phy)),eth1")
    assert flows[1].match.startswith("tunnel(src=10.0.0.4") and flows[1].actions == "br0"


def test_where_is_a_host_or_host_bridge() -> None:
    hosts = [lab_host("host1", 1)]
    bridges = {"host1": ["br-phy", "br0"]}
    assert [b for _h, b in parse_where("host1", hosts, bridges)] == ["br-phy", "br0"]
    assert [b for _h, b in parse_where("host1:br0", hosts, bridges)] == ["br0"]
    with pytest.raises(BadInput, match="unknown host 'host7'"):
        parse_where("host7", hosts, bridges)
    with pytest.raises(BadInput, match="no OVS bridge 'br9'"):
        parse_where("host1:br9", hosts, bridges)
