"""`netem set/show/clear` and `link down/up/flap`: what the engine calls.

Every change runs under the lab's lock, through an intent (so the commands shown
are the ones run) and is recorded (workbench.impair.store) so that `netem clear`,
`scenario undo` and `clean` take it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ..context import Context
from ..errors import BadInput
from ..host import Host
from ..intents.base import Intent, render
from ..inventory.model import Snapshot
from . import codec, procs, store
from .backend import NETEM, SUBSTITUTE, describe, detect
from .intent import Impair
from .link import ImpairLink, resolve
from .linkstate import Flap, LinkDown
from .spec import FLAGS, Spec, check_flag


class Lab(Protocol):
    """What these operations need of the engine."""

    def hosts(self) -> list[Host]: ...

    def snapshot(self) -> Snapshot: ...

    def context(self) -> Context: ...

    def locked(self) -> AbstractContextManager[None]: ...

    def require_lab(self) -> None: ...


@dataclass(frozen=True)
class ImpairState:
    """An impairment in force on a link, as `netem show` prints it."""

    target: str
    spec: Spec
    backend: str
    holds: bool  # read from the system: every part is in place
    commands: tuple[str, ...] = ()

    def describe(self) -> str:
        state = "" if self.holds else "  (NOT in force: `netem set` it again or `netem clear`)"
        return f"{self.target}: {self.spec.describe()} [{self.backend}]{state}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "backend": self.backend,
            "holds": self.holds,
            **{k: getattr(self.spec, k) for k in FLAGS},
            "commands": list(self.commands),
        }


def rendered(hosts: list[Host], intent: Intent) -> tuple[str, ...]:
    by_name = {h.name: h for h in hosts}
    out = []
    for c in intent.commands():
        host = by_name.get(c.host or intent.host)
        out.append(render(host, c) if host else c.text)
    return tuple(out)


def _recorded(kind: str, key: str) -> Any:
    data = store.load(kind, key)
    return codec.decode(data["intent"]) if data and "intent" in data else None


def _record(kind: str, key: str, intent: Intent, **extra: Any) -> None:
    store.save(kind, key, {"at": time.time(), "key": key, "intent": codec.encode(intent), **extra})


def target_link(lab: Lab, target: str) -> ImpairLink:
    lab.require_lab()
    return resolve(target, lab.hosts(), lab.snapshot())


def backend() -> str:
    return detect()


# --- netem ---------------------------------------------------------------------------
def netem_set(lab: Lab, target: str, changes: dict[str, float | None]) -> ImpairState:
    """Change some of a link's impairment (the flags given; 0 removes that part)."""
    if not any(v is not None for v in changes.values()):
        raise BadInput("netem set needs at least one of --delay --jitter --loss --duplicate --reorder --rate")
    for name, value in changes.items():  # one line for bad input, before anything is read
        if value is not None:
            check_flag(name, float(value))
    link = target_link(lab, target)
    with lab.locked():
        old = _recorded("impair", link.key)
        base = old.spec if isinstance(old, Impair) else Spec()
        spec = base.merged(changes)
        kind = old.backend if isinstance(old, Impair) else detect()
        if kind == SUBSTITUTE and spec.needs_delay_line and link.bridge is None:
            from .intent import _no_bridge

            raise _no_bridge(link)
        new = Impair(link.host, link, spec, kind)
        with lab.context() as ctx:
            from .intent import change

            change(ctx, old if isinstance(old, Impair) else None, new)
            if spec.empty:
                store.drop("impair", link.key)
            else:
                _record("impair", link.key, new)
            holds = new.verify(ctx)
    return ImpairState(link.target, spec, kind, holds, rendered(lab.hosts(), new))


def netem_clear(lab: Lab, target: str | None = None) -> list[str]:
    """Remove one link's impairment (or every one); what was removed."""
    if target is not None:
        link = target_link(lab, target)
        keys = [link.key]
    else:
        lab.require_lab()
        keys = [codec.decode(d["intent"]).link.key for d in store.load_all("impair")]
    done = []
    with lab.locked(), lab.context() as ctx:
        for key in keys:
            old = _recorded("impair", key)
            if isinstance(old, Impair):
                old.undo(ctx)
                done.append(f"{old.link.target}: cleared {old.spec.describe()}")
            store.drop("impair", key)
    return done


def netem_show(lab: Lab) -> tuple[str, list[ImpairState]]:
    """The backend in use, and every impairment recorded with whether it holds."""
    lab.require_lab()
    out = []
    records = [codec.decode(d["intent"]) for d in store.load_all("impair")]
    with lab.context() as ctx:
        for imp in records:
            if isinstance(imp, Impair):
                try:
                    holds = imp.verify(ctx)
                except Exception:  # noqa: BLE001 - its container or namespace is gone
                    holds = False
                out.append(
                    ImpairState(imp.link.target, imp.spec, imp.backend, holds, rendered(lab.hosts(), imp))
                )
    kind = records[0].backend if records and isinstance(records[0], Impair) else detect()
    return describe(kind), out


def impairments() -> dict[str, str]:
    """target -> one-line description of every recorded impairment and link state (the
    inventory shows them next to the link; records only, nothing is read)."""
    out: dict[str, str] = {}
    for kind in ("impair", "link"):
        for data in store.load_all(kind):
            try:
                intent = codec.decode(data["intent"])
            except (KeyError, TypeError):
                continue
            if isinstance(intent, Impair):
                out[intent.link.target] = f"netem {intent.spec.describe()} ({intent.backend})"
            elif isinstance(intent, Flap) and procs.pid_of("flap", intent.link.key) is None:
                continue  # a counted flap that is over
            elif isinstance(intent, LinkDown | Flap):
                prev = out.get(intent.link.target)
                out[intent.link.target] = intent.title() + (f"; {prev}" if prev else "")
    return out


# --- link state ----------------------------------------------------------------------
def link_state(lab: Lab, target: str, action: str, period: float = 1.0, count: int = 0) -> str:
    if action not in ("down", "up", "flap"):
        raise BadInput(f"unknown link action {action!r} (down, up, flap)")
    if action == "flap" and not 0.1 <= period <= 3600:
        raise BadInput(f"--period must be 0.1 to 3600 seconds, not {period:g}")
    if count < 0:
        raise BadInput(f"--count must be 0 (until `link up`) or more, not {count}")
    link = target_link(lab, target)
    with lab.locked(), lab.context() as ctx:
        old = _recorded("link", link.key)
        if isinstance(old, LinkDown | Flap):
            old.undo(ctx)
            store.drop("link", link.key)
        if action == "up":
            LinkDown(link.host, link).undo(ctx)
            return f"{link.target}: {link.port} is up" + (f" (stopped: {old.title()})" if old else "")
        intent: Intent = (
            LinkDown(link.host, link) if action == "down" else Flap(link.host, link, period, count)
        )
        intent.apply(ctx)
        _record("link", link.key, intent)
        cmds = "; ".join(rendered(lab.hosts(), intent))
        return f"{link.target}: {intent.title()}\n  $ {cmds}"


# --- undo everything (scenario undo, clean) ----------------------------------------------
def revert_all(ctx: Context, progress: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Take back every recorded fault, link state and impairment, newest first; a part
    that cannot be taken back (its container is gone) is skipped. What was reverted."""
    from ..faults import intents as _fault_kinds  # noqa: F401 - registers their records' kinds

    done = []
    for kind in ("fault", "link", "impair"):
        for data in reversed(store.load_all(kind)):
            try:
                intent = codec.decode(data["intent"])
                intent.undo(ctx)
                done.append(f"{kind} {intent.title()}")
                progress(done[-1])
            except Exception as exc:  # noqa: BLE001 - what is gone needs no revert
                progress(f"{kind} {data.get('key')}: not reverted ({exc}); it goes with what it was on")
            finally:
                store.drop(kind, str(data.get("key", "")))
    return done


__all__ = [
    "NETEM",
    "SUBSTITUTE",
    "ImpairState",
    "impairments",
    "link_state",
    "netem_clear",
    "netem_set",
    "netem_show",
    "revert_all",
]
