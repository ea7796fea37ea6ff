"""The TUI's live sources on the real lab when one goes away and comes back.

* OVS: this run's own ovsdb-server of host1 (its pid file in this instance's
  run directory) is stopped, then started again with the lab's own arguments
  (workbench.ovs.start_daemons).
* docker: the shared system dockerd is never touched. A private dockerd (its own
  data root, exec root, pid file and socket in a temporary directory under /run)
  is started for the test, the app is pointed at it with DOCKER_HOST, and that
  daemon is stopped and started again. It is killed and its directory removed
  afterwards, also on failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests_support import lab_host

from screens.app import ContainetApp, make_app
from screens.inventory import HostTree
from screens.widgets.topology import Topology
from workbench import containers as dk
from workbench.marks import INSTANCE, docker_name
from workbench.ovs import OvsPaths, pid_alive, read_pid, start_daemons

from .conftest import tree_text, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.asyncio, pytest.mark.timeout(150)]

SOURCES = ("docker", "netlink:host1", "ovs:host1", "netlink:host2", "ovs:host2")
SIZE = (120, 40)


def _topbar(app: ContainetApp) -> str:
    return str(app.query_one("#topbar").render())


def _ovs_up(app: ContainetApp, host: str) -> bool:
    view = app.snap.host(host) if app.snap else None
    return view is not None and view.ovs_connected and any(b.name == "br-phy" for b in view.ovs_bridges)


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- OVS -----------------------------------------------------------------------------
async def test_ovsdb_server_stopped_shows_disconnected_then_recovers(engine) -> None:  # type: ignore[no-untyped-def]
    host = lab_host(engine, "host1")
    assert host.run_dir is not None and f"/{INSTANCE}/" in f"{host.run_dir}/"  # this run's own lab
    paths = OvsPaths(host.run_dir)
    pidfile = paths.pidfile("ovsdb-server")
    app = make_app(engine)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: all(app.sources.get(k) for k in SOURCES), 20)
            await wait_for(pilot, lambda: _ovs_up(app, "host1"), 10)

            pid = read_pid(pidfile)
            assert pid is not None
            os.kill(pid, signal.SIGTERM)
            await asyncio.to_thread(_wait_gone, pid, 5.0)
            assert not pid_alive(pid)

            # the source reports itself gone; the re-read it triggers shows the host without OVS
            await wait_for(pilot, lambda: app.sources.get("ovs:host1") is False, 10)
            assert "ovs✗" in _topbar(app)
            await wait_for(pilot, lambda: not _ovs_up(app, "host1"), 10)
            await wait_for(pilot, lambda: "OVS disconnected" in tree_text(app, "host1"), 5)
            assert "ovs ○" in str(app.query_one("#tree-host1", HostTree).border_subtitle)
            # nothing else went down with it
            assert all(app.sources.get(k) for k in SOURCES if k != "ovs:host1")
            assert _ovs_up(app, "host2")

            await asyncio.to_thread(start_daemons, host.place, paths)  # the lab's own arguments
            assert read_pid(pidfile) not in (None, pid)
            await wait_for(pilot, lambda: app.sources.get("ovs:host1") is True, 20)
            await wait_for(pilot, lambda: _ovs_up(app, "host1"), 10)
            await wait_for(pilot, lambda: "OVS disconnected" not in tree_text(app, "host1"), 5)
            assert "✗" not in _topbar(app)
    finally:
        if read_pid(pidfile) is None:  # leave the session lab as it was, whatever happened
            start_daemons(host.place, paths)


# --- docker (a private daemon) ----------------------------------------------------------
class PrivateDockerd:
    """A dockerd of our own: every path it writes is under one temporary directory."""

    def __init__(self) -> None:
        # under /run (short: the unix socket paths inside it must stay under 108 bytes)
        self.dir = Path(tempfile.mkdtemp(prefix=f"cn-{INSTANCE}-dockerd-", dir="/run"))
        self.sock = self.dir / "docker.sock"
        self.url = f"unix://{self.sock}"
        (self.dir / "daemon.json").write_text("{}\n")  # not the machine's /etc/docker/daemon.json
        self.argv = [
            "dockerd",
            f"--config-file={self.dir / 'daemon.json'}",
            f"--data-root={self.dir / 'data'}",
            f"--exec-root={self.dir / 'exec'}",
            f"--pidfile={self.dir / 'dockerd.pid'}",
            f"--host={self.url}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--bridge=none",
            "--storage-driver=vfs",  # no overlay mounts to leave behind
            "--shutdown-timeout=2",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.dir / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private dockerd exited: {self.log_tail()}")
            if self.sock.exists():
                try:
                    saved = os.environ.get("DOCKER_HOST")
                    os.environ["DOCKER_HOST"] = self.url
                    try:
                        dk.client(timeout=2).close()
                    finally:
                        if saved is None:
                            os.environ.pop("DOCKER_HOST", None)
                        else:
                            os.environ["DOCKER_HOST"] = saved
                    return
                except Exception:  # noqa: BLE001 - not answering yet
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"private dockerd did not answer within {timeout:.0f}s: {self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def leftovers(self) -> list[int]:
        """Processes (its containerd, shims) whose command line names our directory."""
        needle = str(self.dir).encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as fh:
                        if needle in fh.read():
                            found.append(int(entry))
                except OSError:
                    continue
        return found

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            for pid in self.leftovers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid in self.leftovers():
                _wait_gone(pid, 5.0)
            with open("/proc/mounts") as fh:
                mounts = [line.split()[1] for line in fh if line.split()[1].startswith(f"{self.dir}/")]
            for mnt in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=10, check=False)
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            lines = (self.dir / "dockerd.log").read_text(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:])
        except OSError:
            return "(no log)"


@pytest.fixture
def private_dockerd() -> Iterator[PrivateDockerd]:
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is not installed (apt-get install docker.io)")
    daemon = PrivateDockerd()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.destroy()
        assert not daemon.dir.exists() and not daemon.leftovers()


async def test_private_dockerd_restart_shows_disconnected_then_recovers(  # type: ignore[no-untyped-def]
    engine, private_dockerd: PrivateDockerd, monkeypatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", private_dockerd.url)  # undone before the daemon is destroyed
    cli = dk.client()
    try:
        dk.ensure_image(cli)  # offline busybox image, into the private daemon
    finally:
        cli.close()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: all(app.sources.get(k) for k in SOURCES), 20)
        assert app.snap is not None and app.snap.docker_connected

        await asyncio.to_thread(private_dockerd.stop)
        await wait_for(pilot, lambda: app.sources.get("docker") is False, 10)
        assert "docker✗" in _topbar(app)
        await wait_for(pilot, lambda: app.snap is not None and not app.snap.docker_connected, 10)
        assert "docker is disconnected" in str(app.query_one(Topology).render())
        assert all(app.sources.get(k) for k in SOURCES if k != "docker")  # the hosts' sources stay up

        await asyncio.to_thread(private_dockerd.start)
        await wait_for(pilot, lambda: app.sources.get("docker") is True, 20)
        await wait_for(pilot, lambda: app.snap is not None and app.snap.docker_connected, 10)
        assert "✗" not in _topbar(app)
        assert "docker is disconnected" not in str(app.query_one(Topology).render())

        # the reconnected watcher follows events again: a container shows up without a refresh key
        before = app.collects
        cli = dk.client()
        try:
            row = await asyncio.to_thread(dk.run, cli, "rc-a", "host1")
            assert row.status == "running"
            await wait_for(pilot, lambda: app.snap is not None and app.snap.container("rc-a") is not None, 10)
            assert app.collects > before
            assert "rc-a" in tree_text(app, "host1")
            await asyncio.to_thread(dk.remove, cli, docker_name("rc-a"))
            await wait_for(pilot, lambda: app.snap is not None and app.snap.container("rc-a") is None, 10)
        finally:
            try:
                dk.remove(cli, docker_name("rc-a"))
            finally:
                cli.close()
