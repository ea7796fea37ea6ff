"""Pure parts of the measurements: statistics, parsers, warnings, expectations, the matrix."""

from __future__ import annotations

import math
import socket

import pytest

from workbench.errors import BadInput, WorkbenchError
from workbench.host import Place
from workbench.measure import iperf_data as d
from workbench.measure import ping as pg
from workbench.measure.iperf import IperfOptions, partial_figures
from workbench.measure.matrix import format_matrix
from workbench.measure.ping import PingOptions, PingReply, Target, make_result
from workbench.measure.pingall import (
    WORKER_SOURCES,
    Member,
    PingallResult,
    Verdict,
    expectations,
    share_out,
)
from workbench.measure.stats import human_bps, loss_pct, median, parse_rate, rtt_summary, spread_pct


# --- stats ----------------------------------------------------------------------------
def test_rtt_summary_matches_iputils_mdev() -> None:
    rtts = [0.5, 0.7, 0.6, 0.8]
    lo, avg, hi, mdev = rtt_summary(rtts)
    assert (lo, hi) == (0.5, 0.8)
    assert avg == pytest.approx(0.65)
    # iputils: sqrt(mean(x^2) - mean(x)^2), the population deviation
    assert mdev == pytest.approx(math.sqrt(sum(r * r for r in rtts) / 4 - 0.65**2))
    assert rtt_summary([]) == (None, None, None, None)
    assert rtt_summary([1.0])[3] == 0.0


def test_loss_median_spread() -> None:
    assert loss_pct(4, 3) == 25.0
    assert loss_pct(0, 0) == 0.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert median([]) == 0.0
    assert spread_pct([90.0, 100.0, 110.0]) == pytest.approx(20.0)
    assert spread_pct([5.0]) == 0.0


@pytest.mark.parametrize(
    ("text", "bps"), [("100M", 100_000_000), ("1.5G", 1_500_000_000), ("800k", 800_000), ("2000", 2000)]
)
def test_parse_rate(text: str, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("text", ["", "fast", "1X", "0", "-5M"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(BadInput, match="bad bitrate"):
        parse_rate(text)


def test_human_bps() -> None:
    assert human_bps(1.27e9) == "1.27 Gbit/s"
    assert human_bps(624e6) == "624.00 Mbit/s"
    assert human_bps(12) == "12 bit/s"


# --- the server's text report (lines captured from iperf 3.12 on the lab) ------------------
RECEIVER = "[  5]   0.00-1.00   sec  74.6 MBytes   624 Mbits/sec                  "
SENDER = "[  5]   1.00-2.00   sec  66.0 MBytes   554 Mbits/sec  12216    402 KBytes       "
UDP = "[  5]   0.00-1.00   sec   128 KBytes  1.05 Mbits/sec  0.257 ms  0/93 (0%)  "
SUMMARY = "[  5]   0.00-2.21   sec   142 MBytes   540 Mbits/sec                  receiver"
STREAM = "[  8]   0.00-1.00   sec  27.8 MBytes   233 Mbits/sec                  "
SUM = "[SUM]   0.00-1.00   sec  80.6 MBytes   676 Mbits/sec                  "
SUM_END = "[SUM]   0.00-2.02   sec   166 MBytes   689 Mbits/sec                  receiver"


def test_parse_receiver_and_sender_lines() -> None:
    assert d.parse_interval_line(RECEIVER) == d.IperfInterval(0.0, 1.0, 624e6, None)
    assert d.parse_interval_line(SENDER) == d.IperfInterval(1.0, 2.0, 554e6, 12216)


def test_parse_udp_line_has_no_retransmits() -> None:
    iv = d.parse_interval_line(UDP, tcp=False)
    assert iv is not None and iv.retransmits is None
    assert iv.bits_per_second == pytest.approx(1.05e6)


def test_parse_skips_summaries_and_other_lines() -> None:
    for line in (
        SUMMARY,
        SUM_END,
        "[ ID] Interval           Transfer     Bitrate",
        "- - - - -",
        "",
        "iperf Done.",
    ):
        assert d.parse_interval_line(line, streams=2) is None
    assert d.parse_interval_line(SUMMARY) is None


def test_parse_parallel_takes_only_sum() -> None:
    assert d.parse_interval_line(STREAM, streams=2) is None
    assert d.parse_interval_line(SUM, streams=2) == d.IperfInterval(0.0, 1.0, 676e6, None)
    assert d.parse_interval_line(SUM, streams=1) is None


def test_parse_listening_and_error() -> None:
    assert d.parse_listening("Server listening on 5203 (test #1)") == 5203
    assert d.parse_listening(RECEIVER) is None
    assert d.parse_error(
        "iperf3: error - unable to start listener for connections: Address already in use"
    ) == ("unable to start listener for connections: Address already in use")


# --- the client's JSON --------------------------------------------------------------------
def client_json(
    sent: int = 173_015_040, received: int = 170_308_260, retr: int = 17, cpu: float = 3.0
) -> dict[str, object]:
    return {
        "start": {"tcp_mss_default": 1410, "test_start": {"protocol": "TCP", "num_streams": 1}},
        "intervals": [
            {"sum": {"start": 0, "end": 1.0, "bits_per_second": 1.38e9, "retransmits": retr, "bytes": sent}}
        ],
        "end": {
            "sum_sent": {"seconds": 1.0, "bytes": sent, "bits_per_second": sent * 8.0, "retransmits": retr},
            "sum_received": {"seconds": 1.0, "bytes": received, "bits_per_second": received * 8.0},
            "cpu_utilization_percent": {"host_total": cpu, "remote_total": 17.6},
        },
    }


def test_figures_from_json() -> None:
    fig = d.figures_from_json(client_json())
    assert fig.protocol == "TCP" and fig.retransmits == 17 and fig.mss == 1410
    assert fig.received_bps == 170_308_260 * 8.0
    assert fig.intervals == (d.IperfInterval(0.0, 1.0, 1.38e9, 17),)
    assert fig.cpu["remote_total"] == 17.6


def test_figures_from_udp_json() -> None:
    data = {
        "start": {"test_start": {"protocol": "UDP"}},
        "end": {
            "sum": {"bytes": 1000, "bits_per_second": 8000.0, "lost_percent": 12.5, "seconds": 1.0},
            "sum_sent": {"bytes": 1000, "bits_per_second": 8000.0, "seconds": 1.0},
            "sum_received": {"bytes": 875, "bits_per_second": 7000.0, "seconds": 1.0},
        },
    }
    fig = d.figures_from_json(data)
    assert fig.retransmits is None and fig.lost_pct == 12.5 and fig.received_bps == 7000.0
    assert any("UDP loss" in w for w in d.assess(fig))


def test_iperf_error_json_is_one_line_error() -> None:
    with pytest.raises(WorkbenchError, match="unable to connect"):
        d.figures_from_json('{"error": "unable to connect to server: Connection refused"}')
    with pytest.raises(WorkbenchError, match="not an iperf3 client report"):
        d.figures_from_json("{}")


def test_assess_clean_run_has_no_warning() -> None:
    assert d.assess(d.figures_from_json(client_json()), cpu_busy_pct=40.0) == ()


def test_assess_warns_mtu_trap_cpu_and_retransmits() -> None:
    trap = d.assess(d.figures_from_json(client_json(sent=100_000, received=0, retr=0)))
    assert any("nothing arrived" in w and "MTU" in w for w in trap)
    busy = d.assess(d.figures_from_json(client_json()), cpu_busy_pct=97.0)
    assert any("CPU-bound" in w for w in busy)
    hot = d.assess(d.figures_from_json(client_json(cpu=99.0)))
    assert any("of a core" in w for w in hot)
    lossy = d.assess(d.figures_from_json(client_json(retr=30_000)))
    assert any("huge retransmits" in w for w in lossy)


def test_combine_repeats_median_and_spread() -> None:
    runs = [
        (d.figures_from_json(client_json(received=r)), (("w",) if r == 100 else ()))
        for r in (100, 125_000_000, 137_500_000)
    ]
    res = d.combine("a", "b", runs)
    assert res.runs == (800.0, 1e9, 1.1e9)
    assert res.median_bps == 1e9 and res.received_bps == 1e9
    assert res.spread_pct == pytest.approx(100 * (1.1e9 - 800) / 1e9)
    assert res.warnings == ("run 1: w",)
    doc = res.to_dict()
    for key in (
        "src",
        "dst",
        "protocol",
        "seconds",
        "sent_bps",
        "received_bps",
        "retransmits",
        "intervals",
        "warnings",
        "runs",
        "median_bps",
        "spread_pct",
    ):
        assert key in doc
    assert d.combine("a", "b", [], extra_warnings=["x"]).warnings == ("x",)


def test_partial_figures_from_live_intervals() -> None:
    live = [d.IperfInterval(0, 1, 100.0, 2), d.IperfInterval(1, 1.5, 400.0, 1)]
    fig = partial_figures(live, "TCP")
    assert fig is not None and fig.received_bps == pytest.approx(200.0) and fig.retransmits == 3
    assert partial_figures([], "TCP") is None


def test_iperf_options_bounds() -> None:
    assert IperfOptions(seconds=2.5).duration == 3
    for bad in (
        IperfOptions(seconds=0.5),
        IperfOptions(parallel=0),
        IperfOptions(repeat=99),
        IperfOptions(bitrate="x"),
    ):
        with pytest.raises(BadInput):
            bad.check()
    assert IperfOptions(udp=True).settings()["bitrate"] == 10**6  # iperf3's UDP default, never unlimited


# --- ping -------------------------------------------------------------------------------------
def test_ping_options_bounds() -> None:
    PingOptions().check()
    for bad in (
        PingOptions(count=0),
        PingOptions(interval=0),
        PingOptions(size=70000),
        PingOptions(timeout=0),
    ):
        with pytest.raises(BadInput):
            bad.check()


def test_make_result_counts_losses() -> None:
    res = make_result("a", Target("b", "10.0.0.2"), [PingReply(2, None), PingReply(1, 0.5)], ["x", "x"])
    assert (res.sent, res.received, res.loss_pct, res.min_ms) == (2, 1, 50.0, 0.5)
    assert [r.seq for r in res.replies] == [1, 2]
    assert res.errors == ("x",)
    assert res.to_dict()["replies"][1] == {"seq": 2, "rtt_ms": None}


def test_kernel_stamp_from_ancillary_data() -> None:
    stamp = pg.TIMESPEC.pack(1_700_000_000, 123_456_789)
    other = (socket.SOL_SOCKET, pg.SO_TIMESTAMPNS + 1, b"\0" * 16)
    mine = (socket.SOL_SOCKET, pg.SO_TIMESTAMPNS, stamp)
    assert pg.kernel_stamp_ns([other, mine]) == 1_700_000_000_123_456_789
    assert pg.kernel_stamp_ns([other]) is None
    assert pg.kernel_stamp_ns([(socket.SOL_SOCKET, pg.SO_TIMESTAMPNS, b"\0" * 8)]) is None  # truncated


def test_icmp_filter_is_iputils_one() -> None:
    """Echo replies and the errors quoting a request pass; echo requests (8) never wake us."""
    passed = {t for t in range(32) if not pg.FILTER_MASK & (1 << t)}
    assert passed == {0, 3, 4, 5, 11, 12}
    assert set(pg.ICMP_ERRORS) <= passed


# --- pingall -----------------------------------------------------------------------------------
def test_share_out_one_loop_for_a_small_lab() -> None:
    sources = [pg.Source(f"c{i}", Place.root(), ()) for i in range(20)]
    assert share_out(sources, 8) == [sources]
    many = [pg.Source(f"c{i}", Place.root(), ()) for i in range(5 * WORKER_SOURCES)]
    shares = share_out(many, 3)
    assert len(shares) == 3 and sorted(s.name for sh in shares for s in sh) == sorted(s.name for s in many)
    assert len(share_out(many, 64)) == 5
    assert share_out(sources[:1], 1) == [sources[:1]]


def members(vlans: dict[str, int | None]) -> list[Member]:
    return [Member(n, f"10.0.0.{i}", Place.root(), v) for i, (n, v) in enumerate(vlans.items(), start=1)]


def test_expectations_exp1_and_exp3() -> None:
    ms = members({"h1-a": 10, "h1-b": 20, "h2-a": 10, "h2-b": 20})
    assert set(expectations({"all_talk": True}, ms).values()) == {True}
    exp3 = expectations({"same_vlan_only": True}, ms)
    assert len(exp3) == 12
    assert exp3[("h1-a", "h2-a")] and not exp3[("h1-a", "h1-b")] and not exp3[("h2-b", "h2-a")]
    assert expectations({}, ms) == {}


def cell(src: str, dst: str, ok: bool) -> object:
    return make_result(src, Target(dst, "ip"), [PingReply(1, 0.5 if ok else None)], ())


def test_pingall_result_pass_fail_and_matrix() -> None:
    names = ("a", "b", "c")
    reach = {
        ("a", "b"): True,
        ("b", "a"): True,
        ("a", "c"): False,
        ("c", "a"): False,
        ("b", "c"): True,
        ("c", "b"): False,
    }
    cells = {k: cell(*k, ok=v) for k, v in reach.items()}
    expected = {("a", "b"): True, ("b", "a"): True, ("a", "c"): False, ("c", "a"): False}
    res = PingallResult(names, cells, expected, "exp3")  # type: ignore[arg-type]
    assert res.passed("a", "c")  # lost, and expected to be
    assert res.passed("b", "c")  # no expectation: reachable passes
    assert not res.passed("c", "b")  # no expectation, unreachable
    assert not res.all_passed
    assert res.verdict("a", "c") == Verdict.ISOLATED and res.verdict("c", "b") == Verdict.UNEXPECTED_FAILURE
    text = format_matrix(res)
    assert "3 containers, 6 pairs, 3 reachable, 1 not as expected" in text
    assert "  c -> b: no reply, should reach (0 of 1 probes answered)" in text
    assert "X no reply, should reach" in text  # the legend
    doc = res.to_dict()
    assert doc["all_passed"] is False and len(doc["cells"]) == 6
    assert doc["counts"] == {
        "reach": 3,
        "isolated": 2,
        "unexpected-reach": 0,
        "unexpected-failure": 1,
        "unmeasured": 0,
    }
    assert doc["lost_probes"] == 1 and doc["silent_probes_isolated"] == 2  # c->b; a<->c
    partial = PingallResult(names, {}, {}, None)
    assert not partial.passed("a", "b") and "?" in format_matrix(partial)
