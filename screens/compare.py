"""Compare (o in Measure): the picked pair over the paths ticked here, beside the raw
veth ceiling of the same run. The result is the CLI's own table (`containet compare`),
shown in the Measure tab's live area and kept in its history."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label

from workbench.measure.compare import CompareResult


class ComparePathsScreen(ModalScreen[list[str] | None]):
    """Which paths to compare the pair over (dismisses with the ticked names, or None)."""

    BINDINGS = [
        Binding("enter", "go", "Compare", priority=True),  # space ticks a box
        Binding("escape,q", "cancel", "Cancel"),
    ]

    def __init__(self, src: str, dst: str, paths: list[tuple[str, str]], applied: str | None) -> None:
        super().__init__()
        self.src = src
        self.dst = dst
        self.paths = paths  # (scenario name, title)
        self.applied = applied

    def compose(self) -> ComposeResult:
        with Vertical(id="pair-box"):
            yield Label(Text(f"compare {self.src} → {self.dst}", "bold"))
            about = (
                f"{self.applied} is measured where it stands. " if self.applied else "Nothing is applied. "
            ) + (
                "Each other path ticked is applied for its turn, then "
                + (f"{self.applied} is applied again." if self.applied else "undone.")
                + " The raw veth ceiling is measured in the same run."
            )
            yield Label(about, classes="about")
            for name, title in self.paths:
                yield Checkbox(f"{name}: {title}", self.applied == name, id=f"path-{name}", compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Compare (enter)", id="compare-go", variant="success")
                yield Button("Cancel (esc)", id="compare-cancel")

    def ticked(self) -> list[str]:
        return [name for name, _ in self.paths if self.query_one(f"#path-{name}", Checkbox).value]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_go() if event.button.id == "compare-go" else self.action_cancel()

    def action_go(self) -> None:
        picked = self.ticked()
        if not picked:
            self.app.notify("tick at least one path", severity="warning")
            return
        self.dismiss(picked)

    def action_cancel(self) -> None:
        self.dismiss(None)


def compare_summary(result: CompareResult) -> str:
    """One line for the history: each path's share of the ceiling."""
    parts = []
    for fig in result.paths:
        ratio = fig.ratio(result.ceiling)
        parts.append(f"{fig.path} {ratio:.3f}" if ratio is not None else f"{fig.path} -")
    ceiling = result.ceiling.bps
    head = f"of a {ceiling / 1e9:.1f} Gbit/s ceiling: " if ceiling else "no ceiling: "
    return head + ", ".join(parts)
