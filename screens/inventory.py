"""Inventory (home): both hosts side by side, live from events."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Tree

from workbench.capture.rates import PortRate, RateTable, human_bps
from workbench.inventory.model import Container, HostView, OvnView, Snapshot

from .widgets.topology import Topology


def _state_style(state: str) -> str:
    return {"UP": "green", "DOWN": "red", "LOWERLAYERDOWN": "yellow"}.get(state, "dim")


def rate_text(r: PortRate | None) -> Text:
    """ " ↓1.2 Mb/s ↑3.4 Mb/s", drops and errors in red; nothing for a quiet port."""
    if r is None or not (r.busy or r.drops or r.errors):
        return Text()
    t = Text(f"  ↓{human_bps(r.rx_bps)} {r.rx_pps:.0f}p/s ↑{human_bps(r.tx_bps)} {r.tx_pps:.0f}p/s", "cyan")
    if r.drops:
        t.append(
            f" drops {r.drops}" + (f" +{r.new_drops}" if r.new_drops else ""),
            "bold red" if r.new_drops else "red",
        )
    if r.errors:
        t.append(f" errors {r.errors}", "bold red")
    return t


def container_label(c: Container) -> Text:
    ok = c.status == "running"
    text = Text.assemble(("● " if ok else "○ ", "green" if ok else "red"), (c.name, "bold"))
    text.append(f" {c.ip or '-'}")
    text.append(f" mtu {c.mtu or '-'}", "dim")
    if c.vlan is not None:
        text.append(f" vlan {c.vlan}", "yellow")
    text.append(f" → {c.attached_to or 'not attached'}", "cyan" if c.attached_to else "red")
    if c.reaches and c.reaches != c.attached_to:
        text.append(f" → {c.reaches}", "magenta")
    if c.cap_mbit:
        text.append(f" cap {c.cap_mbit:g} Mbit/s", "magenta")
    if c.impaired:
        text.append(f" [{c.impaired}]", "bold red")
    if not ok:
        text.append(f" {c.status}", "red")
    if not c.ours:
        text.append(" (not containet's)", "italic yellow")
    return text


class HostTree(Tree[str]):
    """One host: linux bridges, OVS bridges and ports, containers."""

    def __init__(self, host: str, **kwargs: object) -> None:
        super().__init__(Text(host, "bold"), **kwargs)  # type: ignore[arg-type]
        self.host = host
        self.show_root = True
        self._shown: tuple[object, ...] | None = None
        self.border_title = host

    def show(
        self,
        view: HostView | None,
        containers: tuple[Container, ...],
        sources: str,
        rates: dict[str, PortRate] | None = None,
        ovn: OvnView | None = None,
    ) -> None:
        rates = rates or {}
        key = (
            view,
            containers,
            sources,
            tuple(sorted((k, rate_text(r).plain) for k, r in rates.items())),
            ovn,
        )
        if key == self._shown:
            return  # nothing changed: keep the cursor and scroll where they are
        self._shown = key
        line = self.cursor_line
        self.clear()
        if view is None:
            self.root.set_label(Text(f"{self.host}: not in the inventory", "red"))
            return
        self.border_title = f"{view.name} · underlay {view.underlay_ip}"
        self.border_subtitle = sources
        label = Text.assemble((view.name, "bold"), f"  underlay {view.underlay_ip}")
        if not view.reachable:
            label.append("  UNREACHABLE", "bold red")
        elif not view.ovs_connected:
            label.append("  OVS disconnected", "bold red")
        self.root.set_label(label)
        if view.error:
            self.root.add_leaf(Text(f"! {view.error}", "red"))
        for br in view.linux_bridges:
            node = self.root.add(
                Text.assemble(
                    ("linux bridge ", "dim"),
                    (br.name, "bold cyan"),
                    f" {', '.join(br.addresses) or '-'}",
                    (f" mtu {br.mtu} ", "dim"),
                    (br.state, _state_style(br.state)),
                ),
                expand=True,
            )
            for port in br.ports:
                node.add_leaf(Text(port) + rate_text(rates.get(port)))
        for kt in view.kernel_tunnels:
            label = Text.assemble(("kernel tunnel ", "dim"), (kt.name, "bold yellow"), f" {kt.type} ")
            label.append(kt.describe(), "yellow")
            label.append(f" {kt.state}", _state_style(kt.state))
            if kt.bridge:
                label.append(f" in {kt.bridge}", "dim")
            self.root.add_leaf(label + rate_text(rates.get(kt.name)))
        for obr in view.ovs_bridges:
            node = self.root.add(
                Text.assemble(
                    ("ovs bridge ", "dim"),
                    (obr.name, "bold magenta"),
                    (f" {obr.datapath_type or 'system'}", "dim"),
                ),
                expand=True,
            )
            for p in obr.ports:
                t = Text(p.name)
                t.append(f" {p.type or 'system'}", "dim")
                if p.tag is not None:
                    t.append(f" tag {p.tag}", "yellow")
                if p.remote_ip:
                    t.append(f" remote_ip {p.remote_ip}", "bold yellow")
                if p.qos_mbit:
                    t.append(f" qos {p.qos_mbit:g} Mbit/s", "magenta")
                if p.impaired:
                    t.append(f" [{p.impaired}]", "bold red")
                node.add_leaf(t + rate_text(rates.get(p.name)))
        if ovn is not None:
            self._show_ovn(view.name, ovn)
        cnode = self.root.add(Text(f"containers ({len(containers)})", "dim"), expand=True)
        for c in containers:
            node = cnode.add(container_label(c) + rate_text(rates.get(c.host_veth or "")), expand=True)
            for iface in c.interfaces:
                node.add_leaf(
                    Text.assemble(
                        iface.name,
                        f" {', '.join(iface.addresses) or '-'}",
                        (f" mtu {iface.mtu} ", "dim"),
                        (iface.state, _state_style(iface.state)),
                    )
                )
            if c.gateway:
                node.add_leaf(Text(f"default via {c.gateway}", "dim"))
        self.root.expand()
        self.cursor_line = min(line, max(0, self.last_line))

    def _show_ovn(self, host: str, ovn: OvnView) -> None:
        """This host as OVN sees it: central (on its host), the chassis, its ports and tunnels."""
        if ovn.central == host:
            ports = sum(len(ls.ports) for ls in ovn.switches)
            label = Text.assemble(("ovn central ", "dim"), ("northd ", "bold"))
            label.append("running" if ovn.northd else "NOT RUNNING", "green" if ovn.northd else "bold red")
            switches = ", ".join(f"{ls.name} ({len(ls.ports)})" for ls in ovn.switches) or "none"
            label.append(f"  switches {switches}, {ports} ports", "dim")
            node = self.root.add(label, expand=True)
            if ovn.error:
                node.add_leaf(Text(f"! {ovn.error}", "red"))
        chassis = next((c for c in ovn.chassis if c.name == host), None)
        if chassis is None:
            self.root.add_leaf(Text(f"ovn chassis {host}: not registered", "yellow"))
            return
        label = Text.assemble(
            ("ovn chassis ", "dim"), (chassis.name, "bold blue"), f" {chassis.encap} {chassis.encap_ip}"
        )
        if chassis.controller is not None:
            label.append("  ovn-controller ", "dim")
            label.append(
                "running" if chassis.controller else "NOT RUNNING",
                "green" if chassis.controller else "bold red",
            )
            if chassis.crashes:
                label.append(f" (monitor: {chassis.crashes})", "yellow")
        node = self.root.add(label, expand=True)
        by_name = {p.name: p for ls in ovn.switches for p in ls.ports}
        for name in chassis.ports:
            port = by_name.get(name)
            t = Text(f"port {name}")
            if port is not None:
                t.append(f" {port.switch}", "dim")
                t.append(" up" if port.up else " down", "green" if port.up else "red")
            node.add_leaf(t)
        node.add_leaf(Text(f"geneve to {', '.join(chassis.tunnels) or 'nobody'}", "bold yellow"))


class InventoryView(Vertical):
    """Topology drawing on top, a tree per host below; a 'Lab up' offer when the lab is down."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="lab-banner"):
            yield Label("", id="lab-line")
            yield Button("Lab up (L)", id="lab-up", variant="success")
        yield Topology(id="topology")
        with Horizontal(id="hosts"):
            yield HostTree("host1", id="tree-host1")
            yield HostTree("host2", id="tree-host2")

    def show(
        self,
        snap: Snapshot | None,
        sources: dict[str, bool | None],
        lab_is_up: bool,
        busy: str,
        rates: RateTable | None = None,
    ) -> None:
        banner = self.query_one("#lab-banner")
        banner.display = not lab_is_up
        line = self.query_one("#lab-line", Label)
        if busy:
            line.update(Text(busy, "bold yellow"))
        elif snap is not None and snap.lab_repairs:
            text = Text(f"{snap.lab}: L repairs only what is broken, nothing healthy is rebuilt:", "bold")
            for repair in snap.lab_repairs:
                text.append(f"\n  {repair}")
            line.update(text)
        elif snap is not None:
            line.update(Text(f"{snap.lab}: press L or the button to bring it up", "bold"))
        button = self.query_one("#lab-up", Button)
        button.disabled = bool(busy)
        button.label = "Repair (L)" if snap is not None and snap.lab_repairs else "Lab up (L)"
        self.query_one(Topology).show(snap)
        names = [h.name for h in snap.hosts] if snap else ["host1", "host2"]
        trees = list(self.query(HostTree))
        for n, tree in enumerate(trees):
            name = names[n] if n < len(names) else None
            tree.display = name is not None
            if name is None or snap is None:
                continue
            tree.host = name
            marks = []
            for src in ("netlink", "ovs"):
                ok = sources.get(f"{src}:{name}")
                marks.append(f"{src} {'●' if ok else '○' if ok is False else '…'}")
            mine = {port: r for (host, port), r in (rates or {}).items() if host == name}
            tree.show(snap.host(name), snap.shown_on(name), "  ".join(marks), mine, ovn=snap.ovn)
