"""Helpers the integration tests share (plain functions, not fixtures)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker

from workbench.engine import Engine
from workbench.host import Host
from workbench.inventory.model import Snapshot
from workbench.marks import docker_name
from workbench.ovs import pid_alive

VOLATILE = {"rx_packets", "tx_packets", "state"}


def lab_host(engine: Engine, name: str) -> Host:
    """The engine's host called `name`."""
    return next(h for h in engine.hosts() if h.name == name)


def link_names(netns: str | None = None) -> set[str]:
    """The names of the links in a network namespace (None: the root one)."""
    where = ["-n", netns] if netns else []
    out = subprocess.run(["ip", *where, "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {line.split(": ")[1].split("@")[0] for line in out.stdout.splitlines()}


def kill9(*pids: int, within: float = 10.0) -> None:
    """A crash: SIGKILL, and back once the processes are gone. The signal is queued at
    once but a process dies when it next runs (a busy ovs-vswitchd's threads take a
    while); a crash is only simulated once it has happened (dead, as ovs.pid_alive
    counts: a zombie is)."""
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + within
    while any(pid_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"pid(s) {pids} still there {within:g} s after SIGKILL"
        time.sleep(0.02)


def run_cli(
    instance: str,
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """The `containet` command as a user runs it, in the given instance: argv in, exit
    status, stdout and stderr out. It runs in a CliSession of that instance (workbench.cli's
    main, what the `containet` script calls, in a process kept for the instance: see
    DRIVER), or in a process of its own with `env` or CONTAINET_FRESH_CLI=1. Tests of
    what only a process shows (signals, exits, a killed command, two at once) start
    their own processes."""
    if env or os.environ.get("CONTAINET_FRESH_CLI") == "1":
        res = subprocess.run(
            [sys.executable, "-m", "workbench.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, CONTAINET_INSTANCE=instance, **(env or {})),
        )
    else:
        res = _session(instance)(*args, timeout=timeout)
    if check and res.returncode:
        raise subprocess.CalledProcessError(res.returncode, res.args, res.stdout, res.stderr)
    return res


_sessions: dict[tuple[str, ...], CliSession] = {}


def _session(instance: str) -> CliSession:
    """The instance's CliSession, started again when the environment a command would
    inherit (DOCKER_HOST, CONTAINET_*) changed since, or when the last one died."""
    seen = tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("CONTAINET_", "DOCKER_"))))
    key = (instance, *seen)
    session = _sessions.get(key)
    if session is None or session.proc.poll() is not None:
        session = _sessions[key] = CliSession(instance)
    return session


#: containet's CLI (workbench.cli.main, what the `containet` script runs) kept in one
#: process for many commands: each as a user types it (argv in, exit status, stdout and
#: stderr out), minus the ~2 s of CPU that importing the CLI costs every `containet`
#: run. Answers come back on a pipe of their own, so nothing a command prints mixes in.
DRIVER = r"""
import contextlib, io, json, os, sys
from workbench.cli import main
answers = os.fdopen(int(sys.argv[1]), "w")
for line in sys.stdin:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(json.loads(line))
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
    answers.write(json.dumps([rc, out.getvalue(), err.getvalue()]) + "\n")
    answers.flush()
"""


class CliSession:
    """One `containet` process for many commands: see DRIVER."""

    def __init__(self, instance: str) -> None:
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(write)],
            stdin=subprocess.PIPE,
            pass_fds=(write,),
            text=True,
            env=dict(os.environ, CONTAINET_INSTANCE=instance),
        )
        os.close(write)
        self.answers = os.fdopen(read)

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(list(args)) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.answers], [], [], timeout)
        if not ready:  # as subprocess.run(timeout=) does: the command is killed
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise subprocess.TimeoutExpired(["containet", *args], timeout)
        line = self.answers.readline()
        assert line, f"the CLI driver died running containet {' '.join(args)}"
        rc, out, err = json.loads(line)
        return subprocess.CompletedProcess(["containet", *args], rc, out, err)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.answers.close()


def normalized(snap: Snapshot) -> Any:
    """A snapshot without the fields that change by themselves (counters, carrier)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list | tuple):
            return [strip(v) for v in value]
        return value

    return strip(snap.to_dict())


def container_pid(name: str, instance: str | None = None) -> int:
    """A container's pid, of this process's instance or of `instance`."""
    cli = docker.from_env()
    try:
        full = f"cn-{instance}-{name}" if instance else docker_name(name)
        return int(cli.containers.get(full).attrs["State"]["Pid"])
    finally:
        cli.close()


def container_ping(
    name: str, dst: str, *, size: int = 56, df: bool = False, count: int = 2, instance: str | None = None
) -> bool:
    """iputils ping from inside a container's namespace; True when every reply came back."""
    argv = ["nsenter", "-t", str(container_pid(name, instance)), "-n", "ping", "-n", "-q", "-c", str(count)]
    argv += ["-i", "0.2", "-W", "1", "-s", str(size)]
    if df:
        argv += ["-M", "do"]
    out = subprocess.run([*argv, dst], capture_output=True, text=True, timeout=20)
    return out.returncode == 0 and f"{count} received" in out.stdout


NOTHING: dict[str, list[str]] = {"namespaces": [], "processes": [], "containers": [], "run_dir": []}


def leftovers(instance: str, docker_host: str | None = None) -> dict[str, list[str]]:
    """Everything that carries an instance's mark, found without the project's code:
    namespaces by name, live processes started on its run directory (OVN's monitor
    processes by their environment), containers by label, and whatever is left in the
    run directory itself (OVN's databases, sockets, pidfiles and logs included)."""
    prefix, run = f"cn-{instance}-", f"/run/containet/{instance}/"
    netns = "/var/run/netns"
    ns = sorted(n for n in os.listdir(netns) if n.startswith(prefix)) if os.path.isdir(netns) else []
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            # a daemon's --monitor process renames itself ("ovn-controller: monitoring pid
            # N"): its environment still names the run directory (OVS_RUNDIR, OVN_RUNDIR)
            env = Path(f"/proc/{pid}/environ").read_bytes() if cmd.startswith(b"ovn") else b""
        except OSError:
            continue
        if (run.encode() in cmd or f"={run}".encode() in env) and state != "Z":
            procs.append(pid)
    argv = ["docker"] + (["-H", docker_host] if docker_host else [])
    out = subprocess.run(
        [*argv, "ps", "-aq", "--filter", f"label=containet={instance}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    left = sorted(p.name for p in Path(run).iterdir()) if os.path.isdir(run) else []
    return {"namespaces": ns, "processes": procs, "containers": out, "run_dir": left}
