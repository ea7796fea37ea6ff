"""The path doctor: is the path between two containers whole, hop by hop?

    collect    read the facts along the path, live (netlink, OVSDB, iptables, traces, pings)
    report     judge them: every check in path order (check_end, check_path, check_kernel; pure)
    fix        apply a check's fix;  mtu: measure the path MTU (and fit the interfaces)
    format     print a report as the CLI does

The doctor never imports the engine: the caller hands in the hosts, an inventory
snapshot, what the active scenario expects (`Expected`) and, to apply fixes,
`FixHooks` (re-apply the scenario, bring the lab up, read a fresh inventory).
"""

from .collect import collect, diagnose
from .facts import DoctorFacts, EndPlan, Expected, HostPlan
from .fix import FixHooks, apply_fix
from .format import format_mtu, format_report
from .model import Check, DoctorReport, FixAction, MtuHop, MtuReport, Status
from .mtu import measure_mtu
from .report import build_report

__all__ = [
    "Check",
    "DoctorFacts",
    "DoctorReport",
    "EndPlan",
    "Expected",
    "FixAction",
    "FixHooks",
    "HostPlan",
    "MtuHop",
    "MtuReport",
    "Status",
    "apply_fix",
    "build_report",
    "collect",
    "diagnose",
    "format_mtu",
    "format_report",
    "measure_mtu",
]
