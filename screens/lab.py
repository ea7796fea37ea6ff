"""The lab in the app: the top bar (the lab line, a dot per event source) and
Lab up / Lab down (keys L and D, the palette, the inventory's banner button).

A base of ContainetApp (screens/app.py), which provides what is declared below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.widgets import Button

from .messages import LabChanged

if TYPE_CHECKING:
    from textual.widgets import Label

    from workbench.api import EngineAPI
    from workbench.inventory.model import Snapshot


class LabControl(App[None]):
    """The lab's state in the top bar, and bringing the lab up or down in a worker."""

    if TYPE_CHECKING:  # provided by ContainetApp
        engine: EngineAPI
        snap: Snapshot | None
        sources: dict[str, bool | None]
        lab_busy: str
        _bar: Label | None

        def _show(self) -> None: ...

        def _show_inventory(self) -> None: ...

        def reload(self) -> None: ...

    @property
    def lab_is_up(self) -> bool:
        if self.snap is None:
            return True  # do not offer "Lab up" before we know
        return self.engine.mode != "lab" or self.snap.lab.startswith("lab is up")

    def _topbar(self) -> None:
        text = Text.assemble((" containet ", "bold reverse"), " ")
        if self.snap is not None:
            text.append(self.snap.lab, "green" if self.lab_is_up else "bold red")
        else:
            text.append("reading the lab…", "dim")
        if self.sources:
            text.append("  ")
            _dot(text, "docker", self.sources.get("docker"))
            hosts = sorted({k.split(":", 1)[1] for k in self.sources if ":" in k})
            for host in hosts:
                text.append(f"  {host}", "bold")
                _dot(text, "nl", self.sources.get(f"netlink:{host}"))
                _dot(text, "ovs", self.sources.get(f"ovs:{host}"))
        if self._bar is not None:  # kept: messages that arrive while quitting find no DOM to query
            self._bar.update(text)

    @on(Button.Pressed, "#lab-up")  # the inventory's banner, while the lab is down
    def _lab_button(self) -> None:
        self.action_lab_up()

    def action_lab_up(self) -> None:
        if self.lab_busy:
            return
        self.lab_busy = "bringing the lab up…"
        self._show()
        self._lab("up")

    def action_lab_down(self) -> None:
        if self.lab_busy:
            return
        self.lab_busy = "taking the lab down…"
        self._show()
        self._lab("down")

    @work(thread=True, group="lab", exclusive=True)
    def _lab(self, what: str) -> None:
        def progress(msg: str) -> None:
            self.call_from_thread(self._lab_progress, msg)

        error = None
        try:
            if what == "up":
                self.engine.lab_up(progress=progress)
            else:
                self.engine.lab_down(progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown, the app keeps running
            error = str(exc)
        self.call_from_thread(self._lab_done, what, error)

    def _lab_progress(self, msg: str) -> None:
        self.lab_busy = f"lab: {msg}"
        self._show_inventory()

    def _lab_done(self, what: str, error: str | None) -> None:
        self.lab_busy = ""
        if error:
            self.notify(error, title=f"lab {what} failed", severity="error", timeout=10)
        else:
            self.notify(f"lab is {what}", title="lab")
        self.post_message(LabChanged())

    def on_lab_changed(self, _message: LabChanged) -> None:
        self.reload()


def _dot(text: Text, label: str, ok: bool | None) -> None:
    style = "green" if ok else "bold red" if ok is False else "dim"
    text.append(f" {label}{'●' if ok else '○'}" if ok is not False else f" {label}✗", style)
