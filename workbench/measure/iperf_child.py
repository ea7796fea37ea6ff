"""The two child processes of an iperf measurement: `python -m workbench.measure.iperf_child`.

Why child processes: libiperf writes its report to file descriptor 1, and the iperf3
library redirects the whole process's stdout around `run()`. In a child that first
points fd 1 somewhere of its own, the caller's stdout (a terminal, the TUI) is never
touched. A child also enters the container's namespace with setns() in its only
thread, and can be killed on a deadline, which a thread inside libiperf cannot.

Both children die with their parent (PR_SET_PDEATHSIG), so a killed `containet`
leaves no server behind; `iperf.reap_stale` cleans what may still slip through.

A plain `python -m` child (not multiprocessing): multiprocessing's "spawn" re-runs the
caller's main script in the child, which breaks any caller without a `__main__` guard.
The child talks to its parent in JSON lines on its original stdout (kept on a private
descriptor before fd 1 is redirected). This module stays light (no pyroute2, no docker).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import asdict
from typing import Any

from .iperf_data import parse_error, parse_interval_line, parse_listening

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031
IOLBF = 1
DONE_MARK = "containet-iperf-server-done"
#: the libiperf report of a long test must fit the pipe the library never drains while running
PIPE_SIZE = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent_pid: int) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _enter_netns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _redirect_stdio(fd: int) -> None:
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def _line_buffered_c_stdout() -> None:
    """libiperf prints with stdio; into a pipe that is block-buffered, so make it per line
    (what `iperf3 --forceflush` does) before anything is printed."""
    stdout = ctypes.c_void_p.in_dll(_libc, "stdout")
    _libc.setvbuf(stdout, None, IOLBF, 0)


def _set_int(lib: Any, name: str, test: int, value: int) -> None:
    fn = getattr(lib, name)
    fn.argtypes = (ctypes.c_void_p, ctypes.c_int)
    fn.restype = None
    fn(test, value)


def free_port(candidates: list[int], udp: bool) -> int:
    """The first candidate port free for TCP (and UDP for a UDP test); else any free port."""
    for port in candidates:
        if _bindable(port, socket.SOCK_STREAM) and (not udp or _bindable(port, socket.SOCK_DGRAM)):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return False
        return True


class Channel:
    """JSON lines to the parent on a private copy of the original stdout."""

    def __init__(self) -> None:
        self.fd = os.dup(1)
        self.lock = threading.Lock()

    def send(self, msg: tuple[str, Any]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        with self.lock:
            while data:
                data = data[os.write(self.fd, data) :]


def _relay(read_fd: int, conn: Channel, streams: int, tcp: bool) -> None:
    """Turn the server's text report into messages for the parent, line by line."""
    with os.fdopen(read_fd, "r", errors="replace") as report:
        for line in report:
            if line.startswith(DONE_MARK):
                return
            port = parse_listening(line)
            error = parse_error(line)
            interval = parse_interval_line(line, streams=streams, tcp=tcp)
            if port is not None:
                conn.send(("listening", port))
            elif error is not None:
                conn.send(("error", error))
            elif interval is not None:
                conn.send(("interval", asdict(interval)))


def serve(ns_path: str, ports: list[int], udp: bool, streams: int, parent_pid: int) -> None:
    """One iperf3 server test in the namespace at ns_path, reporting live to conn."""
    _die_with_parent(parent_pid)
    conn = Channel()
    read_fd, write_fd = os.pipe()
    _redirect_stdio(write_fd)
    os.close(write_fd)
    _line_buffered_c_stdout()
    relay = threading.Thread(target=_relay, args=(read_fd, conn, streams, not udp), daemon=True)
    relay.start()
    try:
        import iperf3

        _enter_netns(ns_path)
        server = iperf3.Server()
        server.port = free_port(ports, udp)
        server.json_output = False
        server.verbose = False
        _set_int(server.lib, "iperf_set_test_one_off", server._test, 1)
        server.run()
        _libc.fflush(None)
        os.write(1, f"{DONE_MARK}\n".encode())
        relay.join(timeout=2)
        conn.send(("done", None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(0)  # skip the library's __del__ (it would end a client test on a server)


def client(ns_path: str, host: str, port: int, settings: dict[str, Any], parent_pid: int) -> None:
    """One iperf3 client test from the namespace at ns_path; sends its JSON report to conn."""
    _die_with_parent(parent_pid)
    conn = Channel()
    devnull = os.open(os.devnull, os.O_WRONLY)
    _redirect_stdio(devnull)  # whatever the library restores fd 1 to, it is not the caller's
    try:
        import iperf3

        _enter_netns(ns_path)
        cl = iperf3.Client()
        fcntl.fcntl(cl._pipe_in, F_SETPIPE_SZ, PIPE_SIZE)
        cl.server_hostname = host
        cl.port = port
        cl.duration = int(settings["duration"])
        cl.num_streams = int(settings["parallel"])
        if settings["udp"]:
            cl.protocol = "udp"
            cl.blksize = int(settings["udp_blksize"])
        if settings["bitrate"]:
            cl.bandwidth = int(settings["bitrate"])
        cl.reverse = bool(settings["reverse"])
        _set_int(cl.lib, "iperf_set_test_connect_timeout", cl._test, int(settings["connect_timeout_ms"]))
        result = cl.run()
        conn.send(("result", result.text))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(0)


def main() -> None:
    """argv[1] is a JSON object: {"role": "server" | "client", ...the function's arguments}."""
    args = json.loads(sys.argv[1])
    role = args.pop("role")
    if role == "server":
        serve(**args)
    elif role == "client":
        client(**args)
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
