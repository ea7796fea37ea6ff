"""The path doctor: Engine.doctor(src, dst) hop by hop in a tree, the evidence and
fix of the highlighted check, and a button that applies the fix (Engine.doctor_fix)
and checks again. The judging is all in workbench.doctor; this only shows it."""

from __future__ import annotations

from typing import TypeAlias

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, Tree

from workbench.api import EngineAPI
from workbench.doctor import Check, DoctorReport, FixAction, Status

STATUS_STYLE = {Status.OK: "green", Status.WARN: "bold yellow", Status.FAIL: "bold red"}
STATUS_MARK = {Status.OK: "✔ OK  ", Status.WARN: "! WARN", Status.FAIL: "✗ FAIL"}

#: what a line of the tree stands for: a hop (its name) or one of its checks
Line: TypeAlias = Check | str


def status_text(status: Status) -> Text:
    return Text(STATUS_MARK.get(status, status.upper()), STATUS_STYLE.get(status, ""))


def hop_label(n: int, hop: str, status: Status) -> Text:
    text = status_text(status)
    text.append(f" {n}. ")
    text.append(hop, "bold")
    return text


def check_label(check: Check) -> Text:
    text = status_text(check.status)
    text.append(f" {check.name}: ", "bold")
    text.append(check.evidence, "" if check.status == Status.OK else STATUS_STYLE.get(check.status, ""))
    return text


def chosen_fix(report: DoctorReport | None, line: Line | None) -> FixAction | None:
    """The fix the button applies: the highlighted check's, else the first failure's."""
    if isinstance(line, Check) and line.fix is not None:
        return line.fix
    first = report.first_failure if report is not None else None
    return first.fix if first is not None else None


class DoctorScreen(ModalScreen[DoctorReport | None]):
    """Runs the doctor on open (or shows a report it is given); dismisses with the last report."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("f", "fix", "Apply fix"),
        Binding("r", "rerun", "Run again"),
        Binding("c", "capture", "Capture path"),
    ]

    def __init__(self, engine: EngineAPI, src: str, dst: str, report: DoctorReport | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.src = src
        self.dst = dst
        self.report: DoctorReport | None = None
        self._given = report
        self.busy = ""
        self.applied: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="doctor-box"):
            yield Label(Text(f"doctor {self.src} → {self.dst}", "bold"), id="doctor-title")
            yield Label("", id="doctor-summary")
            tree: Tree[Line] = Tree("path", id="doctor-tree")
            tree.show_root = False
            yield tree
            with VerticalScroll(id="doctor-detail-box"):
                yield Static("", id="doctor-detail")
            with Horizontal(classes="buttons"):
                yield Button("Apply fix (f)", id="doctor-fix", variant="success", disabled=True)
                yield Button("Run again (r)", id="doctor-rerun", variant="primary")
                yield Button("Close (esc)", id="doctor-close")

    def on_mount(self) -> None:
        if self._given is not None:
            self._show(self._given)  # from the history: as it was then (r runs it again)
        else:
            self.run_doctor()

    # --- running ------------------------------------------------------------------
    def run_doctor(self) -> None:
        if self.busy:
            return
        self._busy("walking the path…")
        self._diagnose()

    @work(thread=True, group="doctor", exclusive=True)
    def _diagnose(self) -> None:
        def progress(msg: str) -> None:
            self.app.call_from_thread(self._busy, f"{msg}…")

        try:
            report = self.engine.doctor(self.src, self.dst, progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown in the screen
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._show, report)

    @work(thread=True, group="doctor", exclusive=True)
    def _apply(self, fix: FixAction) -> None:
        try:
            summary = self.engine.doctor_fix(fix)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._failed, f"fix failed: {exc}")
            return
        self.app.call_from_thread(self._fixed, summary)

    def _busy(self, text: str) -> None:
        self.busy = text
        self._summary(Text(text, "bold yellow"))
        self._buttons()

    def _failed(self, error: str) -> None:
        self.busy = ""
        self._summary(Text(f"✗ {error}", "bold red"))
        self._buttons()

    def _fixed(self, summary: str) -> None:
        self.busy = ""
        self.applied.append(summary)
        self.app.notify(summary, title="doctor: fix applied")
        self.run_doctor()  # check again: the fix has to show in the facts

    # --- drawing ------------------------------------------------------------------
    def _summary(self, text: Text) -> None:
        if self.is_attached:
            self.query_one("#doctor-summary", Label).update(text)

    def _show(self, report: DoctorReport) -> None:
        if not self.is_attached:
            return  # closed while it ran
        self.busy = ""
        self.report = report
        bad = report.first_failure
        style = "bold green" if bad is None else "bold red"
        self._summary(Text(f"{report.summary}  ({report.seconds:.1f} s)", style))
        tree: Tree[Line] = self.query_one("#doctor-tree", Tree)
        tree.clear()
        first_bad_line = None
        for n, hop in enumerate(report.hops, 1):
            status = report.hop_status(hop)
            node = tree.root.add(hop_label(n, hop, status), data=hop, expand=status != Status.OK)
            if status != Status.OK and first_bad_line is None:
                first_bad_line = node
            for check in report.hop_checks(hop):
                leaf = node.add(
                    check_label(check), data=check, expand=True, allow_expand=bool(check.fix_command)
                )
                if check.fix_command:
                    fix = Text.assemble(("fix: ", "bold green"), (check.fix_command, "green"))
                    leaf.add_leaf(fix, data=check)
                if check is bad:
                    first_bad_line = leaf
        tree.root.expand()
        target = first_bad_line or (tree.root.children[0] if tree.root.children else None)
        self._detail(target.data if target is not None else None)
        if target is not None:
            self.call_after_refresh(tree.move_cursor, target)  # lines exist once it is laid out
        self._buttons()

    def _detail(self, line: Line | None) -> None:
        """What the highlighted line says: a check's evidence and fix, or a hop's tally."""
        if not self.is_attached:
            return
        text = Text()
        if isinstance(line, str):
            if self.report is not None:
                checks = self.report.hop_checks(line)
                text.append_text(status_text(self.report.hop_status(line)))
                text.append(f" {line}: ", "bold")
                tally = {s: sum(c.status == s for c in checks) for s in (Status.OK, Status.WARN, Status.FAIL)}
                text.append(", ".join(f"{n} {s.upper()}" for s, n in tally.items() if n))
                text.append("\n↑↓ to a check for its evidence and fix\n", "dim")
            line = None
        elif line is None:
            text.append("no report yet\n", "dim")
        else:
            text.append_text(status_text(line.status))
            text.append(f" {line.hop} · {line.name}\n", "bold")
            text.append(f"{line.evidence}\n")
            if line.fix_command:
                text.append("fix: ", "bold green")
                text.append(f"{line.fix_command}\n", "green")
        pick = chosen_fix(self.report, line)
        if pick is not None:
            text.append("f applies: ", "bold")
            text.append(pick.title)
        self.query_one("#doctor-detail", Static).update(text)
        self._buttons()

    def _buttons(self) -> None:
        if not self.is_attached:
            return
        tree: Tree[Line] = self.query_one("#doctor-tree", Tree)
        node = tree.cursor_node
        pick = chosen_fix(self.report, node.data if node is not None else None)
        self.query_one("#doctor-fix", Button).disabled = bool(self.busy) or pick is None
        self.query_one("#doctor-rerun", Button).disabled = bool(self.busy)

    @on(Tree.NodeHighlighted, "#doctor-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[Line]) -> None:
        if self.report is not None:
            self._detail(event.node.data)

    # --- actions ------------------------------------------------------------------
    @on(Button.Pressed, "#doctor-fix")
    def action_fix(self) -> None:
        if self.busy or self.report is None:
            return
        tree: Tree[Line] = self.query_one("#doctor-tree", Tree)
        node = tree.cursor_node
        pick = chosen_fix(self.report, node.data if node is not None else None)
        if pick is None:
            self.app.notify("this report offers no fix", severity="warning")
            return
        self._busy(f"applying: {pick.title}…")
        self._apply(pick)

    @on(Button.Pressed, "#doctor-rerun")
    def action_rerun(self) -> None:
        self.run_doctor()

    @on(Button.Pressed, "#doctor-close")
    def action_close(self) -> None:
        self.dismiss(self.report)

    def action_capture(self) -> None:
        """Capture this path (both ends and the underlay) in the Capture tab."""
        self.dismiss(self.report)
        start = getattr(self.app, "action_capture_path", None)
        if start is not None:
            self.app.call_later(start, self.src, self.dst)
