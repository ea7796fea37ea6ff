"""Decode and X-ray on crafted frames: GRE, VXLAN, Geneve, an 802.1Q tag inside
the tunnel, a frame too big for the tunnel; the pcap stream reader and writer."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from workbench.capture import PathContext, Record, decode, read_file, write_file, xray
from workbench.capture.cli import size
from workbench.capture.pcap import StreamReader

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def ipv4(src: str, dst: str, proto: int, body: bytes, df: bool = True) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0x4000 if df else 0, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    head = head[:10] + struct.pack("!H", _csum(head)) + head[12:]
    return head + body


def eth(payload: bytes, ethertype: int = 0x0800, vlan: int | None = None) -> bytes:
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return MAC_B + MAC_A + tag + struct.pack("!H", ethertype) + payload


def icmp_echo(seq: int = 1, payload: int = 56) -> bytes:
    return struct.pack("!BBHHH", 8, 0, 0, 7, seq) + b"x" * payload


def tcp(payload: int) -> bytes:
    # 20-byte header + 12 bytes of options (timestamps), ACK|PSH
    return (
        struct.pack("!HHIIBBHHH", 40000, 5201, 1, 1, 8 << 4, 0x18, 502, 0, 0) + b"\x01" * 12 + b"y" * payload
    )


def inner_ping(vlan: int | None = None, payload: int = 56) -> bytes:
    return eth(ipv4("172.15.42.100", "172.15.42.101", 1, icmp_echo(3, payload)), vlan=vlan)


def gre(inner: bytes, key: int | None = None) -> bytes:
    flags = 0x2000 if key is not None else 0
    head = struct.pack("!HH", flags, 0x6558) + (struct.pack("!I", key) if key is not None else b"")
    return eth(ipv4("10.0.0.3", "10.0.0.4", 47, head + inner))


def vxlan(inner: bytes, vni: int = 42, port: int = 4789) -> bytes:
    head = struct.pack("!BBHI", 0x08, 0, 0, vni << 8)
    udp = struct.pack("!HHHH", 51234, port, 8 + len(head) + len(inner), 0)
    return eth(ipv4("10.0.0.3", "10.0.0.4", 17, udp + head + inner))


def test_gre_carries_the_icmp_echo() -> None:
    f = decode(gre(inner_ping()))
    assert f.tunnel == "gre" and f.tunnel_id is None
    assert (f.outer_src, f.outer_dst) == ("10.0.0.3", "10.0.0.4")
    assert (f.src, f.dst, f.proto) == ("172.15.42.100", "172.15.42.101", "ICMP")
    assert f.info == "echo request id=7 seq=3"
    assert [(h.name, h.size, h.layer) for h in f.headers] == [
        ("Ethernet", 14, "outer"),
        ("IPv4", 20, "outer"),
        ("GRE", 4, "tunnel"),
        ("Ethernet", 14, "inner"),
        ("IPv4", 20, "inner"),
        ("ICMP", 8, "inner"),
        ("payload", 56, "inner"),
    ]
    assert sum(h.size for h in f.headers) == f.wire_len
    assert f.summary.startswith("GRE 10.0.0.3 > 10.0.0.4 | 172.15.42.100 > 172.15.42.101 ICMP echo request")


def test_gre_key_is_decoded() -> None:
    f = decode(gre(inner_ping(), key=77))
    assert f.tunnel_id == 77 and f.header("GRE") is not None
    assert f.header("GRE").size == 8  # type: ignore[union-attr]
    assert "key=77" in f.summary


def test_vxlan_vni_is_decoded() -> None:
    f = decode(vxlan(inner_ping(), vni=4242))
    assert (f.tunnel, f.tunnel_id) == ("vxlan", 4242)
    assert [h.name for h in f.layer("tunnel")] == ["VXLAN"]
    assert [h.name for h in f.layer("outer")] == ["Ethernet", "IPv4", "UDP"]
    assert f.proto == "ICMP" and "vni=4242" in f.summary


def test_geneve_vni_is_decoded() -> None:
    head = struct.pack("!BBHI", 0, 0, 0x6558, 99 << 8)
    inner = inner_ping()
    udp = struct.pack("!HHHH", 5000, 6081, 8 + len(head) + len(inner), 0)
    f = decode(eth(ipv4("10.0.0.3", "10.0.0.4", 17, udp + head + inner)))
    assert (f.tunnel, f.tunnel_id, f.proto) == ("geneve", 99, "ICMP")


def test_inner_vlan_tag_is_seen_inside_the_tunnel() -> None:
    f = decode(gre(inner_ping(vlan=10)))
    assert f.inner_vlan == 10 and f.vlan is None
    assert (f.proto, f.src, f.info) == ("ICMP", "172.15.42.100", "echo request id=7 seq=3")
    assert [h.name for h in f.layer("inner")][:2] == ["Ethernet", "802.1Q"]
    assert "vlan 10" in f.summary


def test_plain_frame_has_only_inner_headers() -> None:
    f = decode(inner_ping())
    assert not f.encapsulated and {h.layer for h in f.headers} == {"inner"}
    assert f.extra["ip_len"] == 84


def test_xray_of_a_wrapped_frame_measures_the_outer_packet() -> None:
    f = decode(gre(inner_ping(payload=1434)))  # inner IP 1462: exactly what GRE carries
    x = xray(f)
    assert (x.outer_ip_len, x.left, x.overhead, x.too_big) == (1500, 0, 38, False)
    assert "0 B left" in x.verdict and x.ruler().startswith("[E")


def test_xray_flags_a_tcp_frame_too_big_for_gre() -> None:
    # MTU 1500 in the container: a full TCP segment, seen on its veth before the tunnel
    frame = eth(ipv4("172.15.42.100", "172.15.42.101", 6, tcp(1448)))
    f = decode(frame)
    assert f.proto == "TCP" and f.extra["tcp_payload"] == 1448 and f.wire_len == 1514
    x = xray(f, PathContext("gre", 1500))
    assert x.too_big and x.outer_ip_len == 1538 and x.left == -38
    assert "TOO BIG for the GRE" in x.verdict and "<= 1462" in x.verdict
    fits = xray(decode(eth(ipv4("172.15.42.100", "172.15.42.101", 6, tcp(1410)))), PathContext("gre"))
    assert not fits.too_big and fits.left == 0


def test_xray_counts_the_access_port_tag_and_vxlan() -> None:
    f = decode(eth(ipv4("172.15.42.100", "172.15.42.101", 1, icmp_echo(1, 1422))))  # IP 1450
    assert not xray(f, PathContext("vxlan")).too_big
    assert xray(f, PathContext("vxlan", tag=True)).left == -4
    assert xray(f, PathContext("gre", tag=True)).overhead == 42


def test_truncated_frame_keeps_what_was_read() -> None:
    data = gre(inner_ping(payload=1000))
    f = decode(data[:60], wire_len=len(data))
    assert f.wire_len == len(data) and f.captured_len == 60
    assert f.header("GRE") is not None


def test_garbage_never_raises() -> None:
    for junk in (b"", b"\x00" * 5, b"\xff" * 40, eth(b"\x45\x00")):
        decode(junk)


def test_pcap_stream_reads_records_split_anywhere(tmp_path: Path) -> None:
    recs = [
        Record(i + 1, 1700000000.25 + i, len(d), d) for i, d in enumerate([gre(inner_ping()), inner_ping()])
    ]
    path = tmp_path / "x.pcap"
    assert write_file(str(path), recs) == 2
    raw = path.read_bytes()
    reader = StreamReader()
    got = []
    for i in range(0, len(raw), 7):  # fed in 7-byte pieces
        got += reader.feed(raw[i : i + 7])
    assert [(r.index, r.wire_len, r.data) for r in got] == [(r.index, r.wire_len, r.data) for r in recs]
    assert got[0].time == pytest.approx(1700000000.25)
    assert read_file(str(path))[1].data == recs[1].data


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_tcpdump_reads_what_we_write(tmp_path: Path) -> None:
    recs = [Record(i + 1, 1700000000.0 + i, len(d), d) for i, d in enumerate([gre(inner_ping())] * 3)]
    path = tmp_path / "y.pcap"
    write_file(str(path), recs)
    out = subprocess.run(["tcpdump", "-n", "-r", str(path)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3 and "GRE" in out.stdout


def test_sizes() -> None:
    assert size("64K") == 65536 and size("4M") == 4 << 20 and size("1000") == 1000 and size("2MiB") == 2 << 20


def test_bad_options_and_where_are_bad_input() -> None:
    from workbench.capture import CaptureOptions, resolve
    from workbench.errors import BadInput
    from workbench.lab import lab_host
    from workbench.topology.model import Topology

    for opts, words in (
        (CaptureOptions(count=-1), "bad count"),
        (CaptureOptions(seconds=0), "bad duration"),
        (CaptureOptions(ring_bytes=1024), "bad ring size"),
        (CaptureOptions(snaplen=10), "bad snap length"),
        (CaptureOptions(filter="icmp\nor tcp"), "one line"),
        (CaptureOptions(write="/nonexistent-dir/x.pcap"), "no directory"),
    ):
        with pytest.raises(BadInput, match=words):
            opts.check()
    hosts = [lab_host("host1", 1), lab_host("host2", 2)]
    for where, words in (
        ("nosuch", "unknown container 'nosuch'"),
        ("host9:eth1", "unknown host 'host9'"),
        ("host1", "host1 is a host"),
        ("host1:eth1;rm", "bad interface name"),
        ("host1:nosuch0", "host1 has no device or OVS port 'nosuch0'"),
    ):
        with pytest.raises(BadInput, match=words):
            resolve(where, hosts, Topology())
