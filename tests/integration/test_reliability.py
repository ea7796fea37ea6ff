"""Reliability: a CLI killed with SIGKILL half-way through `scenario apply`, then
`clean` (zero leftovers, foreign things untouched); dockerd and one OVS instance
going away under `containet status` and coming back; every bad input one clear
line, a non-zero exit and an unchanged inventory.

The dockerd test starts its own private dockerd (own data root, exec root, pid file
and socket) and never touches the machine's dockerd; the OVS test stops only this
module's own lab's daemons."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tests_support as support
from tests_support import normalized

from workbench.engine import Engine

pytestmark = pytest.mark.lab

RL = f"{os.environ['CONTAINET_INSTANCE'][:6]}rl"  # this module's own instance
NS = f"cn-{RL}-"
RUN = Path("/run/containet") / RL
PRIVATE_SOCK = "/run/containet-test-docker.sock"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return support.run_cli(RL, *args, env=env, timeout=timeout)


def leftovers(docker_host: str | None = None) -> dict[str, list[str]]:
    return support.leftovers(RL, docker_host)


NOTHING = support.NOTHING


@pytest.fixture
def own_lab() -> Iterator[None]:
    cli("clean")  # leftovers of a crashed earlier run
    try:
        yield
    finally:
        cli("clean")


def test_kill_during_apply_then_clean_leaves_nothing_and_spares_foreign(own_lab: None) -> None:
    foreign_ns = f"{NS}foreign"  # our prefix, not our mark
    foreign_br = f"cn{RL}fbr"[:15]  # a bridge in the root namespace that is not ours
    subprocess.run(["ip", "netns", "add", foreign_ns], check=True)
    subprocess.run(["ip", "link", "add", foreign_br, "type", "bridge"], check=True)
    try:
        assert cli("lab", "up").returncode == 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "scenario", "apply", "exp1"],
            env=dict(os.environ, CONTAINET_INSTANCE=RL),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # kill it once it has changed something: docker0 exists in host1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            probe = subprocess.run(
                ["ip", "-n", f"{NS}host1", "link", "show", "docker0"], capture_output=True, timeout=10
            )
            if probe.returncode == 0:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL, "apply finished before it could be killed"

        clean = cli("clean")
        assert clean.returncode == 0, clean.stderr
        assert leftovers() == {**NOTHING, "namespaces": [foreign_ns]}
        assert not RUN.exists() or not [p for p in RUN.iterdir() if p.name != ".lock"]
        assert os.path.exists(f"/var/run/netns/{foreign_ns}")
        assert subprocess.run(["ip", "link", "show", foreign_br], capture_output=True).returncode == 0
        assert cli("clean").stdout.strip() == "nothing carries containet's mark: clean"
    finally:
        subprocess.run(["ip", "netns", "del", foreign_ns], capture_output=True)
        subprocess.run(["ip", "link", "del", foreign_br], capture_output=True)


# --- daemons going away -----------------------------------------------------------------
class PrivateDockerd:
    """A dockerd of this test alone: its own data root, exec root, pid file and socket."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="containet-dockerd-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = f"unix://{PRIVATE_SOCK}"

    def start(self, timeout: float = 60) -> None:
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "dockerd.log", "ab"),  # noqa: SIM115 - closed with the process
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = subprocess.run(["docker", "-H", self.host, "version"], capture_output=True, timeout=10)
            if ok.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"private dockerd did not start: {(self.dir / 'dockerd.log').read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        subprocess.run(["umount", "-R", str(self.dir)], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        Path(PRIVATE_SOCK).unlink(missing_ok=True)


@pytest.fixture
def private_dockerd() -> Iterator[PrivateDockerd]:
    if not shutil.which("dockerd"):
        pytest.skip("dockerd is not installed")
    Path(PRIVATE_SOCK).unlink(missing_ok=True)  # a crashed earlier run
    dockerd = PrivateDockerd()
    env = {"DOCKER_HOST": dockerd.host}
    try:
        dockerd.start()
        cli("clean", env=env)
        yield dockerd
    finally:
        if dockerd.proc is None:
            with_suppress(dockerd.start)
        cli("clean", env=env)
        dockerd.remove()


def with_suppress(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - teardown goes on
        pass


def status(env: dict[str, str]) -> dict[str, Any]:
    out = cli("status", "--json", env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _stable(snap: dict[str, Any]) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("rx_packets", "tx_packets", "state")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(snap)  # type: ignore[no-any-return]


def test_dockerd_and_ovs_going_away_and_back(private_dockerd: PrivateDockerd) -> None:
    env = {"DOCKER_HOST": private_dockerd.host}
    up = cli("lab", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert cli("container", "list", env=env).returncode == 0
    before = status(env)
    assert before["docker_connected"] and all(h["ovs_connected"] for h in before["hosts"])

    # dockerd stops: status still answers, says "docker: disconnected", hosts unaffected
    private_dockerd.stop()
    text = cli("status", env=env, timeout=60)
    assert text.returncode == 0 and "docker: disconnected" in text.stdout
    down = status(env)
    assert not down["docker_connected"] and all(h["ovs_connected"] for h in down["hosts"])
    hosts_before = [json.dumps(h, sort_keys=True) for h in _stable(down)["hosts"]]
    apply = cli("scenario", "apply", "exp2", env=env)
    # refused before the first step: nothing to roll back
    assert apply.returncode == 3 and "dockerd is not answering" in apply.stderr
    assert apply.stderr.count("\n") == 1
    assert [json.dumps(h, sort_keys=True) for h in _stable(status(env))["hosts"]] == hosts_before

    # ... and comes back
    private_dockerd.start()
    assert status(env)["docker_connected"]

    # one OVS instance (this lab's host2) stops: that host says OVS disconnected
    pids = [int((RUN / "host2" / f"{d}.pid").read_text()) for d in ("ovs-vswitchd", "ovsdb-server")]
    support.kill9(*pids)
    text = cli("status", env=env, timeout=60)
    assert text.returncode == 0 and "host2  underlay 10.0.0.4 (OVS disconnected)" in text.stdout, text.stdout
    hosts = {h["name"]: h for h in status(env)["hosts"]}
    assert hosts["host1"]["ovs_connected"] and not hosts["host2"]["ovs_connected"]
    assert "half-built" in cli("lab", "status", env=env).stdout

    # recovery: lab up repairs the half-built lab
    again = cli("lab", "up", env=env)
    assert again.returncode == 0, again.stderr
    after = status(env)
    assert after["docker_connected"] and all(h["ovs_connected"] for h in after["hosts"])


# --- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["container", "add", "host1", "web", "172.15.42.300/24"], 2, "is not an IPv4 address"),
        (["container", "add", "host1", "web", "172.15.42.120/40"], 2, "is not an IPv4 address"),
        (["container", "add", "host1", "web", "172.15.42.120"], 2, "needs a prefix length"),
        (["container", "add", "host1", "web", "172.15.42.101/24"], 2, "already used by h2-a"),
        (["container", "add", "host1", "web", "172.15.42.120/24", "--vlan", "0"], 2, "out of range"),
        (["container", "add", "host1", "web", "172.15.42.120/24", "--vlan", "4095"], 2, "out of range"),
        (["container", "rm", "ghost"], 2, "unknown container 'ghost'"),
        (["scenario", "apply", "exp9"], 2, "unknown scenario 'exp9'"),
        (["scenario", "show", "nope"], 2, "unknown scenario 'nope'"),
        (["doctor", "h1-a", "ghost"], 2, "unknown container 'ghost'"),
        (["doctor", "h1-a", "h1-a"], 2, "two different containers"),
        (["mtu", "ghost", "h2-a"], 2, "unknown container 'ghost'"),
        (["ping", "h1-a", "ghost"], 2, "unknown container 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    kept: Callable[[str], Engine], cli: Callable[..., Any], args: list[str], code: int, message: str
) -> None:
    engine = kept("exp1")
    before = normalized(engine.snapshot())
    out = cli(*args)
    assert out.returncode == code, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("containet: error: ") and message in lines[0], out.stderr
    assert normalized(engine.snapshot()) == before


def test_missing_tunrc_key_is_one_line_and_changes_nothing(
    engine: Engine, cli: Callable[..., Any], tmp_path: Path
) -> None:
    from workbench.setup import shipped_tunrc

    for host in ("host1", "host2"):
        text = shipped_tunrc(host).render()
        if host == "host1":
            text = "\n".join(x for x in text.splitlines() if not x.startswith("export OVS_BRIDGE=")) + "\n"
        (tmp_path / f"{host}_tunrc").write_text(text)
    before = normalized(engine.snapshot())
    out = cli("--tunrc-dir", str(tmp_path), "scenario", "apply", "exp1")
    assert out.returncode == 2, out.stdout
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "OVS_BRIDGE" in err[0] and f"{tmp_path}/host1_tunrc" in err[0], err
    assert normalized(engine.snapshot()) == before
    assert engine.active() is None
