"""`containet`: the headless twin of the TUI. Argument parsing and printing only;
all the work is in `workbench.engine`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, cleanup, exits
from .engine import Engine
from .errors import BadInput, WorkbenchError
from .impair import cli as impair_cli
from .inventory.model import Container, OvnView, Snapshot
from .steps import StepEvent

_shown_progress: dict[int, str] = {}  # step index -> the last progress line printed


def _print_event(ev: StepEvent) -> None:
    """One line per finished step; a step that waits (spanning tree) also prints its
    progress: rewritten in place on a terminal, a new line when it changes otherwise."""
    marks = {"applied": "ok", "skipped": "--", "failed": "!!", "undone": "<-", "rolled-back": "<-"}
    where = ev.step.where
    tty = sys.stdout.isatty()
    if ev.state == "running" and ev.message:
        line = f"  [..] {ev.index + 1:2}. {where}: {ev.message} ({ev.seconds:.1f} s)"
        if tty:  # one screen line, rewritten: cut to the terminal's width
            width = shutil.get_terminal_size().columns - 1
            print(f"\r\033[K{line[:width]}", end="", flush=True)
        elif _shown_progress.get(ev.index) != ev.message:
            print(line, flush=True)
        _shown_progress[ev.index] = ev.message
    if ev.state in marks:
        if tty and _shown_progress.pop(ev.index, None) is not None:
            print("\r\033[K", end="")
        extra = f" ({ev.message})" if ev.message else ""
        secs = f" {ev.seconds * 1000:.0f} ms" if ev.seconds else ""
        print(f"  [{marks[ev.state]}] {ev.index + 1:2}. {where}: {ev.step.title}{secs}{extra}")


def _print_changes(ev: StepEvent) -> None:
    if ev.state != "skipped":
        _print_event(ev)


def _container_line(c: Container) -> str:
    if c.attached_to:
        where = f"on {c.attach_kind or 'bridge'} {c.attached_to}"
        if c.reaches and c.reaches != c.attached_to:
            where += f" -> ovs {c.reaches}"
    elif c.host:
        where = "not attached"
    elif c.ours and c.status != "running":
        where = f"stopped (started for {c.meant_for}): `scenario apply` runs and wires it again"
    elif c.ours and not any(i.name != "lo" for i in c.interfaces):
        where = f"restarted, or not wired yet: its namespace is new and empty (started for {c.meant_for})"
    else:
        where = "no network into a host" + (f" (started for {c.meant_for})" if c.meant_for else "")
    vlan = f" vlan {c.vlan}" if c.vlan is not None else ""
    vlan += f" cap {c.cap_mbit:g} Mbit/s" if c.cap_mbit else ""
    vlan += f" [{c.impaired}]" if c.impaired else ""
    mark = "" if c.ours else "  (not containet's)"
    return (
        f"container {c.name:8} {c.ip or '-':15} mtu {c.mtu or '-'} via {c.host_veth or '-'} "
        f"{where}{vlan}  pid {c.pid} {c.status}{mark}"
    )


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
        for kt in h.kernel_tunnels:
            where = f" in {kt.bridge}" if kt.bridge else ""
            mark = "" if kt.ours else "  (not containet's)"
            out.append(f"  kernel {kt.type} {kt.name} {kt.describe()} {kt.state}{where}{mark}")
        for obr in h.ovs_bridges:
            out.append(f"  ovs bridge {obr.name} ({obr.datapath_type or 'system'})")
            for p in obr.ports:
                bits = [p.type or "system"]
                if p.tag is not None:
                    bits.append(f"tag={p.tag}")
                if p.qos_mbit:
                    bits.append(f"qos=linux-htb {p.qos_mbit:g}Mbit/s")
                bits += [f"{k}={v}" for k, v in p.options]
                bits += [f"[{p.impaired}]"] if p.impaired else []
                out.append(f"    port {p.name:14} {' '.join(bits)}  rx {p.rx_packets} tx {p.tx_packets}")
        for c in snap.shown_on(h.name):
            out.append(f"  {_container_line(c)}")
        if h.error:
            out.append(f"  ! {h.error}")
    names = {h.name for h in snap.hosts}
    for c in snap.unplaced():
        if c.meant_for not in names:
            out.append(f"{_container_line(c)}  (on none of the lab's hosts)")
    if snap.ovn is not None:
        out += _ovn_lines(snap.ovn)
    if not snap.docker_connected:
        out.append("docker: disconnected")
    return "\n".join(out)


def _ovn_lines(ovn: OvnView) -> list[str]:
    """The OVN section of `status`: central, logical switches and ports, chassis."""
    out = [f"ovn  central {ovn.central}, ovn-northd {'running' if ovn.northd else 'NOT RUNNING'}"]
    if ovn.error:
        return out + [f"  ! {ovn.error}"]
    for ls in ovn.switches:
        out.append(f"  logical switch {ls.name}")
        for p in ls.ports:
            where = f"bound on {p.chassis}" if p.chassis else "not bound"
            out.append(
                f"    port {p.name:10} {' '.join(p.addresses) or '-':32} {'up' if p.up else 'DOWN'}  {where}"
            )
    for ch in ovn.chassis:
        state = {True: "ovn-controller running", False: "ovn-controller NOT RUNNING", None: ""}[ch.controller]
        if ch.crashes:
            state += f" (monitor: {ch.crashes})"
        out.append(
            f"  chassis {ch.name:8} {ch.encap} {ch.encap_ip}  {state}  "
            f"ports: {' '.join(ch.ports) or '-'}  tunnels to: {' '.join(ch.tunnels) or '-'}"
        )
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="containet", description="Container networking workbench (headless).")
    p.add_argument("--version", action="version", version=f"containet {__version__}")
    p.add_argument("--real", action="store_true", help="use this machine's OVS and docker (the seed's VMs)")
    p.add_argument("--host", default="host1", help="in real mode: which host this machine is")
    p.add_argument(
        "--ovs-db", help="in real mode: the OVSDB to use (default unix:/var/run/openvswitch/db.sock)"
    )
    p.add_argument("--tunrc-dir", help="directory with <host>_tunrc files (default: the seed's)")
    p.add_argument("--mtu", type=int, help="container MTU (default: fit the tunnel)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    lab = sub.add_parser("lab", help="the emulated two-host lab").add_subparsers(dest="action", required=True)
    up = lab.add_parser("up", help="build the lab, or repair what is broken in it (nothing healthy)")
    up.add_argument(
        "--hosts", type=int, help="number of emulated hosts, 1-8 (default: the lab's own, 2 for a new one)"
    )
    up.add_argument(
        "--ovs-io",
        choices=("packet", "afxdp"),
        help="how OVS opens the data ports (eth1, the containers' veths): AF_PACKET sockets, or "
        "AF_XDP (about twice the tunnel's throughput; tcpdump on those devices then sees nothing, "
        "containet capture goes through a mirror). Changed in place; default: the lab's own, packet",
    )
    up.add_argument(
        "--topology",
        choices=("mesh", "star"),
        help="tunnels with more than two hosts: every pair (RSTP breaks the loops) or all via host1 "
        "(default: the lab's own, mesh for a new one)",
    )
    lab.add_parser("down", help="remove the lab and its containers")
    lab.add_parser("status", help="is the lab up?")

    st = sub.add_parser("status", help="inventory of hosts, bridges, ports, tunnels, containers")
    st.add_argument("--json", action="store_true")
    st.add_argument("--rates", action="store_true", help="also each port's bits/s, packets/s, drops (1 s)")
    st.add_argument(
        "--peer",
        action="append",
        metavar="NAME=tcp:IP:PORT",
        help="real mode: also show a peer host's OVS side (it must `share` its database)",
    )
    sh = sub.add_parser(
        "share",
        help="real mode: let the peer read this host's OVS database, never write it "
        "(a read-only replica; read it with status --peer)",
    )
    sh.add_argument("--listen", metavar="IP", help="this host's address on the private network")
    sh.add_argument("--stop", action="store_true", help="stop sharing (stop the replica)")

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

    qp = sub.add_parser("qos", help="cap a container's bandwidth")
    qs = qp.add_subparsers(dest="action", required=True)
    qset = qs.add_parser("set", help="cap a container both ways")
    qset.add_argument("container")
    qset.add_argument("--rate", type=float, required=True, metavar="MBIT", help="Mbit/s")
    qset.add_argument(
        "--burst", type=float, metavar="KB", help="bucket in KB (default: 20 ms at the rate, at least 32)"
    )
    qclr = qs.add_parser("clear", help="remove a container's cap")
    qclr.add_argument("container")
    qs.add_parser("show", help="caps in force and what enforces them")

    ct = sub.add_parser("container", help="attach or detach more containers").add_subparsers(
        dest="action", required=True
    )
    ca = ct.add_parser("add", help="run a container and wire it like the active scenario's")
    ca.add_argument("host")
    ca.add_argument("name")
    ca.add_argument("cidr", metavar="IP/PREFIX")
    ca.add_argument("--vlan", type=int)
    ca.add_argument(
        "--count", type=int, default=1, help="add NAME1..NAMEn on consecutive addresses from IP (one run)"
    )
    cr = ct.add_parser("rm", help="remove a container added with `container add`")
    cr.add_argument("name")
    ct.add_parser("list", help="containers with host, IP and attachment")
    _measure_parsers(sub)
    _doctor_parsers(sub)
    impair_cli.add_parsers(sub)
    from .capture.cli import add_parsers

    add_parsers(sub)
    return p


def _doctor_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dr = sub.add_parser("doctor", help="why two containers cannot talk: every hop, its evidence and the fix")
    dr.add_argument("src", help="container name or IP")
    dr.add_argument("dst", help="container name or IP")
    dr.add_argument("--fix", action="store_true", help="apply the first failing hop's fix, then check again")
    dr.add_argument("--json", action="store_true")
    mt = sub.add_parser("mtu", help="path MTU by don't-fragment pings, against the interface MTUs")
    mt.add_argument("src", help="container name or IP")
    mt.add_argument("dst", help="container name or IP")
    mt.add_argument(
        "--fix", action="store_true", help="set both containers and their host sides to fit the tunnel"
    )
    mt.add_argument("--json", action="store_true")


def _measure_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pg = sub.add_parser("ping", help="ping from inside a container (icmplib)")
    pg.add_argument("src", help="container name or IP")
    pg.add_argument("dst", help="container name or IP")
    pg.add_argument("-c", "--count", type=int, default=4)
    pg.add_argument("-i", "--interval", type=float, default=0.2, help="seconds between probes")
    pg.add_argument("--size", type=int, default=56, help="ICMP payload bytes")
    pg.add_argument("--df", action="store_true", help="set don't-fragment (find the path MTU)")
    pg.add_argument("-W", "--timeout", type=float, default=1.0, help="seconds to wait for each reply")
    pg.add_argument("--json", action="store_true")

    ip = sub.add_parser("iperf", help="throughput between two containers (iperf3 library)")
    ip.add_argument("src", help="client container (name or IP)")
    ip.add_argument("dst", help="server container (name or IP)")
    ip.add_argument("-t", "--time", type=float, default=3.0, help="seconds per run (1-60)")
    ip.add_argument("-P", "--parallel", type=int, default=1, help="parallel streams")
    ip.add_argument("-u", "--udp", action="store_true")
    ip.add_argument("-b", "--bitrate", help="target bitrate, e.g. 100M (UDP default 1M)")
    ip.add_argument("-R", "--reverse", action="store_true", help="dst sends, src receives")
    ip.add_argument("--repeat", type=int, default=1, help="runs; reports the median and spread")
    ip.add_argument("--json", action="store_true")

    cp = sub.add_parser(
        "compare",
        help="one pair over several paths (scenarios), beside the raw veth ceiling of the same run",
        description="Measures SRC -> DST (RTT and one TCP stream) over each path, and a raw veth "
        "between two throwaway namespaces as the ceiling. The applied scenario is measured where it "
        "stands; another path is applied for its turn, and the scenario applied before comes back "
        "at the end. With nothing applied and no --paths: kvxlan, exp2, vxlan.",
    )
    cp.add_argument("src", nargs="?", default="h1-a", help="client container (default h1-a)")
    cp.add_argument("dst", nargs="?", default="h2-a", help="server container (default h2-a)")
    cp.add_argument("--paths", help="comma-separated scenarios, e.g. kvxlan,exp2,vxlan")
    cp.add_argument("-t", "--time", type=float, default=3.0, help="seconds of TCP per path (1-60)")
    cp.add_argument("--json", action="store_true")

    pa = sub.add_parser("pingall", help="every container to every other, against the scenario's expectation")
    pa.add_argument("-c", "--count", type=int, default=1)
    pa.add_argument("-W", "--timeout", type=float, default=1.0)
    pa.add_argument("--workers", type=int, default=8, help="sources pinging at once")
    pa.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    engine = Engine(
        "real" if args.real else "lab",
        hosts=getattr(args, "hosts", None),
        tunrc_dir=args.tunrc_dir,
        mtu=args.mtu,
        real_host=args.host,
        ovs_db=args.ovs_db,
    )
    engine.on_wait = lambda msg: print(f"containet: {msg}", file=sys.stderr, flush=True)
    if args.cmd == "lab":
        if args.real:
            raise WorkbenchError("`lab` commands are for lab mode; drop --real")
        if args.action == "up":
            print(
                engine.lab_up(progress=lambda m: print(f"  {m}"), topology=args.topology, ovs_io=args.ovs_io)
            )
        elif args.action == "down":
            removed = engine.lab_down(progress=lambda m: print(f"  removed {m}"))
            print("lab is down" + ("" if removed else " (nothing to remove)"))
        else:
            print(engine.lab_status())
    elif args.cmd == "status":
        snap = engine.snapshot(args.peer)
        if args.rates:
            from .capture.cli import status_with_rates

            print(status_with_rates(engine, snap, args.json))
        else:
            print(json.dumps(snap.to_dict(), indent=2) if args.json else render_status(snap))
    elif args.cmd == "share":
        if not args.stop and not args.listen:
            raise BadInput("share needs --listen IP (this host's private address) or --stop")
        print(engine.share(None if args.stop else args.listen))
    elif args.cmd == "clean":
        sysovs = Path(args.ovs_db.removeprefix("unix:")) if args.ovs_db else None
        items = cleanup.clean(dry_run=args.dry_run, progress=lambda m: print(f"  {m}"), system_ovs=sysovs)
        if not items:
            print("nothing carries containet's mark: clean")
    elif args.cmd == "scenario":
        return _scenario(engine, args)
    elif args.cmd == "container":
        return _container(engine, args)
    elif args.cmd == "qos":
        if args.action == "set":
            print(engine.qos_set(args.container, args.rate, args.burst).describe())
        elif args.action == "clear":
            print(engine.qos_clear(args.container).describe())
        else:
            for state in engine.qos_show():
                print(state.describe())
    elif args.cmd in ("ping", "iperf", "pingall", "compare"):
        return _measure(engine, args)
    elif args.cmd in ("doctor", "mtu"):
        return _doctor(engine, args)
    elif args.cmd in impair_cli.COMMANDS:
        return impair_cli.run(engine, args)
    else:
        from .capture.cli import run_command

        return run_command(engine, args)
    return 0


def _doctor(engine: Engine, args: argparse.Namespace) -> int:
    from .doctor import format_mtu, format_report

    if args.cmd == "mtu":
        mtu = engine.path_mtu(args.src, args.dst, fix=args.fix)
        print(json.dumps(mtu.to_dict(), indent=2) if args.json else format_mtu(mtu))
        return 0 if mtu.ok else 1
    report = engine.doctor(args.src, args.dst)
    applied = None
    if args.fix and report.first_failure is not None and report.first_failure.fix is not None:
        if not args.json:
            print(format_report(report))
        applied = engine.doctor_fix(report.first_failure.fix)
        report = engine.doctor(args.src, args.dst)
        if not args.json:
            print(f"\n{applied}\n")
    if args.json:
        data = report.to_dict()
        data["applied"] = applied
        print(json.dumps(data, indent=2))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def _measure(engine: Engine, args: argparse.Namespace) -> int:
    """ping / iperf / pingall: live lines as they come (not with --json); Ctrl-C prints the partial result."""
    from .measure import iperf_data
    from .measure import ping as pg
    from .measure.cancel import interruptible
    from .measure.matrix import format_matrix

    quiet = args.json
    if args.cmd == "ping":
        ping, _ = interruptible(
            lambda cancel: engine.ping(
                args.src,
                args.dst,
                count=args.count,
                interval=args.interval,
                size=args.size,
                df=args.df,
                timeout=args.timeout,
                cancel=cancel,
                on_reply=None
                if quiet
                else lambda r: print(pg.format_reply(args.dst, args.size, r), flush=True),
            )
        )
        print(json.dumps(ping.to_dict(), indent=2) if quiet else pg.format_summary(ping))
        return 0 if ping.received else 1
    if args.cmd == "iperf":
        res, _ = interruptible(
            lambda cancel: engine.iperf(
                args.src,
                args.dst,
                seconds=args.time,
                parallel=args.parallel,
                udp=args.udp,
                bitrate=args.bitrate,
                reverse=args.reverse,
                repeat=args.repeat,
                cancel=cancel,
                on_interval=None if quiet else lambda iv: print(iperf_data.format_interval(iv), flush=True),
            )
        )
        print(json.dumps(res.to_dict(), indent=2) if quiet else iperf_data.format_result(res))
        return 0
    if args.cmd == "compare":
        from .measure.compare import format_compare

        paths = [p.strip() for p in args.paths.split(",") if p.strip()] if args.paths else None
        result, _ = interruptible(
            lambda cancel: engine.compare(
                args.src,
                args.dst,
                paths=paths,
                seconds=args.time,
                cancel=cancel,
                progress=(lambda m: None) if quiet else (lambda m: print(f"  {m}", flush=True)),
            )
        )
        print(json.dumps(result.to_dict(), indent=2) if quiet else format_compare(result))
        return 0 if all(p.bps for p in result.paths) else 1
    matrix, _ = interruptible(
        lambda cancel: engine.pingall(
            count=args.count, timeout=args.timeout, workers=args.workers, cancel=cancel
        )
    )
    print(json.dumps(matrix.to_dict(), indent=2) if quiet else format_matrix(matrix))
    return 0 if matrix.all_passed else 1


def _scenario(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "list":
        active = engine.active()
        width = max(6, *(len(n) for n in engine.scenarios))
        for name, mod in engine.scenarios.items():
            flag = "*" if active and active.scenario == name else " "
            print(f"{flag} {name:{width}} {mod.TITLE}: {mod.SUMMARY}")
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
            print(f"{i:2}. [{'x' if ok else ' '}] {step.where}: {step.title}")
            print(f"      why: {step.why}")
            for line in step.rendered(render, hosts):
                print(f"      $ {line}")
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
        print(
            engine.container_add(
                args.host, args.name, args.cidr, args.vlan, on_event=_print_changes, count=args.count
            )
        )
    elif args.action == "rm":
        print(engine.container_rm(args.name))
    else:
        snap = engine.snapshot()
        for c in snap.containers:
            vlan = f" vlan {c.vlan}" if c.vlan is not None else ""
            mark = "" if c.ours else "  (not containet's)"
            where = f"{c.host or '-':6} {c.ip or '-':15} {c.attached_to or '-'}"
            print(f"{c.name:10} {where}{vlan} {c.status}{mark}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """SIGTERM, SIGHUP and a closed stdout (`containet pingall | head -1`) end a
    command like Ctrl-C: its cleanup runs, one line on stderr (none for a closed
    stdout), no traceback; the status is 128 + the signal (141 for the pipe)."""
    with exits.handled() as guard:
        try:
            return guard.returned(run(build_parser().parse_args(argv)), "containet")
        except WorkbenchError as exc:
            print(f"containet: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt as exc:
            return guard.ended(exc, "containet")


if __name__ == "__main__":
    sys.exit(main())
