"""`containet-tui --serve` in a headless browser: textual-serve on 127.0.0.1,
Chromium loads the page, the app starts in the browser's terminal and draws
its title. Needs the Debian `chromium` package (apt-get install -y chromium).

The terminal draws on a canvas, so the test reads what the page received over
its websocket through the DevTools protocol, and takes a screenshot too.

Closing the tab ends the app process textual-serve started for it, within a few
seconds and without spinning (screens/session.py says why it did not)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,800",
]
#: after the tab closed, its app is gone within this many seconds ...
CLOSE_WINDOW = 5.0
#: ... having used less than this share of one core on average meanwhile
MAX_CORE_SHARE = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def _browse(devtools_port: int, url: str, shot: Path, timeout: float = 30.0) -> bytes:
    """Open url in a new tab; return everything the page received over websockets."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{devtools_port}/json/new?about:blank") as resp:
            target = await resp.json(content_type=None)
        received = bytearray()
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))

            async def call(method: str, **params: object) -> int:
                n = next(ids)
                await ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
                return n

            await call("Network.enable")
            await call("Page.enable")
            await call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            shot_id = None
            while time.monotonic() < deadline:
                try:
                    msg = await ws.receive(timeout=1.0)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("method") == "Network.webSocketFrameReceived":
                    frame = data["params"]["response"]
                    payload = frame["payloadData"]
                    received += base64.b64decode(payload) if frame.get("opcode") == 2 else payload.encode()
                    if b"containet" in received and shot_id is None:
                        await asyncio.sleep(1.0)  # let it paint
                        shot_id = await call("Page.captureScreenshot", format="png")
                elif shot_id is not None and data.get("id") == shot_id:
                    shot.write_bytes(base64.b64decode(data["result"]["data"]))
                    break
        return bytes(received)


async def _open_then_close(
    devtools_port: int, url: str, drawn: Callable[[], None], timeout: float = 30.0
) -> None:
    """Open url in a new tab, wait until the app drew its title, call drawn(), close the tab."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{devtools_port}/json/new?about:blank") as resp:
            target = await resp.json(content_type=None)
        received = bytearray()
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))

            async def call(method: str, **params: object) -> None:
                await ws.send_str(json.dumps({"id": next(ids), "method": method, "params": params}))

            await call("Network.enable")
            await call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            while b"containet" not in received:
                assert time.monotonic() < deadline, f"the app drew no title: {bytes(received[-300:])!r}"
                try:
                    msg = await ws.receive(timeout=1.0)
                except TimeoutError:
                    continue
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                data = json.loads(msg.data)
                if data.get("method") == "Network.webSocketFrameReceived":
                    frame = data["params"]["response"]
                    payload = frame["payloadData"]
                    received += base64.b64decode(payload) if frame.get("opcode") == 2 else payload.encode()
            await asyncio.sleep(1.0)  # its watchers connect, the inventory fills in
            drawn()
            await call("Page.close")


@contextmanager
def _served_in_chromium() -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """`containet-tui --serve` on a free loopback port and a headless Chromium with a
    fresh profile; yields (the server, its URL, Chromium's DevTools port). Both are
    stopped after."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    port = _free_port()
    env = dict(os.environ, CONTAINET_INSTANCE=os.environ.get("CONTAINET_INSTANCE", "test"))
    server = subprocess.Popen(
        [sys.executable, "-m", "screens.app", "--serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    profile = tempfile.mkdtemp(prefix="containet-chromium-")
    browser = None
    try:
        _wait_port(port, 20)
        browser = subprocess.Popen(
            [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        active = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (active.exists() and active.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server, f"http://127.0.0.1:{port}/", int(active.read_text().split()[0])
    finally:
        if browser is not None:
            _stop(browser)
        _stop(server)
        shutil.rmtree(profile, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    """Every live process below pid (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != b"Z":
                parents.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b"(gone)"


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == b"Z":
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _closing_the_tab_ends_its_app() -> None:
    with _served_in_chromium() as (server, url, devtools_port):
        session: list[int] = []

        def drawn() -> None:
            session.extend(_descendants(server.pid))  # the tab's app: `sh -c python -m screens.app`

        asyncio.run(_open_then_close(devtools_port, url, drawn))
        closed = time.monotonic()
        assert any(b"screens.app" in _cmdline(p) for p in session), session
        start = {p: _cpu_seconds(p) or 0.0 for p in session}
        last = dict(start)
        alive = list(session)
        while alive and time.monotonic() - closed < CLOSE_WINDOW:
            time.sleep(0.05)
            for p in list(alive):
                now = _cpu_seconds(p)
                if now is None:
                    alive.remove(p)
                else:
                    last[p] = now
        used = sum(last[p] - start[p] for p in session)
        left = {p: _cmdline(p) for p in alive}
        assert not left, f"still running {CLOSE_WINDOW:g} s after the tab closed: {left}"
        assert used / CLOSE_WINDOW < MAX_CORE_SHARE, f"the app used {used:.2f} s of CPU on its way out"
        assert server.poll() is None  # the server serves on
        assert not _descendants(server.pid)


@pytest.mark.timeout(90)
def test_closing_the_tab_ends_its_app() -> None:
    """Whatever lab the test instance has (none: the app says "lab is down")."""
    _closing_the_tab_ends_its_app()


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_closing_the_tab_ends_its_app_on_a_live_lab(engine: object) -> None:
    """The lab up: every watcher (docker events, netlink, OVSDB) connected when the tab closes."""
    _closing_the_tab_ends_its_app()


@pytest.mark.timeout(90)
def test_serve_renders_the_app_in_chromium(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    port = _free_port()
    env = dict(os.environ, CONTAINET_INSTANCE=os.environ.get("CONTAINET_INSTANCE", "test"))
    server = subprocess.Popen(
        [sys.executable, "-m", "screens.app", "--serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    profile = tempfile.mkdtemp(prefix="containet-chromium-")
    browser = None
    try:
        _wait_port(port, 20)
        listening = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True)
        local = {line.split()[3] for line in listening.stdout.splitlines() if line.strip()}
        assert local == {f"127.0.0.1:{port}"}, local  # loopback only
        browser = subprocess.Popen(
            [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        active = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not active.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        devtools_port = int(active.read_text().split()[0])
        shot = tmp_path / "served.png"
        received = asyncio.run(_browse(devtools_port, f"http://127.0.0.1:{port}/", shot))
        assert b"containet" in received, received[-400:]
        assert shot.exists() and shot.stat().st_size > 5000  # a painted page, not a blank one
    finally:
        if browser is not None:
            _stop(browser)
        _stop(server)
        shutil.rmtree(profile, ignore_errors=True)
