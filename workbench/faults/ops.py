"""`fault list|inject|revert|reveal|show`: what the engine calls.

A fault is injected by its intent's apply (after `prepare` read the values it
replaces), recorded in the run directory with those values, and reverted by the
intent's undo: by `fault revert`, `scenario undo` (workbench.impair.ops.revert_all)
and `clean`. `--random` keeps the name out of every output until `fault reveal`.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..errors import BadInput
from ..impair import codec, store
from ..impair.backend import detect
from ..impair.link import ImpairLink, resolve
from ..impair.ops import Lab, rendered
from ..intents.base import Intent
from .catalogue import BY_NAME, CATALOGUE, FaultDef, FaultEnv, find


def catalogue() -> list[FaultDef]:
    return list(CATALOGUE)


def _default_target(lab: Lab, fault: FaultDef) -> str:
    snap = lab.snapshot()
    first = snap.hosts[0].name if snap.hosts else ""
    if fault.target == "tunnel":
        view = snap.host(first)
        tunnels = view.tunnels if view is not None else ()
        if not tunnels:
            kernel = view.kernel_tunnels if view is not None else ()
            if kernel:  # kvxlan: break it by hand (`ip link set vxlan0 type vxlan remote ...`)
                what = f"{first}'s tunnel is the kernel's {kernel[0].name}"
                raise BadInput(f"{fault.name} breaks an OVS tunnel port; {what}")
            raise BadInput("no tunnel to break: apply a scenario first")
        return f"{first}:{tunnels[0].name}"
    mine = sorted(c.name for c in snap.containers_on(first))
    if not mine:
        raise BadInput(f"no container on {first} to break: apply a scenario first")
    return mine[0]


def _peer(lab: Lab, link: ImpairLink) -> ImpairLink | None:
    if link.kind != "container":
        return None
    snap = lab.snapshot()
    others = sorted(
        (c for c in snap.containers if c.host and c.host != link.host and c.host_veth), key=lambda c: c.name
    )
    if not others:
        others = sorted(
            (c for c in snap.containers if c.host and c.name != link.target), key=lambda c: c.name
        )
    return resolve(others[0].name, lab.hosts(), snap) if others else None


def build(lab: Lab, fault: FaultDef, on: str | None) -> Intent:
    target = on or _default_target(lab, fault)
    link = resolve(target, lab.hosts(), lab.snapshot())
    return fault.build(FaultEnv(link, _peer(lab, link), detect()))


def inject(lab: Lab, name: str | None, on: str | None = None, hidden: bool = False) -> str:
    if name is not None:
        find(name)  # an unknown name is one line, before anything is read
    lab.require_lab()
    if name is None:
        usable = []
        for fault in CATALOGUE:
            try:
                usable.append((fault, build(lab, fault, on)))
            except BadInput:
                continue
        if not usable:
            raise BadInput("no fault of the catalogue fits this lab: apply a scenario first")
        fault, intent = random.choice(usable)
    else:
        fault = find(name)
        intent = build(lab, fault, on)
    if store.load("fault", fault.name) is not None:
        raise BadInput(f"{fault.name} is injected already: `containet fault revert {fault.name}` first")
    with lab.locked(), lab.context() as ctx:
        prepare = getattr(intent, "prepare", None)
        if prepare is not None:
            intent = prepare(ctx)
        intent.apply(ctx)
        store.save(
            "fault",
            fault.name,
            {
                "at": time.time(),
                "key": fault.name,
                "name": fault.name,
                "hidden": hidden,
                "intent": codec.encode(intent),
            },
        )
    if hidden:
        return (
            "a fault is injected, and hidden: find it (`containet doctor SRC DST`, ping, iperf); "
            "`containet fault reveal` names it, `containet fault revert` reverts it"
        )
    lines = [f"{fault.name}: {intent.title()}"] + [f"  $ {c}" for c in rendered(lab.hosts(), intent)]
    return "\n".join(lines)


def revert(lab: Lab, name: str | None = None) -> list[str]:
    if name is not None:
        find(name)
    lab.require_lab()
    done = []
    with lab.locked(), lab.context() as ctx:
        for data in reversed(store.load_all("fault")):
            if name is not None and data.get("name") != name:
                continue
            intent = codec.decode(data["intent"])
            try:
                intent.undo(ctx)
            finally:
                store.drop("fault", str(data.get("key")))
            shown = "the hidden fault" if data.get("hidden") else data.get("name")
            done.append(f"reverted {shown}: {intent.title()}")
    return done


def reveal() -> str:
    hidden = [d for d in store.load_all("fault") if d.get("hidden")]
    if not hidden:
        return "no hidden fault is injected"
    data = hidden[-1]
    intent = codec.decode(data["intent"])
    fault = BY_NAME.get(str(data.get("name")))
    where = f"; the doctor names it at {fault.doctor}" if fault else ""
    return f"the hidden fault is {data.get('name')}: {intent.title()}{where}"


def active() -> list[str]:
    out = []
    for data in store.load_all("fault"):
        if data.get("hidden"):
            out.append("a hidden fault (`containet fault reveal` names it)")
            continue
        try:
            title = codec.decode(data["intent"]).title()
        except Exception:  # noqa: BLE001 - an unreadable record still shows by name
            title = "?"
        out.append(f"{data.get('name')}: {title}")
    return out


def active_records() -> list[dict[str, Any]]:
    return store.load_all("fault")
