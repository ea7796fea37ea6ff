"""`containet capture`, `flows`, `trace`: parsing and printing (the CLI's part
that belongs to workbench.capture, kept here so workbench/cli.py only adds it)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from ..errors import BadInput
from .capture import CaptureOptions, CaptureResult, check_filter
from .decode import decode
from .pcap import Record
from .xray import PathContext, xray

UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size(text: str) -> int:
    """ "4M", "64k", "1048576" -> bytes (argparse type)."""
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    unit = t[-1:] if t[-1:] in UNITS else ""
    try:
        return int(float(t[: len(t) - len(unit)]) * UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: a number of bytes, or 64K, 4M, 1G") from None


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cp = sub.add_parser(
        "capture",
        help="capture frames on a container, HOST:IFACE or an OVS port; decode them and X-ray the headers",
    )
    cp.add_argument(
        "where",
        metavar="WHERE",
        help="a container (its eth0), HOST:IFACE (a host-side veth, a bridge, eth1 the underlay NIC) "
        "or HOST:PORT (an OVS port with no device, through a mirror)",
    )
    cp.add_argument(
        "-c", "--count", type=int, default=20, help="stop after N frames (0: no limit; default 20)"
    )
    cp.add_argument(
        "-t", "--time", type=float, default=10.0, help="stop after this many seconds (default 10)"
    )
    cp.add_argument("--filter", default="", metavar="EXPR", help="a tcpdump filter, e.g. 'ip proto gre'")
    cp.add_argument("-w", "--write", metavar="FILE.pcap", help="write the frames to a pcap file")
    cp.add_argument(
        "-s", "--snaplen", type=int, default=256, help="bytes kept of each frame (default 256: every header)"
    )
    cp.add_argument("--ring", type=size, default=4 << 20, help="frames kept in memory, bytes (default 4M)")
    cp.add_argument("--xray", action="store_true", help="print each frame's X-ray (headers, bytes, MTU)")
    cp.add_argument(
        "--to",
        metavar="CONTAINER",
        help="capture the path from WHERE (a container) to this one: both ends and the underlay, merged",
    )
    cp.add_argument("--json", action="store_true")
    fl = sub.add_parser("flows", help="an OVS bridge's OpenFlow rules and datapath flows, with counters")
    fl.add_argument("where", metavar="HOST[:BRIDGE]")
    fl.add_argument("--watch", type=float, metavar="SECONDS", help="print again every SECONDS until Ctrl-C")
    fl.add_argument("--json", action="store_true")
    tr = sub.add_parser(
        "trace", help="ofproto/trace of a frame through each bridge of the path, beside what the wire saw"
    )
    tr.add_argument("src", help="container name or IP")
    tr.add_argument("dst", help="container name or IP")
    tr.add_argument("--probes", type=int, default=3, help="pings sent while capturing (default 3)")
    tr.add_argument("--json", action="store_true")


def _line(rec: Record, ctx: PathContext, t0: float) -> str:
    f = decode(rec.data, rec.wire_len, rec.time, rec.index)
    x = xray(f, ctx)
    flag = f"  !! {x.verdict.split(':')[0]}" if x.too_big else ""
    return f"{rec.index:5} {rec.time - t0:9.6f} {rec.wire_len:5} B  {f.summary}{flag}"


def run_command(engine: Any, args: argparse.Namespace) -> int:
    if args.cmd == "capture":
        return _capture_path(engine, args) if args.to else _capture(engine, args)
    if args.cmd == "flows":
        return _flows(engine, args)
    if args.cmd == "trace":
        if not 1 <= args.probes <= 20:
            raise BadInput(f"bad --probes {args.probes}: 1 to 20")
        view = engine.trace(args.src, args.dst, probes=args.probes)
        print(json.dumps(view.to_dict(), indent=2) if args.json else "\n".join(view.lines()))
        return 0 if view.agree else 1
    raise BadInput(f"unknown command {args.cmd}")


def _flows(engine: Any, args: argparse.Namespace) -> int:
    if args.watch is not None and not 0.2 <= args.watch <= 3600:
        raise BadInput(f"bad --watch {args.watch:g}: 0.2 to 3600 seconds")
    while True:
        found = engine.flows(args.where)
        if args.json:
            print(
                json.dumps([f.to_dict() for f in found], indent=2 if args.watch is None else None), flush=True
            )
        else:
            if args.watch is not None and sys.stdout.isatty():
                print("\033[H\033[J", end="")
            for f in found:
                print("\n".join(f.lines()), flush=True)
        if args.watch is None:
            return 0
        time.sleep(args.watch)


def _capture_path(engine: Any, args: argparse.Namespace) -> int:
    from ..measure.cancel import interruptible
    from .path import PathResult

    opts = CaptureOptions(
        count=args.count, seconds=args.time, filter=args.filter, snaplen=args.snaplen, ring_bytes=args.ring
    ).check()
    check_filter(opts.filter)
    lock = threading.Lock()

    def show(where: str, rec: Record) -> None:
        f = decode(rec.data, rec.wire_len, rec.time, rec.index)
        with lock:
            print(f"{rec.time:.6f} {where:16} {rec.wire_len:5} B  {f.summary}", flush=True)

    def work(cancel: threading.Event) -> PathResult:
        cap = engine.open_path_capture(args.where, args.to, opts, None if args.json else show)
        places = ", ".join(t.label for t in cap.targets)
        print(f"containet: capturing on {places} (Ctrl-C stops)", file=sys.stderr, flush=True)
        return cap.wait(cancel)  # type: ignore[no-any-return]

    result, _ = interruptible(work)
    if args.write:
        result.write(args.write)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for r in result.results:
            print(summary(r))
    return 0


def _capture(engine: Any, args: argparse.Namespace) -> int:
    from ..measure.cancel import interruptible

    opts = CaptureOptions(
        count=args.count,
        seconds=args.time,
        filter=args.filter,
        snaplen=args.snaplen,
        ring_bytes=args.ring,
        write=args.write,
    ).check()
    check_filter(opts.filter)  # a bad filter is one line before the lab is even asked
    target = engine.capture_target(args.where)
    quiet = args.json
    lock = threading.Lock()
    t0: list[float] = []

    def show(rec: Record) -> None:
        with lock:
            if not t0:
                t0.append(rec.time)
            if args.xray:
                print(
                    xray(decode(rec.data, rec.wire_len, rec.time, rec.index), target.context).text(),
                    flush=True,
                )
            else:
                print(_line(rec, target.context, t0[0]), flush=True)

    def work(cancel: threading.Event) -> CaptureResult:
        cap = engine.open_capture(args.where, opts, None if quiet else show)
        print(f"containet: capturing on {cap.target.label} (Ctrl-C stops)", file=sys.stderr, flush=True)
        return cap.wait(cancel)  # type: ignore[no-any-return]

    result, interrupted = interruptible(work)
    if interrupted and result.ended == "stopped":
        result.ended = "interrupted"
    if quiet:
        xs = result.xrays()
        data = result.to_dict()
        data["context"] = result.context.to_dict()
        data["frames"] = [dict(x.frame.to_dict(), xray=x.to_dict()) for x in xs]
        print(json.dumps(data, indent=2))
    else:
        print(summary(result))
    if result.ended == "gone":
        print(f"containet: {result.message}", file=sys.stderr)
        return 1
    if result.ended == "error":
        print(f"containet: capture failed: {result.message}", file=sys.stderr)
        return 1
    return 0


def summary(result: CaptureResult) -> str:
    big = sum(1 for x in result.xrays() if x.too_big)
    why = {
        "count": "count reached",
        "time": "time bound",
        "stopped": "stopped",
        "interrupted": "interrupted",
        "gone": "port disappeared",
        "error": "error",
    }.get(result.ended, result.ended)
    out = f"{result.seen} frame(s) on {result.label} in {result.seconds:.1f} s ({why})"
    if result.seen > result.kept:
        out += f"; the ring kept the last {result.kept}"
    if result.kernel_dropped:
        out += f"; {result.kernel_dropped} dropped by the kernel"
    if big:
        out += f"; {big} too big for the tunnel"
    if result.path:
        out += f"; {result.written} written to {result.path}"
    return out


def status_with_rates(engine: Any, snap: Any, as_json: bool) -> str:
    """`status --rates`: the inventory, then every busy port's rates over one second."""
    from ..cli import render_status

    table = engine.port_rates(1.0)
    if as_json:
        data = snap.to_dict()
        data["rates"] = [r.to_dict() for _k, r in sorted(table.items())]
        return json.dumps(data, indent=2)
    out = [render_status(snap), "", "rates over 1 s (ports with traffic, drops or errors):"]
    busy = [r for _k, r in sorted(table.items()) if r.busy or r.drops or r.errors]
    out += [f"  {r.host}:{r.name:14} {r.short()}" for r in busy] or ["  (all quiet)"]
    return "\n".join(out)
