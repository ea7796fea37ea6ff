"""`containet netem|link|fault ...`: parsing and printing only (the work is in the engine)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .spec import FLAGS

COMMANDS = ("netem", "link", "fault")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ne = sub.add_parser("netem", help="impair a link: delay, jitter, loss, duplicate, reorder, rate")
    ns = ne.add_subparsers(dest="action", required=True)
    st = ns.add_parser("set", help="change a link's impairment (the flags given; 0 removes one)")
    st.add_argument("target", help="a container (its link) or a tunnel HOST:PORT (host1:gre0)")
    units = {
        "delay": "MS",
        "jitter": "MS",
        "loss": "PCT",
        "duplicate": "PCT",
        "reorder": "PCT",
        "rate": "MBIT",
    }
    for flag in FLAGS:
        st.add_argument(f"--{flag}", type=float, metavar=units[flag])
    st.add_argument("--json", action="store_true")
    sh = ns.add_parser("show", help="impairments in force, and the backend that makes them")
    sh.add_argument("--json", action="store_true")
    cl = ns.add_parser("clear", help="remove a link's impairment (all without a target)")
    cl.add_argument("target", nargs="?")

    lk = sub.add_parser("link", help="take a link down, up, or make it flap")
    ls = lk.add_subparsers(dest="action", required=True)
    for action, text in (
        ("down", "take the link down"),
        ("up", "bring it up (stops a flap)"),
        ("flap", "down and up, every --period"),
    ):
        p = ls.add_parser(action, help=text)
        p.add_argument("target", help="a container (its host-side veth) or a tunnel HOST:PORT")
        if action == "flap":
            p.add_argument("--period", type=float, default=1.0, metavar="S", help="seconds per down+up")
            p.add_argument("--count", type=int, default=0, metavar="N", help="cycles (0: until `link up`)")

    fa = sub.add_parser("fault", help="break it on purpose: classic faults, the doctor explains")
    fs = fa.add_subparsers(dest="action", required=True)
    fl = fs.add_parser("list", help="the catalogue: name, what it does, the command")
    fl.add_argument("--json", action="store_true")
    fi = fs.add_parser("inject", help="inject a fault (or --random: a hidden one)")
    fi.add_argument("name", nargs="?")
    fi.add_argument("--on", metavar="TARGET", help="a container or tunnel (default: the fault's own)")
    fi.add_argument("--random", action="store_true", help="pick one at random and keep it hidden")
    fr = fs.add_parser("revert", help="revert a fault (all without a name)")
    fr.add_argument("name", nargs="?")
    fs.add_parser("reveal", help="say which hidden fault is injected")
    fs.add_parser("show", help="the faults injected now")


def run(engine: Any, args: argparse.Namespace) -> int:
    from ..errors import BadInput

    if args.cmd == "netem":
        if args.action == "set":
            changes = {f: getattr(args, f) for f in FLAGS}
            state = engine.netem_set(args.target, **changes)
            if args.json:
                print(json.dumps(state.to_dict(), indent=2))
            else:
                print(state.describe())
                for line in state.commands:
                    print(f"  $ {line}")
            return 0 if state.holds else 1
        if args.action == "clear":
            done = engine.netem_clear(args.target)
            print("\n".join(done) if done else "no impairment to clear")
            return 0
        backend, states = engine.netem_show()
        if args.json:
            print(json.dumps({"backend": backend, "impairments": [s.to_dict() for s in states]}, indent=2))
            return 0
        print(f"backend: {backend}")
        for s in states:
            print(s.describe())
            for line in s.commands:
                print(f"  $ {line}")
        if not states:
            print("no impairment in force")
        return 0
    if args.cmd == "link":
        print(
            engine.link_state(
                args.target, args.action, getattr(args, "period", 1.0), getattr(args, "count", 0)
            )
        )
        return 0
    if args.action == "list":
        cat = engine.fault_catalogue()
        if args.json:
            print(json.dumps([f.to_dict() for f in cat], indent=2))
            return 0
        for f in cat:
            print(f"{f.name:16}{f.summary}")
            print(f"{'':16}on: {f.target}; the doctor: {f.doctor}")
            print(f"{'':16}$ {f.command}")
        return 0
    if args.action == "inject":
        if args.random == bool(args.name):
            raise BadInput("fault inject needs a NAME or --random (not both)")
        print(engine.fault_inject(args.name, on=args.on, hidden=args.random))
        return 0
    if args.action == "revert":
        done = engine.fault_revert(args.name)
        print("\n".join(done) if done else "no fault to revert")
        return 0
    if args.action == "reveal":
        print(engine.fault_reveal())
        return 0
    active = engine.faults_active()
    print("\n".join(active) if active else "no fault injected")
    return 0
