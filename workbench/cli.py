"""`containet`: the headless twin of the TUI. Argument parsing and printing only;
all the work is in `workbench.engine`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__, cleanup
from .engine import Engine
from .errors import WorkbenchError
from .inventory.model import Snapshot
from .steps import StepEvent


def _print_event(ev: StepEvent) -> None:
    marks = {"applied": "ok", "skipped": "--", "failed": "!!", "undone": "<-", "rolled-back": "<-"}
    if ev.state in marks:
        extra = f" ({ev.message})" if ev.message else ""
        secs = f" {ev.seconds * 1000:.0f} ms" if ev.seconds else ""
        where = ev.step.host or "docker"
        print(f"  [{marks[ev.state]}] {ev.index + 1:2}. {where}: {ev.step.title}{secs}{extra}")


def _print_changes(ev: StepEvent) -> None:
    if ev.state != "skipped":
        _print_event(ev)


def render_status(snap: Snapshot) -> str:
    out = [f"{snap.lab} ({snap.mode} mode)"]
    for h in snap.hosts:
        state = "" if h.reachable else " UNREACHABLE"
        ovs = "" if h.ovs_connected else " (OVS disconnected)"
        out.append(f"{h.name}  underlay {h.underlay_ip}{state}{ovs}")
        for br in h.linux_bridges:
            addr = ",".join(br.addresses) or "-"
            out.append(
                f"  linux bridge {br.name} {addr} mtu {br.mtu} {br.state}  ports: {' '.join(br.ports) or '-'}"
            )
        for obr in h.ovs_bridges:
            out.append(f"  ovs bridge {obr.name} ({obr.datapath_type or 'system'})")
            for p in obr.ports:
                bits = [p.type or "system"]
                if p.tag is not None:
                    bits.append(f"tag={p.tag}")
                bits += [f"{k}={v}" for k, v in p.options]
                out.append(f"    port {p.name:14} {' '.join(bits)}  rx {p.rx_packets} tx {p.tx_packets}")
        for c in snap.containers_on(h.name):
            where = c.attached_to or "not attached"
            vlan = f" vlan {c.vlan}" if c.vlan is not None else ""
            out.append(
                f"  container {c.name:8} {c.ip or '-':15} mtu {c.mtu or '-'} via {c.host_veth or '-'} "
                f"on {where}{vlan}  pid {c.pid} {c.status}"
            )
        if h.error:
            out.append(f"  ! {h.error}")
    stray = [c for c in snap.containers if c.host not in {h.name for h in snap.hosts}]
    for c in stray:
        out.append(f"container {c.name} on unknown host {c.host!r}")
    if not snap.docker_connected:
        out.append("docker: disconnected")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="containet", description="Container networking workbench (headless).")
    p.add_argument("--version", action="version", version=f"containet {__version__}")
    p.add_argument("--real", action="store_true", help="use this machine's OVS and docker (the seed's VMs)")
    p.add_argument("--host", default="host1", help="in real mode: which host this machine is")
    p.add_argument("--tunrc-dir", help="directory with <host>_tunrc files (default: the seed's)")
    p.add_argument("--mtu", type=int, help="container MTU (default: fit the tunnel)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    lab = sub.add_parser("lab", help="the emulated two-host lab").add_subparsers(dest="action", required=True)
    up = lab.add_parser("up", help="build the lab (hosts as namespaces, OVS each)")
    up.add_argument("--hosts", type=int, default=2, help="number of emulated hosts (default 2)")
    lab.add_parser("down", help="remove the lab and its containers")
    lab.add_parser("status", help="is the lab up?")

    st = sub.add_parser("status", help="inventory of hosts, bridges, ports, tunnels, containers")
    st.add_argument("--json", action="store_true")

    cl = sub.add_parser("clean", help="remove everything carrying containet's mark")
    cl.add_argument("--dry-run", action="store_true", help="only list what would be removed")

    sc = sub.add_parser("scenario", help="the experiments, step by step").add_subparsers(
        dest="action", required=True
    )
    sc.add_parser("list", help="the scenarios")
    for name, text in (
        ("show", "steps with their state, why and shell equivalent"),
        ("apply", "apply all pending steps"),
        ("next", "apply the next pending step"),
        ("back", "undo the last applied step"),
        ("undo", "undo every step"),
    ):
        sp = sc.add_parser(name, help=text)
        sp.add_argument("name")
    ex = sc.add_parser("export", help="the plan as a bash script or JSON")
    ex.add_argument("name")
    ex.add_argument("--format", choices=("bash", "json"), default="bash")
    ex.add_argument(
        "--plain", action="store_true", help="commands as typed on the host itself (no lab namespaces)"
    )

    ct = sub.add_parser("container", help="attach or detach more containers").add_subparsers(
        dest="action", required=True
    )
    ca = ct.add_parser("add", help="run a container and wire it like the active scenario's")
    ca.add_argument("host")
    ca.add_argument("name")
    ca.add_argument("cidr", metavar="IP/PREFIX")
    ca.add_argument("--vlan", type=int)
    cr = ct.add_parser("rm", help="remove a container added with `container add`")
    cr.add_argument("name")
    ct.add_parser("list", help="containers with host, IP and attachment")
    return p


def run(args: argparse.Namespace) -> int:
    engine = Engine(
        "real" if args.real else "lab",
        hosts=getattr(args, "hosts", None),
        tunrc_dir=args.tunrc_dir,
        mtu=args.mtu,
        real_host=args.host,
    )
    if args.cmd == "lab":
        if args.real:
            raise WorkbenchError("`lab` commands are for lab mode; drop --real")
        if args.action == "up":
            print(engine.lab_up(progress=lambda m: print(f"  {m}")))
        elif args.action == "down":
            removed = engine.lab_down(progress=lambda m: print(f"  removed {m}"))
            print("lab is down" + ("" if removed else " (nothing to remove)"))
        else:
            print(engine.lab_status())
    elif args.cmd == "status":
        snap = engine.snapshot()
        print(json.dumps(snap.to_dict(), indent=2) if args.json else render_status(snap))
    elif args.cmd == "clean":
        items = cleanup.clean(dry_run=args.dry_run, progress=lambda m: print(f"  {m}"))
        if not items:
            print("nothing carries containet's mark: clean")
    elif args.cmd == "scenario":
        return _scenario(engine, args)
    elif args.cmd == "container":
        return _container(engine, args)
    return 0


def _scenario(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "list":
        active = engine.active()
        for name, mod in engine.scenarios.items():
            flag = "*" if active and active.scenario == name else " "
            print(f"{flag} {name:6} {mod.TITLE}: {mod.SUMMARY}")
        return 0
    name = args.name
    if args.action == "show":
        engine.scenario(name)
        plan = engine.plan(name)
        state = engine.status(name) if engine.snapshot().hosts[0].reachable else [False] * len(plan.steps)
        hosts = {h.name: h for h in engine.hosts()}
        from .actions import render

        print(f"{plan.title}: {plan.summary}")
        for i, (step, ok) in enumerate(zip(plan.steps, state, strict=True), start=1):
            print(f"{i:2}. [{'x' if ok else ' '}] {step.host or 'docker'}: {step.title}")
            print(f"      why: {step.why}")
            for c in step.commands:
                print(f"      $ {render(hosts[step.host], c) if step.host in hosts else c.text}")
        return 0
    if args.action == "export":
        print(engine.export(name, args.format, plain=args.plain))
        return 0
    engine.scenario(name)
    if args.action == "apply":
        n = engine.apply(name, on_event=_print_event)
        print(f"{name}: applied {n} step(s)" if n else f"{name}: already applied, nothing changed")
    elif args.action == "next":
        at = engine.next_step(name, on_event=_print_event)
        print(f"{name}: all steps applied" if at is None else f"{name}: applied step {at + 1}")
    elif args.action == "back":
        at = engine.back_step(name, on_event=_print_event)
        print(f"{name}: nothing to undo" if at is None else f"{name}: undid step {at + 1}")
    elif args.action == "undo":
        n = engine.undo(name, on_event=_print_event)
        print(f"{name}: undid {n} step(s)" if n else f"{name}: nothing was applied")
    return 0


def _container(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "add":
        print(engine.container_add(args.host, args.name, args.cidr, args.vlan, on_event=_print_changes))
    elif args.action == "rm":
        print(engine.container_rm(args.name))
    else:
        snap = engine.snapshot()
        for c in snap.containers:
            vlan = f" vlan {c.vlan}" if c.vlan is not None else ""
            print(f"{c.name:10} {c.host:6} {c.ip or '-':15} {c.attached_to or '-'}{vlan} {c.status}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except WorkbenchError as exc:
        print(f"containet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("containet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
