"""The crash matrix (issue 18, items 1 and 3): a fault, then `containet lab up` (and
`containet scenario apply` where its output says so), then `containet pingall`
clean -- and nothing healthy was made again: every container that was not itself
the fault keeps its docker ID and the ifindex of its host-side veth.

Faults: host1's ovs-vswitchd or ovsdb-server killed (kill -9, pid from the host's
run directory), both OVS daemons of host2 killed, host2's underlay veth deleted,
one container killed, one restarted by docker (exp1, and exp2 for all but the
container kill), and dockerd restarted (exp1).

This module runs in an instance of its own, cleaned before and after. The lab is
built once for the matrix (exp1 first, then exp2). The dockerd case restarts a
private dockerd of this module (own socket, data root and exec root) that its own
lab runs on: the machine's dockerd, and whatever else runs on it, is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tests_support as support

pytestmark = pytest.mark.lab

INSTANCE = os.environ["CONTAINET_INSTANCE"]  # set by conftest
CR = f"{INSTANCE[:6]}cr"  # the matrix's lab
CD = f"{INSTANCE[:6]}cd"  # the dockerd case's lab, on the private dockerd
PRIVATE_SOCK = f"/run/containet-crash-{INSTANCE}-docker.sock"
CONTAINERS = {"h1-a": "host1", "h1-b": "host1", "h2-a": "host2", "h2-b": "host2"}


@dataclass(frozen=True)
class Lab:
    instance: str
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return support.run_cli(self.instance, *args, env=self.env, timeout=timeout)

    def ok(self, *args: str) -> str:
        out = self.cli(*args)
        assert out.returncode == 0, f"containet {' '.join(args)}: {out.stdout}{out.stderr}"
        return out.stdout

    def docker(self, *args: str) -> str:
        host = ["-H", self.env["DOCKER_HOST"]] if "DOCKER_HOST" in self.env else []
        out = subprocess.run(["docker", *host, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def run_dir(self, host: str) -> Path:
        return Path("/run/containet") / self.instance / host

    def netns(self, host: str) -> str:
        return f"cn-{self.instance}-{host}"


@dataclass(frozen=True)
class Wired:
    """What must not change for a container that was not the fault."""

    id: str
    pid: int
    ip: str | None
    veth_ifindex: int | None


def wiring(lab: Lab) -> tuple[dict[str, Wired], str]:
    """Each container's wiring, and the lab's state line, from `status --json`."""
    snap = json.loads(lab.ok("status", "--json"))
    out = {}
    for c in snap["containers"]:
        ip = next(
            (a.split("/")[0] for i in c["interfaces"] if i["name"] == "eth0" for a in i["addresses"]), None
        )
        out[c["name"]] = Wired(c["full_id"], c["pid"], ip, veth_ifindex(lab, c["name"]))
    return out, snap["lab"]


def veth_ifindex(lab: Lab, name: str) -> int | None:
    found = subprocess.run(
        ["ip", "-n", lab.netns(CONTAINERS[name]), "-j", "link", "show", f"cn-{name}"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return int(json.loads(found.stdout)[0]["ifindex"]) if found.returncode == 0 else None


def kill(pidfile: Path) -> None:
    support.kill9(int(pidfile.read_text()))


# --- the faults: what each does, which containers it hits, what `lab up` must say --------
@dataclass(frozen=True)
class Fault:
    name: str
    do: Callable[[Lab], None]
    says: tuple[str, ...]  # lines `lab up` prints
    victims: tuple[str, ...] = ()  # containers the fault itself hits
    lab_fault: bool = True  # the lab is half-built until `lab up`


def _host2_both(lab: Lab) -> None:
    for daemon in ("ovsdb-server", "ovs-vswitchd"):
        kill(lab.run_dir("host2") / f"{daemon}.pid")


def _underlay(lab: Lab) -> None:
    subprocess.run(
        ["ip", "-n", f"cn-{lab.instance}-underlay", "link", "del", "host2"], check=True, timeout=10
    )


def _kill_container(lab: Lab) -> None:
    lab.docker("kill", f"cn-{lab.instance}-h1-b")


def _restart_container(lab: Lab) -> None:
    lab.docker("restart", "-t", "0", f"cn-{lab.instance}-h2-a")


FAULTS = {
    f.name: f
    for f in (
        Fault(
            "host1-vswitchd",
            lambda lab: kill(lab.run_dir("host1") / "ovs-vswitchd.pid"),
            ("host1: restarted ovs-vswitchd",),
        ),
        Fault(
            "host1-ovsdb",
            lambda lab: kill(lab.run_dir("host1") / "ovsdb-server.pid"),
            ("host1: restarted ovsdb-server on its database conf.db",),
        ),
        Fault(
            "host2-both",
            _host2_both,
            ("host2: restarted ovsdb-server on its database conf.db", "host2: restarted ovs-vswitchd"),
        ),
        Fault(
            "host2-underlay",
            _underlay,
            ("host2: underlay link re-created", "host2: OVS bridge br-phy: port eth1 re-opened"),
        ),
        Fault(
            "container-killed",
            _kill_container,
            ("(nothing changed)",),
            victims=("h1-b",),
            lab_fault=False,
        ),
        Fault(
            "container-restarted",
            _restart_container,
            ("(nothing changed)",),
            victims=("h2-a",),
            lab_fault=False,
        ),
    )
}
OVS_FAULTS = ("host1-vswitchd", "host1-ovsdb", "host2-both", "host2-underlay")
CASES = [("exp1", f) for f in FAULTS] + [("exp2", f) for f in (*OVS_FAULTS, "container-restarted")]


def crash_and_repair(
    lab: Lab, scenario: str, fault: Fault, before: dict[str, Wired] | None = None
) -> dict[str, Wired]:
    """The fault, the repair, a clean pingall, and nothing healthy made again;
    returns the wiring after (`before`: the wiring now, when known already)."""
    if before is None:
        before, _ = wiring(lab)
    assert sorted(before) == sorted(CONTAINERS) and all(w.ip for w in before.values()), before

    fault.do(lab)
    t0 = time.monotonic()
    up = lab.ok("lab", "up")
    for line in fault.says:  # the fault was seen, and repaired
        assert line in up, up
    assert "rebuilt from nothing" not in up and "rebuilding" not in up and "removing" not in up, up
    if fault.lab_fault:
        assert "nothing healthy was touched" in up, up
    if f"run `containet scenario apply {scenario}`" in up:
        lab.ok("scenario", "apply", scenario)
    else:
        assert not fault.victims, f"lab up should have named {scenario}'s pending steps:\n{up}"
    pingall = lab.cli("pingall")
    seconds = time.monotonic() - t0
    assert pingall.returncode == 0, f"after {fault.name}:\n{up}\n{pingall.stdout}{pingall.stderr}"
    summary = pingall.stdout.splitlines()[0]
    print(f"{scenario} {fault.name}: pingall clean {seconds:.1f} s after the fault: {summary}")

    after, state = wiring(lab)
    assert state == "lab is up: host1, host2"
    for name, was in before.items():
        now = after[name]
        if name in fault.victims:  # same name, address and docker ID; a new namespace
            assert (now.id, now.ip) == (was.id, was.ip) and now.pid != was.pid, (name, was, now)
        else:  # nothing healthy made again
            assert now == was, (name, was, now)
    return after


# --- the matrix -----------------------------------------------------------------------
@dataclass
class Matrix:
    lab: Lab
    scenario: str | None = None  # applied, and every case so far ended clean
    wired: dict[str, Wired] | None = None  # as the last case left it


@pytest.fixture(scope="module")
def matrix() -> Iterator[Matrix]:
    lab = Lab(CR, {})
    lab.cli("clean")  # leftovers of a crashed earlier run
    try:
        lab.ok("lab", "up")
        yield Matrix(lab)
    finally:
        lab.cli("clean")
        assert support.leftovers(CR) == support.NOTHING


@pytest.mark.parametrize(("scenario", "fault"), CASES, ids=[f"{s}-{f}" for s, f in CASES])
def test_fault_then_lab_up_repairs_keeping_what_was_healthy(
    matrix: Matrix, scenario: str, fault: str
) -> None:
    lab = matrix.lab
    if matrix.scenario != scenario:  # the first case of a scenario, or one after a failure
        lab.ok("lab", "up")
        saved = Path("/run/containet") / CR / "active.json"  # which scenario is applied
        active = json.loads(saved.read_text())["scenario"] if saved.exists() else None
        if active not in (None, scenario):
            lab.ok("scenario", "undo", active)
        lab.ok("scenario", "apply", scenario)
        matrix.wired = None
    wired, matrix.scenario, matrix.wired = matrix.wired, None, None
    matrix.wired = crash_and_repair(lab, scenario, FAULTS[fault], wired)
    matrix.scenario = scenario


# --- dockerd restarted --------------------------------------------------------------------
class PrivateDockerd:
    """A dockerd of this module alone: its own data root, exec root, pid file and socket."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="containet-crash-dockerd-"))
        self.host = f"unix://{PRIVATE_SOCK}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        with open(self.dir / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    f"--data-root={self.dir / 'data'}",
                    f"--exec-root={self.dir / 'exec'}",
                    f"--pidfile={self.dir / 'docker.pid'}",
                    f"-H={self.host}",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                    "--storage-driver=vfs",
                    "--shutdown-timeout=2",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            probe = subprocess.run(["docker", "-H", self.host, "version"], capture_output=True, timeout=10)
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"private dockerd did not start: {(self.dir / 'dockerd.log').read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        subprocess.run(["umount", "-R", str(self.dir)], capture_output=True, timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
        Path(PRIVATE_SOCK).unlink(missing_ok=True)


@pytest.fixture
def dockerd_lab() -> Iterator[tuple[Lab, PrivateDockerd]]:
    if not shutil.which("dockerd"):
        pytest.skip("dockerd is not installed")
    Path(PRIVATE_SOCK).unlink(missing_ok=True)  # a crashed earlier run
    dockerd = PrivateDockerd()
    lab = Lab(CD, {"DOCKER_HOST": dockerd.host})
    try:
        dockerd.start()
        lab.cli("clean")
        yield lab, dockerd
    finally:
        if dockerd.proc is None:
            try:
                dockerd.start()
            except RuntimeError:
                pass
        lab.cli("clean")
        dockerd.remove()
        assert support.leftovers(CD, dockerd.host) == support.NOTHING


def test_dockerd_restarted_then_scenario_apply_restores_every_container(
    dockerd_lab: tuple[Lab, PrivateDockerd],
) -> None:
    lab, dockerd = dockerd_lab
    lab.ok("lab", "up")
    lab.ok("scenario", "apply", "exp1")
    assert lab.cli("pingall").returncode == 0

    def restart(_lab: Lab) -> None:
        dockerd.stop()  # no live-restore: its containers stop with it
        dockerd.start()

    fault = Fault("dockerd-restarted", restart, ("(nothing changed)",), tuple(CONTAINERS), lab_fault=False)
    crash_and_repair(lab, "exp1", fault)
