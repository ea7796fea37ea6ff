"""compare's table and figures, and the OVS port I/O choice, without a lab."""

from __future__ import annotations

import pytest

from workbench import portio
from workbench.errors import BadInput
from workbench.measure.compare import CompareResult, PathFigure, format_compare, median_rtt
from workbench.measure.ping import PingReply, PingResult

CEIL = PathFigure("ceiling", "raw veth between two namespaces", 20e9, 0.05, 0)


def test_the_table_reads_each_path_as_a_share_of_the_ceiling() -> None:
    res = CompareResult(
        "h1-a",
        "h2-a",
        3.0,
        CEIL,
        (
            PathFigure("kvxlan", "kernel VXLAN", 13.5e9, 0.11, 12),
            PathFigure("exp2", "Exp2 OVS only", 1.05e9, 0.46, 20000, note="huge retransmits"),
            PathFigure("vxlan", "VXLAN variant", note="h1-a cannot reach h2-a"),
        ),
        restored="exp2",
    )
    text = format_compare(res)
    rows = {
        line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and "note:" not in line
    }
    assert "20.00 Gbit/s" in rows["ceiling"] and "1.000" in rows["ceiling"]
    assert "13.50 Gbit/s" in rows["kvxlan"] and "0.675" in rows["kvxlan"] and "0.110 ms" in rows["kvxlan"]
    assert "1.05 Gbit/s" in rows["exp2"] and "0.052" in rows["exp2"] and "20000" in rows["exp2"]
    assert rows["kvxlan"].count("█") == 16 and rows["exp2"].count("█") == 1  # bars out of 24
    assert "note: h1-a cannot reach h2-a" in text and "note: huge retransmits" in text
    assert text.splitlines()[-1] == "exp2 applied again at the end (its containers were made anew)"
    data = res.to_dict()
    assert [p["ratio"] for p in data["paths"]] == [pytest.approx(0.675), pytest.approx(0.0525), None]


def test_median_rtt_leaves_the_first_probe_out() -> None:
    replies = (PingReply(1, 9.0), PingReply(2, 0.4), PingReply(3, None), PingReply(4, 0.6))
    res = PingResult("a", "b", "1.2.3.4", 4, 3, 25.0, 0.4, 3.3, 9.0, 4.0, replies)
    assert median_rtt(res) == pytest.approx(0.5)


def test_port_io_renders_the_command_it_runs() -> None:
    assert portio.TYPES["packet"].render("cn-h1-a") == ""
    assert (
        portio.TYPES["afxdp"].render("cn-h1-a")
        == " -- set interface cn-h1-a type=afxdp options:xdp-mode=generic"
    )
    assert portio.is_xdp("afxdp") and portio.is_xdp("afxdp-nonpmd") and not portio.is_xdp("")
    with pytest.raises(BadInput, match="unknown OVS port I/O 'dpdk'"):
        portio.check("dpdk")


def test_compare_refuses_a_bad_duration_before_anything() -> None:
    from workbench.engine import Engine

    with pytest.raises(BadInput, match="bad duration 0"):
        Engine().compare(seconds=0)
