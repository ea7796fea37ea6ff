"""The emulated lab, as a user drives it with the CLI: up, status, down, clean,
and a lab killed half-way. These tests run under their own instance so they can
tear the lab down without disturbing the session lab of the other tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tests_support as support

INSTANCE = os.environ["CONTAINET_INSTANCE"]  # set by conftest

pytestmark = pytest.mark.lab

LC = f"{INSTANCE[:6]}lc"  # this module's own instance
NS = f"cn-{LC}-"
RUN = Path("/run/containet") / LC


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return support.run_cli(LC, *args, timeout=timeout)


def leftovers(docker_host: str | None = None) -> dict[str, list[str]]:
    return support.leftovers(LC, docker_host)


NOTHING = support.NOTHING


@pytest.fixture
def own_lab() -> Iterator[None]:
    cli("clean")  # leftovers of a crashed earlier run
    try:
        yield
    finally:
        cli("clean")
        assert leftovers() == NOTHING


def test_up_status_ping_down(own_lab: None) -> None:
    up = cli("lab", "up")
    assert up.returncode == 0, up.stderr
    assert "lab is up: host1, host2" in up.stdout

    again = cli("lab", "up")
    assert again.returncode == 0 and "nothing changed" in again.stdout

    status = json.loads(cli("status", "--json").stdout)
    assert status["lab"] == "lab is up: host1, host2"
    hosts = {h["name"]: h for h in status["hosts"]}
    assert set(hosts) == {"host1", "host2"}
    for name, ip in (("host1", "10.0.0.3"), ("host2", "10.0.0.4")):
        h = hosts[name]
        assert h["reachable"] and h["ovs_connected"]
        assert [b["name"] for b in h["ovs_bridges"]] == ["br-phy"]
        assert {p["name"] for p in h["ovs_bridges"][0]["ports"]} == {"br-phy", "eth1"}
        phy = next(lk for lk in h["links"] if lk["name"] == "br-phy")
        assert phy["addresses"] == [f"{ip}/24"]

    # the underlay carries packets: host1 -> host2 inside namespaces we made
    ping = subprocess.run(
        ["ip", "netns", "exec", f"{NS}host1", "ping", "-c", "2", "-W", "2", "10.0.0.4"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert " 0% packet loss" in ping.stdout

    down = cli("lab", "down")
    assert down.returncode == 0, down.stderr
    assert leftovers() == NOTHING
    twice = cli("lab", "down")
    assert twice.returncode == 0 and "nothing to remove" in twice.stdout
    assert cli("clean").stdout.strip() == "nothing carries containet's mark: clean"
    assert cli("lab", "status").stdout.strip() == "lab is down"


def test_killed_half_way_then_clean_leaves_nothing_and_spares_foreign_things(own_lab: None) -> None:
    foreign_ns = f"{NS}foreign"  # our prefix, but not our mark: must survive
    subprocess.run(["ip", "netns", "add", foreign_ns], check=True)
    foreign_ct = f"foreign-{os.getpid()}"
    from workbench import containers

    containers.ensure_image(containers.client())  # this test may run before any lab was built
    subprocess.run(
        ["docker", "run", "-d", "--net=none", "--name", foreign_ct, "containet/busybox", "sleep", "600"],
        check=True,
        capture_output=True,
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "lab", "up"],
            env=dict(os.environ, CONTAINET_INSTANCE=LC),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not os.path.exists(f"/var/run/netns/{NS}host1") and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert leftovers()["namespaces"], "nothing was built before the kill"

        status = cli("lab", "status").stdout
        assert "half-built" in status or "is up" in status

        dry = cli("clean", "--dry-run")
        assert "would remove namespace" in dry.stdout
        assert foreign_ns not in dry.stdout and foreign_ct not in dry.stdout
        assert leftovers()["namespaces"], "--dry-run removed something"

        clean = cli("clean")
        assert clean.returncode == 0, clean.stderr
        assert leftovers() == {**NOTHING, "namespaces": [foreign_ns]}
        assert os.path.exists(f"/var/run/netns/{foreign_ns}")
        assert (
            foreign_ct
            in subprocess.run(
                ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True
            ).stdout
        )
    finally:
        subprocess.run(["ip", "netns", "del", foreign_ns], capture_output=True)
        subprocess.run(["docker", "rm", "-f", foreign_ct], capture_output=True)


def test_half_built_lab_is_repaired_not_stacked(own_lab: None) -> None:
    assert cli("lab", "up").returncode == 0
    # crash simulation: one host's OVS dies
    support.kill9(int((RUN / "host2" / "ovs-vswitchd.pid").read_text()))
    assert "half-built" in cli("lab", "status").stdout
    host1 = (RUN / "host1" / "ovs-vswitchd.pid").read_text()
    up = cli("lab", "up")
    assert up.returncode == 0, up.stderr
    assert "host2: restarted ovs-vswitchd" in up.stdout and "removing" not in up.stdout, up.stdout
    assert "lab is up: host1, host2 (repaired 1 thing" in up.stdout
    assert (RUN / "host1" / "ovs-vswitchd.pid").read_text() == host1  # the healthy host is untouched
    assert cli("lab", "status").stdout.strip() == "lab is up: host1, host2"
    assert len(leftovers()["namespaces"]) == 3  # two hosts + the underlay switch


def test_foreign_namespace_with_our_name_is_refused(own_lab: None) -> None:
    name = f"{NS}host1"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        up = cli("lab", "up")
        assert up.returncode != 0
        err = up.stderr.strip().splitlines()
        assert len(err) == 1 and f"network namespace {name} exists and is not containet's" in err[0]
        assert leftovers()["namespaces"] == [name]  # nothing half-created beside it
        assert os.path.exists(f"/var/run/netns/{name}")
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_not_root_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench import cli as cli_mod

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (["lab", "up"], ["lab", "down"], ["clean"], ["scenario", "apply", "exp1"]):
        assert cli_mod.main(argv) == 3
        err = capsys.readouterr().err
        assert err == "containet: error: containet needs root (network namespaces, OVS): run it with sudo\n"


def test_docker_down_is_one_clear_line(own_lab: None) -> None:
    env = dict(os.environ, CONTAINET_INSTANCE=LC, DOCKER_HOST="unix:///nonexistent.sock")
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "lab", "up"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1 and "dockerd is not answering" in out.stderr
    assert leftovers() == NOTHING
