"""Printing: the doctor's report and the path MTU report as the CLI shows them."""

from __future__ import annotations

from .model import DoctorReport, MtuReport, Status

MARKS = {Status.OK: "OK  ", Status.FAIL: "FAIL", Status.WARN: "WARN"}


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
