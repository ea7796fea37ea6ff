"""`lab up` repairs (issue 18): what it says, and which scenario steps it restores."""

from __future__ import annotations

from workbench.cli import _container_line
from workbench.inventory.model import Container, Iface
from workbench.labreport import Fault, LabReport, Repair, ScenarioCheck, broken_below_last


def test_steps_broken_below_the_last_that_holds_are_the_faults_doing() -> None:
    assert broken_below_last([True, True, False, True, False, True]) == [2, 4]
    assert broken_below_last([True, True, True, False, False]) == []  # a walk under way: left alone
    assert broken_below_last([False, False, True]) == [0, 1]
    assert broken_below_last([False, False]) == [] and broken_below_last([]) == []
    assert broken_below_last([True] * 4) == []


def test_report_says_what_changed() -> None:
    up = "lab is up: host1, host2"
    assert LabReport(up).text() == f"{up} (nothing changed)"
    assert LabReport(up, built=True).text() == up
    fixes = (Repair("host1", "restarted ovs-vswitchd"), Repair("underlay", "bridge ul0 up again"))
    repaired = LabReport(up, fixes)
    assert repaired.changed and not LabReport(up).changed
    assert repaired.text() == f"{up} (repaired 2 things; nothing healthy was touched)"
    assert [str(r) for r in fixes] == ["host1: restarted ovs-vswitchd", "underlay: bridge ul0 up again"]
    assert "rebuilt: it had 3 host(s)" in LabReport(up, rebuilt="it had 3 host(s)").text()
    one_host = (Repair("host2", "rebuilt from nothing (...)", rebuilt=True), *fixes)
    assert LabReport(up, one_host).text() == f"{up} (repaired 3 things; host2 rebuilt from nothing)"
    assert str(Fault("host2", "vswitchd", "ovs-vswitchd is not running", "restart it")) == (
        "host2: ovs-vswitchd is not running: restart it"
    )


def test_report_names_the_scenario_steps_restored_and_pending() -> None:
    check = ScenarioCheck(
        "exp1",
        18,
        restored=("4. host1: put br0 into docker0",),
        pending=("12. host1: docker run h1-b --net=none", "16. host1: wire h1-b 172.15.42.102/24 to docker0"),
    )
    text = LabReport("lab is up: host1, host2", (Repair("host1", "x"),), scenario=check).text().splitlines()
    assert text[1:] == [
        "scenario exp1: re-applied 1 step(s) the fault had broken (4)",
        "scenario exp1: 2 of 18 steps pending (12, 16): run `containet scenario apply exp1`",
    ]
    assert ScenarioCheck("exp2", 12).lines() == []


def _container(status: str, ifaces: tuple[Iface, ...]) -> Container:
    return Container(
        name="h2-a",
        host="",
        docker_name="cn-h2-a",
        id="0123456789ab",
        status=status,
        pid=0 if status != "running" else 4242,
        interfaces=ifaces,
        ours=True,
        meant_for="host2",
    )


def test_status_says_a_container_stopped_or_restarted() -> None:
    lo = Iface("lo", "", "UNKNOWN", 65536, "00:00:00:00:00:00", ("127.0.0.1/8",))
    assert "stopped (started for host2): `scenario apply` runs and wires it again" in _container_line(
        _container("exited", ())
    )
    assert "restarted, or not wired yet: its namespace is new and empty (started for host2)" in (
        _container_line(_container("running", (lo,)))
    )
