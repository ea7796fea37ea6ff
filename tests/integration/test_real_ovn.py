"""OVN in real mode on this machine (issue 16): the root namespace is host1, with a
"system" Open vSwitch and a "system" OVN central started the package's way (ovn-ctl,
its own run directory, NB/SB on host1's underlay address as the Vagrantfile sets
them), both outside containet's run directory. containet's CLI applies `ovn` for
host1: it starts the system's ovn-controller (the package's way), adds its logical
ports to the NB and waits until they are up. Undo and `clean` take back only what is
containet's: a logical switch made by hand, another chassis in the SB, the system's
daemons and what the OVS's settings were all stay.

host1's underlay address 10.0.0.3 sits on a veth pair this module makes (in the root
namespace: that is host1 here); traffic goes only to it and between the containers.
The central's ports (6641, 6642) are the machine's: a lock file keeps two test runs
(two instances) from starting two centrals at once."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests_support import container_ping, run_cli

from workbench.host import Place
from workbench.marks import INSTANCE, OVS_MARK
from workbench.ovn import OVN_CTL
from workbench.ovs import Ovs, OvsPaths, pid_alive, read_pid, start_daemons, stop_daemons

pytestmark = pytest.mark.lab

RO = f"{INSTANCE[:6]}ro"  # this module's own instance: its `clean` touches nothing else
BASE = Path("/run/containet-sysovn")  # not containet's run directory: the "system's"
LINK, IP = "cn-sysovn0", "10.0.0.3"  # host1's underlay address
NB, SB = f"tcp:{IP}:6641", f"tcp:{IP}:6642"
FOREIGN_LS, FOREIGN_CHASSIS = "foreign-ls", "cn-fake-h2"


@dataclass(frozen=True)
class SystemOvn:
    ovs: str  # the system OVS database (unix:...)
    env: dict[str, str]  # ovn-ctl's directories, as the package's service has its defaults

    def ctl(self, *args: str) -> None:
        subprocess.run([OVN_CTL, *args], env=dict(os.environ, **self.env), capture_output=True, timeout=30)

    def pid(self, daemon: str) -> int | None:
        return read_pid(Path(self.env["OVN_RUNDIR"]) / f"{daemon}.pid")


def nbctl(*args: str) -> str:
    return subprocess.run(
        ["ovn-nbctl", f"--db={NB}", *args], capture_output=True, text=True, check=True
    ).stdout


def sbctl(*args: str) -> str:
    return subprocess.run(
        ["ovn-sbctl", f"--db={SB}", *args], capture_output=True, text=True, check=True
    ).stdout


def _stop(system: SystemOvn) -> None:
    system.ctl("stop_controller")
    system.ctl("stop_northd")  # and the NB and SB ovsdb-servers it manages
    stop_daemons(OvsPaths(BASE / "ovs"))
    shutil.rmtree(BASE, ignore_errors=True)
    subprocess.run(["ip", "link", "del", LINK], capture_output=True, check=False)


@pytest.fixture(scope="module")
def system_ovn() -> Iterator[SystemOvn]:
    """A provisioned host1 as the Vagrantfile makes it, minus a running ovn-controller
    (containet starts it the package's way); stopped, and a crashed run's left, here."""
    lock = open("/run/containet-sysovn.lock", "w")  # noqa: SIM115 - held for the module
    fcntl.flock(lock, fcntl.LOCK_EX)
    ovn_dir = BASE / "ovn"
    system = SystemOvn(
        ovs=f"unix:{BASE / 'ovs' / 'db.sock'}",
        env={"OVN_RUNDIR": str(ovn_dir), "OVN_LOGDIR": str(ovn_dir), "OVN_DBDIR": str(ovn_dir)},
    )
    _stop(system)
    run_cli(RO, "--ovs-db", system.ovs, "clean")
    try:
        subprocess.run(["ip", "link", "add", LINK, "type", "veth", "peer", "name", f"{LINK}p"], check=True)
        subprocess.run(["ip", "addr", "add", f"{IP}/32", "dev", LINK], check=True)
        subprocess.run(["ip", "link", "set", LINK, "up"], check=True)
        start_daemons(Place.root(), OvsPaths(BASE / "ovs"))
        system.ctl("start_northd")
        for which, port in (("nbctl", 6641), ("sbctl", 6642)):
            subprocess.run(
                [
                    f"ovn-{which}",
                    f"--db=unix:{ovn_dir}/ovn{which[:2]}_db.sock",
                    "set-connection",
                    f"ptcp:{port}:{IP}",
                ],
                check=True,
            )
        yield system
    finally:
        run_cli(RO, "--ovs-db", system.ovs, "clean")
        _stop(system)
        lock.close()


def ovs_ids(system: SystemOvn) -> dict[str, str]:
    ovs = Ovs(system.ovs)
    try:
        return dict(ovs.rows("Open_vSwitch", ["external_ids"])[0]["external_ids"])
    finally:
        ovs.close()


def marked_nb() -> list[str]:
    """Logical switches and ports carrying containet's mark (of any instance)."""
    out = []
    for table in ("logical_switch", "logical_switch_port"):
        rows = nbctl(
            "--format=csv", "--data=bare", "--no-headings", "--columns=name,external_ids", "list", table
        )
        out += [r.split(",")[0] for r in rows.splitlines() if f"{OVS_MARK}=" in r]
    return out


def test_ovn_on_a_real_host_uses_the_systems_ovn_and_takes_back_only_its_own(system_ovn: SystemOvn) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(RO, "--real", "--ovs-db", system_ovn.ovs, *args, env=system_ovn.env, timeout=90)

    # not containet's: a switch made by hand, another VM's chassis, a setting of the OVS
    nbctl("ls-add", FOREIGN_LS)
    sbctl("chassis-add", FOREIGN_CHASSIS, "geneve", "10.0.0.4")
    ovs = Ovs(system_ovn.ovs)
    ovs.api.db_set("Open_vSwitch", ".", ("external_ids", {"ovn-encap-type": "vxlan"})).execute(
        check_error=True
    )
    ovs.close()
    central = {d: system_ovn.pid(d) for d in ("ovnnb_db", "ovnsb_db", "ovn-northd")}
    assert all(central.values()) and system_ovn.pid("ovn-controller") is None

    applied = cli("scenario", "apply", "ovn")
    assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr
    controller = system_ovn.pid("ovn-controller")  # started the package's way, in its run directory
    assert controller and pid_alive(controller)
    ovn = json.loads(cli("status", "--json").stdout)["ovn"]
    assert (ovn["central"], ovn["northd"], ovn["nb"]) == ("host1", True, NB)
    [ls0] = [s for s in ovn["switches"] if s["name"] == "ls0"]
    assert {p["name"]: (p["up"], p["chassis"]) for p in ls0["ports"]} == {
        "h1-a": (True, "host1"),
        "h1-b": (True, "host1"),
    }
    [me] = [c for c in ovn["chassis"] if c["name"] == "host1"]
    assert me["controller"] and me["tunnels"] == ["10.0.0.4"]  # to the other chassis the SB knows
    assert container_ping("h1-a", "172.15.42.102", instance=RO)  # two containers of this host, through br-int
    doctor = json.loads(cli("doctor", "h1-a", "h1-b", "--json").stdout)  # OVN's walk, on the system's OVN
    assert doctor["first_failure"] is None, doctor["summary"]
    assert [h["name"] for h in doctor["hops"]][:3] == ["h1-a", "ovn central (host1)", "chassis host1"]

    undone = cli("scenario", "undo", "ovn")
    assert undone.returncode == 0, undone.stderr
    assert all(pid_alive(p) for p in [*central.values(), controller] if p)  # the system's stay
    assert marked_nb() == [] and FOREIGN_LS in nbctl("ls-list")
    ids = ovs_ids(system_ovn)
    assert ids.get("ovn-encap-type") == "vxlan" and "ovn-remote" not in ids  # as they were
    assert not any(k.startswith(OVS_MARK) for k in ids)

    # a run that dies after apply: `clean` takes back the same, and only that
    assert cli("scenario", "apply", "ovn").returncode == 0
    dry = run_cli(RO, "--ovs-db", system_ovn.ovs, "clean", "--dry-run").stdout
    assert "OVN logical port h1-a" in dry and "OVN logical switch ls0" in dry and FOREIGN_LS not in dry
    clean = run_cli(RO, "--ovs-db", system_ovn.ovs, "clean")
    assert clean.returncode == 0, clean.stderr
    assert marked_nb() == [] and FOREIGN_LS in nbctl("ls-list")
    assert ovs_ids(system_ovn).get("ovn-encap-type") == "vxlan"
    assert all(pid_alive(p) for p in [*central.values(), controller] if p)


def test_the_tuis_live_sources_follow_the_systems_ovn(system_ovn: SystemOvn) -> None:
    """The TUI's watcher in real mode: no OVN to watch until this host's OVS points at a
    central (quiet: no state, no error); once `apply` has, it connects to host1's NB
    and SB over the underlay within a second or two, and `undo` deleting the logical
    ports arrives as row events."""
    from workbench.engine import Engine
    from workbench.inventory.watch import Change, SourceState

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(RO, "--real", "--ovs-db", system_ovn.ovs, *args, env=system_ovn.env, timeout=90)

    changes: list[Change] = []
    states: list[SourceState] = []
    watcher = Engine(mode="real", ovs_db=system_ovn.ovs).watch(changes.append, states.append)
    ovn_sources = sorted(s.source for s in watcher.sources if s.source.startswith("ovn"))
    assert ovn_sources == ["ovn-nb", "ovn-sb"]

    def seen(source: str, detail: str = "") -> bool:
        return any(c.source == source and detail in c.detail for c in list(changes))

    def within(seconds: float, what: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + seconds
        while not what() and time.monotonic() < deadline:
            time.sleep(0.1)
        return what()

    watcher.start()
    try:
        time.sleep(1.5)
        assert not [s for s in states if s.source.startswith("ovn")]
        assert not seen("ovn-nb") and not seen("ovn-sb")
        assert cli("scenario", "apply", "ovn").returncode == 0
        assert within(5, lambda: {s.source for s in states if s.connected} >= {"ovn-nb", "ovn-sb"}), states
        del changes[:]
        assert cli("scenario", "undo", "ovn").returncode == 0
        assert within(5, lambda: seen("ovn-nb", "Logical_Switch_Port delete")), changes
        assert within(5, lambda: seen("ovn-sb", "Port_Binding delete")), changes
        assert not [s for s in states if s.source.startswith("ovn") and not s.connected], states
    finally:
        watcher.stop()
