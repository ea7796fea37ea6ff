"""Per-port rates: `ovs-ofctl dump-ports` parsing and counter differences."""

from __future__ import annotations

from workbench.capture.rates import Counters, diff, human_bps, parse_dump_ports, rate_table

DUMP_PORTS = """OFPST_PORT reply (xid=0x2): 2 ports
  port LOCAL: rx pkts=50, bytes=4200, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=48, bytes=4056, drop=0, errs=0, coll=0
  port  gre0: rx pkts=48, bytes=4056, drop=?, errs=?, frame=?, over=?, crc=?
           tx pkts=97, bytes=9954, drop=3, errs=?, coll=?
"""


def test_dump_ports_by_name_without_local() -> None:
    got = parse_dump_ports(DUMP_PORTS)
    assert list(got) == ["gre0"]
    assert got["gre0"] == Counters(rx_bytes=4056, tx_bytes=9954, rx_packets=48, tx_packets=97, tx_dropped=3)


def test_rates_from_two_samples() -> None:
    a = Counters(rx_bytes=1000, tx_bytes=0, rx_packets=10, tx_packets=0, rx_dropped=1)
    b = Counters(rx_bytes=126000, tx_bytes=500, rx_packets=110, tx_packets=5, rx_dropped=3, tx_errors=1)
    r = diff("host1", "eth1", "netlink", a, b, 0.5)
    assert (r.rx_bps, r.tx_bps, r.rx_pps, r.tx_pps) == (2_000_000.0, 8000.0, 200.0, 10.0)
    assert (r.drops, r.new_drops, r.errors, r.new_errors) == (3, 2, 1, 1) and r.busy
    assert r.short() == "rx 2.0 Mb/s 200 p/s tx 8.0 kb/s 10 p/s drops 3 (+2) errors 1 (+1)"
    # a counter that went back (a device made again) is no negative rate
    assert diff("h", "x", "netlink", b, a, 1.0).rx_bps == 0.0
    table = rate_table(
        {("h", "x"): ("netlink", a)}, {("h", "x"): ("netlink", b), ("h", "new"): ("ovs", a)}, 1
    )
    assert list(table) == [("h", "x")]
    assert human_bps(950) == "950 b/s" and human_bps(1.5e9) == "1.5 Gb/s"
