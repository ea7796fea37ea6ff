"""Every action of the app, declared once: its key, where it acts, what the footer,
the help screen (?) and the command palette (ctrl+p) call it. The bindings, the help
table and the palette's commands are all derived from ACTIONS; screens/actions.py
runs them, and `check_action` enables each key in its area only."""

from __future__ import annotations

from dataclasses import dataclass

from textual.actions import parse
from textual.binding import Binding, BindingType

#: where an action acts: its section in the help, and the tab where its key is live
EVERYWHERE = "Everywhere"
SCENARIOS = "Scenarios"
MEASURE = "Measure"
FAULTS = "Faults"
CAPTURE = "Capture"
AREAS = (EVERYWHERE, SCENARIOS, MEASURE, FAULTS, CAPTURE)


@dataclass(frozen=True)
class Act:
    key: str  # Textual's key name
    call: str  # the action as Textual runs it: "name" or "name('arg', ...)"
    label: str  # in the footer
    help: str  # in the help screen, and under the palette's title
    area: str = EVERYWHERE
    footer: bool = True  # shown in the footer (every key is in the help)
    shown: str | None = None  # how the help and the footer spell the key
    title: str | None = None  # the palette's title (default: from the area and the label)
    palette: bool = True
    per_scenario: bool = False  # in the palette once per scenario: "exp2: run all"

    @property
    def action(self) -> str:
        return parse(self.call)[1]

    @property
    def key_text(self) -> str:
        return self.shown or self.key

    def palette_title(self, scenario: str | None = None) -> str:
        if scenario is not None:
            return f"{scenario}: {self.label.lower()}"
        if self.title:
            return self.title
        return self.label if self.area == EVERYWHERE else f"{self.area}: {self.label.lower()}"

    def call_for(self, scenario: str) -> str:
        """The call with the scenario as its last argument (the palette's per-scenario commands)."""
        _ns, name, params = parse(self.call)
        return f"{name}({', '.join(repr(p) for p in (*params, scenario))})"


# fmt: off
ACTIONS: tuple[Act, ...] = (
    Act("1", "tab('inventory')", "Inventory", "the Inventory tab: hosts, bridges, tunnels, containers",
        footer=False, title="Show inventory"),
    Act("2", "tab('scenarios')", "Scenarios", "the Scenarios tab: the experiments, step by step",
        footer=False, title="Show scenarios"),
    Act("3", "tab('measure')", "Measure", "the Measure tab: ping, iperf, pingall, doctor",
        footer=False, title="Show measure"),
    Act("4", "tab('faults')", "Faults", "the Faults tab: break it on purpose, impair a link",
        footer=False, title="Show faults"),
    Act("5", "tab('capture')", "Capture", "the Capture tab: frames on any port, decoded, their X-ray",
        footer=False, title="Show capture"),
    Act("n", "step('next')", "Next step", "apply the next pending step", SCENARIOS, per_scenario=True),
    Act("b", "step('back')", "Back", "undo the last applied step", SCENARIOS, per_scenario=True),
    Act("r", "step('all')", "Run all", "run all pending steps", SCENARIOS, per_scenario=True),
    Act("u", "step('undo')", "Undo", "undo every step", SCENARIOS, per_scenario=True),
    Act("e", "export", "Export", "export the plan as a bash script", SCENARIOS, per_scenario=True),
    Act("left_square_bracket", "cycle(-1)", "Prev scenario", "previous scenario", SCENARIOS,
        footer=False, shown="[", palette=False),
    Act("right_square_bracket", "cycle(1)", "Next scenario", "next scenario", SCENARIOS,
        footer=False, shown="]", palette=False),

    Act("p", "measure('ping')", "Ping", "ping the picked pair: RTT over time (count × interval)", MEASURE),
    Act("t", "measure('iperf')", "Iperf", "iperf the picked pair: throughput per interval", MEASURE),
    Act("a", "measure('pingall')", "Pingall",
        "pingall (again): every pair as a matrix against the scenario; Enter on a cell: that pair", MEASURE),
    Act("d", "measure('doctor')", "Doctor", "doctor the picked pair: every hop, OK / FAIL / WARN, its fix",
        MEASURE),
    Act("x", "measure('stop')", "Stop", "stop the running measurement (in the Capture tab: the capture)",
        MEASURE),
    Act("o", "measure('compare')", "Compare",
        "the picked pair over the paths you tick, beside the raw veth ceiling of the same run", MEASURE),
    Act("C", "capture_path", "Capture path",
        "capture the picked pair's path: both ends and the underlay at once, merged in time order", MEASURE,
        footer=False),

    Act("s", "capture('start')", "Capture", "start capturing where the where box says (and its filter)",
        CAPTURE),
    Act("w", "capture('write')", "Write pcap", "write the frames in the list to a pcap file", CAPTURE),
    Act("f", "capture('flows')", "Flows", "the captured host's OVS flows: rules and datapath, live counters",
        CAPTURE),

    Act("i", "fault('inject')", "Inject", "inject the selected fault (on its default target)", FAULTS),
    Act("v", "fault('revert')", "Revert", "revert every injected fault", FAULTS),
    Act("h", "fault('hidden')", "Hidden fault", "inject a random fault, hidden: spot the bug", FAULTS),
    Act("y", "fault('reveal')", "Reveal", "name the hidden fault", FAULTS),
    Act("m", "fault('impair')", "Impair", "set the typed impairment on the picked link", FAULTS),
    Act("c", "fault('clear')", "Clear link", "clear the picked link's impairment", FAULTS),

    Act("L", "lab_up", "Lab up", "build the emulated lab, or repair only what is broken in it"),
    Act("D", "lab_down", "Lab down", "remove the lab and its containers", footer=False),
    Act("ctrl+r", "reload", "Re-read all", "read everything again: a full snapshot now", footer=False),
    Act("question_mark", "help", "Help", "this help: every key", shown="?"),
    Act("q", "quit", "Quit", "quit", palette=False),  # Textual's palette has its own Quit
)
# fmt: on

#: the area of each action (an action's key is live only there, see AppActions.check_action)
AREA_OF = {a.action: a.area for a in ACTIONS}


def bindings() -> list[BindingType]:
    return [
        Binding(a.key, a.call, a.label, show=a.footer, key_display=a.shown, tooltip=a.help) for a in ACTIONS
    ]


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help screen's rows by area: (key, what it does); ctrl+p is Textual's own."""
    rows = {area: [(a.key_text, a.help) for a in ACTIONS if a.area == area] for area in AREAS}
    at = next(i for i, (key, _text) in enumerate(rows[EVERYWHERE]) if key == "?") + 1
    rows[EVERYWHERE].insert(at, ("ctrl+p", "command palette: every action, by name"))
    return list(rows.items())
