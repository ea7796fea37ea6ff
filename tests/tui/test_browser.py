"""`containet-tui --serve` in a headless browser: textual-serve on 127.0.0.1,
Chromium loads the page, the app starts in the browser's terminal and draws
its title. Needs the Debian `chromium` package (apt-get install -y chromium).

The terminal draws on a canvas, so the test reads what the page received over
its websocket through the DevTools protocol, and takes a screenshot too."""

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
