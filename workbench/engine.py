"""The engine's public API: one path for the CLI and the TUI.

    Engine(mode="lab")         hosts are the emulated lab's namespaces
    Engine(mode="real", ...)   this machine is one host (the seed's VMs)

Scenarios are found through the "containet.scenarios" entry point group, so
the engine never imports them (and users can add their own).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import actions, lab, labup
from . import containers as dk
from .active import ACTIVE, Active
from .api import EngineAPI, Scenario
from .capturing import Capturing
from .comparing import Comparing
from .errors import BadInput, NotReady
from .host import Host, Place
from .inventory.collect import snapshot as collect_snapshot
from .inventory.model import Snapshot
from .labreport import Fault, LabReport, recheck_scenario
from .marks import RUN_DIR, check_container_name
from .probing import Probing
from .setup import Setup, default_containers, load_tunrc
from .steps import Context, Listener, Plan, StepEvent, StepState
from .topology.model import Topology

if TYPE_CHECKING:
    from .faults.catalogue import FaultDef
    from .impair.ops import ImpairState

SYSTEM_OVS_DB = "unix:/var/run/openvswitch/db.sock"
ETC = Path("/etc/containet")  # real mode: the host's own tunrc, if the provisioning put one there


def discover_scenarios() -> dict[str, Scenario]:
    """The scenario modules registered under the "containet.scenarios" entry points,
    and those the project's own `scenarios` package lists (SCENARIOS): an editable
    install's entry points are those of the tree it was installed from, so a module
    added in another worktree (run with PYTHONPATH) is found too."""
    found: dict[str, Scenario] = {}
    for ep in entry_points(group="containet.scenarios"):
        module = ep.load()
        found[module.NAME] = module
    try:
        package = importlib.import_module("scenarios")  # by name, as entry points load them
    except ImportError:
        package = None
    for module in getattr(package, "SCENARIOS", {}).values():
        found.setdefault(module.NAME, module)
    order = ["exp1", "exp2", "exp3", "vxlan", "qos", "ovn", "ovn-vlan"]
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0])))


def real_host_index(name: str) -> int:
    if not name.startswith("host") or not name[4:].isdigit() or not 1 <= int(name[4:]) <= lab.MAX_HOSTS:
        raise BadInput(f"bad host name {name!r}: host1 ... host{lab.MAX_HOSTS}")
    return int(name[4:])


class Engine(Probing, Capturing, Comparing):
    """The engine: hosts, the lab, scenarios, containers and QoS here; ping, iperf,
    pingall and the doctor in Probing (workbench.probing); capture, flows, traces
    and rates in Capturing (workbench.capturing); compare in Comparing (workbench.comparing)."""

    def __init__(
        self,
        mode: str = "lab",
        *,
        hosts: int | None = None,
        tunrc_dir: str | Path | None = None,
        mtu: int | None = None,
        real_host: str = "host1",
        ovs_db: str | None = None,
        scenarios: dict[str, Scenario] | None = None,
    ) -> None:
        if mode not in ("lab", "real"):
            raise BadInput(f"unknown mode {mode!r} (lab or real)")
        self.mode = mode
        self.count = hosts
        self.tunrc_dir = str(tunrc_dir) if tunrc_dir else None
        self.mtu = mtu
        self.real_host = real_host
        self.ovs_db = ovs_db or SYSTEM_OVS_DB
        # which scenario is applied, and its extra containers: per mode
        self.active_path = ACTIVE if mode == "lab" else RUN_DIR / f"active-real-{real_host}.json"
        self._scenarios = scenarios
        #: told who holds the lab's lock when a command has to wait for it
        self.on_wait: Callable[[str], None] | None = None

    # --- hosts and lab ------------------------------------------------------
    @property
    def scenarios(self) -> dict[str, Scenario]:
        if self._scenarios is None:
            self._scenarios = discover_scenarios()
        return self._scenarios

    def hosts(self) -> list[Host]:
        if self.mode == "lab":
            return lab.lab_hosts(self.count)
        index = real_host_index(self.real_host)
        return [
            Host(
                name=self.real_host,
                index=index,
                underlay_ip=lab.underlay_ip(index),
                place=Place.root(),
                ovs_db=self.ovs_db,
                real=True,
                # the kernel datapath where the machine has the module (the seed's VMs)
                datapath="system" if os.path.isdir("/sys/module/openvswitch") else "netdev",
            )
        ]

    def lab_up(self, progress: Callable[[str], None] = print, topology: str | None = None) -> str:
        """Build the lab, or repair it in place (see lab_repair); what to print."""
        return self.lab_repair(progress, topology).text()

    def lab_repair(
        self,
        progress: Callable[[str], None] = print,
        topology: str | None = None,
        on_event: Listener | None = None,
    ) -> LabReport:
        """`lab up`: a lab that is down is built; one that is not healthy is repaired in
        place, one line per repair through `progress` (see workbench.labup); the
        host count and topology are the lab's own unless given.

        Then the applied scenario's steps are read again. After a repair, the steps
        the fault broke below the last step that still holds are applied again (a
        step-by-step walk is never taken further than it was); whatever is still
        pending after that is in the report's `scenario`, for `scenario apply`."""
        if self.mode != "lab":
            raise BadInput("`lab` commands are for lab mode; drop --real")

        def after(report: LabReport) -> LabReport:
            return self._recheck_scenario(report, progress, on_event)

        return labup.up(self.count, progress, topology, on_wait=self.on_wait or progress, after=after)

    def lab_faults(self) -> list[Fault]:
        """What `lab up` would repair now, and how (none: healthy, down, or real mode)."""
        if self.mode != "lab" or lab.health(self.count).down:
            return []
        return labup.diagnose(self.count)

    def _recheck_scenario(
        self, report: LabReport, progress: Callable[[str], None], on_event: Listener | None
    ) -> LabReport:
        active = self.active()
        if active is None:
            return report
        plan = self.plan(active.scenario)
        with self.context() as ctx:
            check = recheck_scenario(plan, ctx, bool(report.repairs), progress, on_event or _noop)
        return replace(report, scenario=check)

    def lab_down(self, progress: Callable[[str], None] = print) -> list[str]:
        from .impair import procs

        for pid in procs.marked():  # delay lines and flappers die with their links anyway
            procs.stop_pid(pid)
        removed = lab.down(progress)
        Active.clear(self.active_path)
        return removed

    def lab_status(self) -> str:
        if self.mode == "lab":
            return lab.health(self.count).describe()
        return f"real mode: this machine is {self.real_host}"

    def require_lab(self) -> None:
        if os.geteuid() != 0:
            raise NotReady("containet needs root (network namespaces, OVS): run it with sudo")
        if self.mode == "lab":
            state = lab.health(self.count)
            if not state.up:
                raise NotReady(f"{state.describe()}: run `containet lab up` first")
        else:
            sock = self.ovs_db.removeprefix("unix:")
            if self.ovs_db.startswith("unix:") and not os.path.exists(sock):
                raise NotReady(
                    f"Open vSwitch is not running here ({sock} missing): "
                    "start it (systemctl start openvswitch-switch) and retry"
                )

    def snapshot(self, peers: list[str] | None = None) -> Snapshot:
        """The inventory; in real mode `peers` ('host2=tcp:10.0.0.4:6640') adds the
        OVS side of other hosts that share their database (see workbench.peer)."""
        snap = self._with_repairs(collect_snapshot(self.hosts(), self.mode, self.lab_status()))
        if not peers:
            return snap
        from dataclasses import replace as dc_replace

        from . import peer

        views = tuple(peer.peer_view(*peer.parse_peer(p)) for p in peers)
        errors = tuple(f"{v.name}: {v.error}" for v in views if not v.reachable)
        return dc_replace(snap, hosts=snap.hosts + views, errors=snap.errors + errors)

    def topology(self) -> Topology:
        """The graph of what exists, discovered from live facts (see workbench.topology)."""
        from .topology.discover import discover

        return discover(self.hosts())

    def share(self, listen: str | None) -> str:
        """Real mode: share (listen=IP) or stop sharing (None) this host's OVSDB."""
        from . import peer

        if self.mode != "real":
            raise BadInput("share is for real mode (--real): lab hosts see each other already")
        self.require_lab()
        host = self.hosts()[0]
        if listen is None:
            gone = peer.unshare(host)
            return f"stopped sharing ({', '.join(gone)})" if gone else "nothing was shared"
        return f"sharing this host's OVS database read-only at {peer.share(host, listen)}"

    # --- scenarios ----------------------------------------------------------
    def scenario(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise BadInput(f"unknown scenario {name!r} (have: {', '.join(self.scenarios)})") from None

    def active(self) -> Active | None:
        return Active.load(self.active_path)

    def setup(self, name: str, extra: tuple[actions.ContainerSpec, ...] | None = None) -> Setup:
        hosts = tuple(self.hosts())
        active = Active.load(self.active_path)
        tdir = self.tunrc_dir or (active.tunrc_dir if active else None)
        if tdir is None and self.mode == "real" and (ETC / f"{hosts[0].name}_tunrc").exists():
            tdir = str(ETC)
        tunrc = load_tunrc(hosts, tdir)
        subnet = tunrc[hosts[0].name].subnet
        if extra is None:
            extra = active.extra if active and active.scenario == name else ()
        mtu = self.mtu or (active.mtu if active and active.scenario == name else None)
        if self.mode == "lab":
            peers = {h.name: h.underlay_ip for h in hosts}
            total, topology = len(hosts), lab.saved_topology()
        else:
            peers, total, topology = {}, max(self.count or 2, hosts[0].index), "mesh"
        return Setup(
            hosts=hosts,
            tunrc=tunrc,
            containers=default_containers(hosts, subnet, vlans=self._numbers_vlans(name), total=total),
            mtu=mtu,
            extra=extra,
            topology=topology,
            peers=peers,
        )

    def _numbers_vlans(self, name: str) -> bool:
        """exp3, and a scenario that says so (VLANS = True), give containers VLANs 10 / 20."""
        return name == "exp3" or bool(getattr(self.scenarios.get(name), "VLANS", False))

    def plan(self, name: str, setup: Setup | None = None) -> Plan:
        return self.scenario(name).plan(setup or self.setup(name))

    def context(self) -> Context:
        return Context(self.hosts(), containet=self._doctor_hooks())

    def _switching(self, name: str) -> None:
        active = Active.load(self.active_path)
        if active and active.scenario != name:
            raise BadInput(
                f"scenario {active.scenario} is applied: `containet scenario undo {active.scenario}` first"
            )

    def _taking_back(self, name: str) -> None:
        """Undo and back act on the applied scenario only: another scenario's plan
        shares its bridges, tunnels and containers, and would tear them down."""
        active = Active.load(self.active_path)
        if active and active.scenario != name:
            raise BadInput(
                f"scenario {active.scenario} is applied, not {name}: "
                f"`containet scenario undo {active.scenario}` takes it back"
            )

    def _remember(self, name: str, setup: Setup) -> None:
        before = Active.load(self.active_path)
        tunrc_dir = self.tunrc_dir or (before.tunrc_dir if before else None)
        Active(name, setup.extra, setup.mtu, tunrc_dir).save(self.active_path)

    def _require_docker(self) -> None:
        """Every scenario runs containers: refuse before the first step, not after it."""
        dk.client(timeout=10).close()

    def locked(self) -> AbstractContextManager[None]:
        """The lab's lock: one command that changes the lab at a time (CLI and TUI alike);
        a second one says who holds it through `on_wait`, then waits."""
        return lab.locked(on_wait=self.on_wait)

    def apply(self, name: str, on_event: Listener | None = None) -> int:
        self.require_lab()
        self._require_docker()
        with self.locked():  # checked under the lock: two applies at once cannot mix
            self._switching(name)
            setup = self.setup(name)
            plan = self.plan(name, setup)
            return self._apply_locked(name, setup, plan, on_event)

    def _apply_locked(self, name: str, setup: Setup, plan: Plan, on_event: Listener | None) -> int:
        with self.context() as ctx:
            self._remember(name, setup)
            try:
                return plan.apply(ctx, on_event or _noop)
            except Exception:
                if not any(plan.status(ctx)):
                    Active.clear(self.active_path)
                raise

    def next_step(self, name: str, on_event: Listener | None = None) -> int | None:
        self.require_lab()
        self._require_docker()
        with self.locked(), self.context() as ctx:
            self._switching(name)
            setup = self.setup(name)
            plan = self.plan(name, setup)
            self._remember(name, setup)
            return plan.next(ctx, on_event or _noop)

    def back_step(self, name: str, on_event: Listener | None = None) -> int | None:
        self.require_lab()
        plan = self.plan(name)
        with self.locked(), self.context() as ctx:
            self._taking_back(name)
            index = plan.back(ctx, on_event or _noop)
            if not any(plan.status(ctx)):
                Active.clear(self.active_path)
            return index

    def undo(self, name: str, on_event: Listener | None = None) -> int:
        self.require_lab()
        plan = self.plan(name)
        with self.locked(), self.context() as ctx:
            self._taking_back(name)
            from .impair.ops import revert_all

            revert_all(ctx)  # injected faults and impairments first: the steps find what they made
            count = plan.undo(ctx, on_event or _noop)
        active = Active.load(self.active_path)
        if active and active.scenario == name:
            Active.clear(self.active_path)
        return count

    def status(self, name: str) -> list[bool]:
        plan = self.plan(name)
        with self.context() as ctx:
            return plan.status(ctx)

    def export(self, name: str, fmt: str = "bash", plain: bool = False) -> str:
        plan = self.plan(name)
        hosts = {h.name: h for h in self.hosts()}
        render = actions.render_plain if plain else actions.render
        if fmt == "json":
            return plan.to_json(render, hosts)
        if fmt == "bash":
            return plan.to_bash(render, hosts)
        raise BadInput(f"unknown export format {fmt!r} (bash or json)")

    # --- containers -----------------------------------------------------------
    def container_add(
        self,
        host: str,
        name: str,
        cidr: str,
        vlan: int | None = None,
        on_event: Listener | None = None,
        count: int = 1,
    ) -> str:
        """Run and wire a container like the applied scenario's own; `count` > 1 adds
        NAME1..NAMEn on consecutive addresses from `cidr`'s, in one plan run (their
        `docker run`s in parallel)."""
        if not 1 <= count <= 200:
            raise BadInput(f"bad count {count}: use 1 to 200")
        names = [name] if count == 1 else [f"{name}{k}" for k in range(1, count + 1)]
        for each in names:
            check_container_name(each)
        if vlan is not None and not 1 <= vlan <= 4094:
            raise BadInput(f"VLAN {vlan} is out of range (1-4094)")
        active = Active.load(self.active_path)
        if active is None:
            raise BadInput("no scenario is applied: `containet scenario apply exp1` (or exp2, exp3) first")
        if host not in {h.name for h in self.hosts()}:
            raise BadInput(f"unknown host {host!r} (have: {', '.join(h.name for h in self.hosts())})")
        if vlan is not None and active.scenario != "exp3":
            raise BadInput(f"--vlan needs the exp3 scenario (applied: {active.scenario})")
        setup = self.setup(active.scenario)
        tag = vlan if vlan is not None else (10 if active.scenario == "exp3" else None)
        first, prefix = actions.split_cidr(cidr)
        specs = [
            actions.ContainerSpec(each, host, f"{first + k}/{prefix}", tag) for k, each in enumerate(names)
        ]
        taken = {c.ip: c.name for c in setup.all_containers}
        taken.update({rc.bridge_ip: f"{h}'s bridge" for h, rc in setup.tunrc.items()})
        for spec in specs:
            if any(c.name == spec.name for c in setup.all_containers):
                raise BadInput(f"container {spec.name} already exists")
            actions.check_spec(spec, setup.tunrc[host].subnet, taken)
            taken[spec.ip] = spec.name
        self.require_lab()
        cli = dk.client()
        try:
            for spec in specs:
                if dk.find(cli, spec.name) is not None:
                    raise BadInput(f"container {spec.name} already exists")
        finally:
            cli.close()
        new = replace(setup, extra=setup.extra + tuple(specs))
        plan = self.plan(active.scenario, new)
        with self.locked(), self.context() as ctx:
            plan.apply(ctx, on_event or _noop)
            self._remember(active.scenario, new)
        where = f" on {host}" + (f" VLAN {tag}" if tag else "")
        if count == 1:
            return f"{name} {specs[0].cidr}{where}"
        return f"{names[0]}..{names[-1]} {specs[0].ip}-{specs[-1].ip}/{prefix}{where}"

    def container_rm(self, name: str, on_event: Listener | None = None) -> str:
        active = Active.load(self.active_path)
        setup = self.setup(active.scenario) if active else None
        spec = next((c for c in setup.extra if c.name == name), None) if setup else None
        if spec is None:
            if setup and any(c.name == name for c in setup.containers):
                raise BadInput(
                    f"{name} belongs to scenario {active.scenario if active else ''}: "
                    "undo the scenario to remove it"
                )
            raise BadInput(f"unknown container {name!r} (see `containet status`)")
        self.require_lab()
        assert active is not None and setup is not None
        plan = self.plan(active.scenario, setup)
        steps = [s for s in plan.steps if s.subject == name]
        with self.locked(), self.context() as ctx:
            for step in reversed(steps):
                step.undo(ctx)
                if on_event:
                    on_event(StepEvent(plan.steps.index(step), step, StepState.UNDONE))
            self._remember(
                active.scenario, replace(setup, extra=tuple(c for c in setup.extra if c.name != name))
            )
        return f"removed {name}"

    def resolve(self, who: str, snap: Snapshot | None = None) -> Any:
        """A container by name or IP, from a fresh snapshot."""
        snap = snap or self.snapshot()
        found = snap.container(who)
        if found is None:
            names = ", ".join(c.name for c in snap.containers) or "none"
            raise BadInput(f"unknown container {who!r} (have: {names})")
        return found

    # --- qos ------------------------------------------------------------------
    def _qos_target(self, who: str) -> tuple[Any, Any]:
        from . import qos
        from .ovs import Ovs

        self.require_lab()
        c = self.resolve(who)
        host = next((h for h in self.hosts() if h.name == c.host), None)
        if host is None or not c.pid or c.host_veth is None:
            raise BadInput(f"container {c.name} is not wired to a host: apply a scenario first")
        hv = self.snapshot().host(c.host)
        on_ovs = hv is not None and any(b.name == c.attached_to for b in hv.ovs_bridges)
        return qos.Target(c.name, host, c.pid, on_ovs), (Ovs(host.ovs_db) if on_ovs else None)

    def qos_set(self, who: str, rate_mbit: float, burst_kb: float | None = None) -> Any:
        """Cap a container at rate_mbit both ways; returns the QosState in force."""
        from . import qos

        burst = qos.check(rate_mbit, burst_kb)  # bad input: nothing is touched
        target, ovs = self._qos_target(who)
        try:
            with self.locked():
                qos.apply(target, ovs, rate_mbit, burst)
                return qos.read(target, ovs)
        finally:
            if ovs is not None:
                ovs.close()

    def qos_clear(self, who: str) -> Any:
        from . import qos

        target, ovs = self._qos_target(who)
        try:
            with self.locked():
                qos.clear(target, ovs)
                return qos.read(target, ovs)
        finally:
            if ovs is not None:
                ovs.close()

    def qos_show(self) -> list[Any]:
        from . import qos

        out = []
        for c in self.snapshot().containers:
            if c.host_veth is None or not c.pid:
                continue
            target, ovs = self._qos_target(c.name)
            try:
                out.append(qos.read(target, ovs))
            finally:
                if ovs is not None:
                    ovs.close()
        return out

    # --- impairments, link state, faults (workbench.impair, workbench.faults) ----------------
    def netem_set(self, target: str, **changes: float | None) -> ImpairState:
        from .impair import ops

        return ops.netem_set(self, target, changes)

    def netem_clear(self, target: str | None = None) -> list[str]:
        from .impair import ops

        return ops.netem_clear(self, target)

    def netem_show(self) -> tuple[str, list[ImpairState]]:
        from .impair import ops

        return ops.netem_show(self)

    def link_state(self, target: str, action: str, period: float = 1.0, count: int = 0) -> str:
        from .impair import ops

        return ops.link_state(self, target, action, period, count)

    def fault_catalogue(self) -> list[FaultDef]:
        from .faults import ops as fops

        return fops.catalogue()

    def fault_inject(self, name: str | None, on: str | None = None, hidden: bool = False) -> str:
        from .faults import ops as fops

        return fops.inject(self, name, on, hidden)

    def fault_revert(self, name: str | None = None) -> list[str]:
        from .faults import ops as fops

        return fops.revert(self, name)

    def fault_reveal(self) -> str:
        from .faults import ops as fops

        return fops.reveal()

    def faults_active(self) -> list[str]:
        from .faults import ops as fops

        return fops.active()

    # --- tui support ---
    def watch(
        self,
        on_change: Callable[[Any], None],
        on_state: Callable[[Any], None] | None = None,
    ) -> Any:
        """Live event sources for this engine's hosts (not started): see inventory.watch."""
        from .inventory.watch import Watcher

        return Watcher(self.hosts(), on_change, on_state)

    def refresh(self, snap: Snapshot, what: Any) -> Snapshot:
        """Re-read only the hosts / containers `what` (an inventory.watch.Dirty) names."""
        from .inventory.watch import recollect

        return self._with_repairs(recollect(snap, what, self.hosts(), lab_line=self.lab_status()))

    def _with_repairs(self, snap: Snapshot) -> Snapshot:
        """A half-built lab's snapshot names what `lab up` will repair (the TUI's banner)."""
        if not snap.lab.startswith("lab is half-built"):
            return replace(snap, lab_repairs=()) if snap.lab_repairs else snap
        return replace(snap, lab_repairs=tuple(str(f) for f in self.lab_faults()))


def _quiet(_msg: str) -> None:
    pass


def _noop(_event: StepEvent) -> None:
    pass


def _conforms(engine: Engine) -> EngineAPI:
    """mypy checks here that Engine implements the API the front ends are typed with."""
    return engine
