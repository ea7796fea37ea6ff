"""QoS per container (the seed's second to-do), on top of Exp2."""

from __future__ import annotations

from workbench import actions as a
from workbench.setup import Setup
from workbench.steps import Plan

from . import exp2
from .common import converged, run_containers

NAME = "qos"
TITLE = "QoS per container"
SUMMARY = "Exp2 with host1's two containers capped at 50 and 200 Mbit/s: iperf from each shows its cap."

CAPS = {"a": 50.0, "b": 200.0}  # hostK-a and hostK-b of the first host


def plan(setup: Setup) -> Plan:
    first = setup.hosts[0].name
    caps = [
        a.qos_cap(
            spec,
            CAPS[spec.name.rsplit("-", 1)[1]],
            on_ovs=True,
            why=f"{spec.name} gets at most {CAPS[spec.name.rsplit('-', 1)[1]]:g} Mbit/s each way: OVS "
            "shapes what its port sends to it (linux-htb QoS), and a token bucket on its eth0 what it "
            "sends (OVS ingress policing needs a tc classifier this kernel lacks).",
        )
        for spec in setup.containers
        if spec.host == first and spec.name.rsplit("-", 1)[1] in CAPS
    ]
    steps = exp2.infrastructure(setup) + run_containers(setup) + exp2.plumb_on_ovs(setup)
    return Plan(NAME, TITLE, SUMMARY, tuple(steps + caps + converged(setup)), expect={"all_talk": True})
