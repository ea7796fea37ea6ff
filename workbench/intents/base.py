"""What an intent is, and how its commands are shown.

An intent is a small frozen record of one change containet wants to hold on a
host: a linux bridge with an address, an OVS tunnel port, a container's
plumbing, a doctor's repair. Everything else is derived from it:

    intent.commands()   the shell equivalent (rendered for the lab or the VMs by `render`)
    intent.apply(ctx)   make it so, with the libraries (pyroute2, ovsdbapp, docker SDK)
    intent.verify(ctx)  does it hold? (read from the system, never remembered)
    intent.undo(ctx)    take it back (only what it made)

A scenario step is an intent plus a `why`; a doctor's fix is a list of intents;
both are realised by the same methods.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, is_dataclass
from typing import TYPE_CHECKING, Any

from ..host import Host
from ..marks import docker_name

if TYPE_CHECKING:
    from ..steps import Context


class Where(enum.StrEnum):
    """Where a command runs, as a person would type it."""

    HOST = "host"  # the host's network namespace
    OVS = "ovs"  # ovs-vsctl on the host's OVS database
    DOCKER = "docker"  # the docker CLI
    CONTAINER = "container"  # inside a container's network namespace
    CONTAINET = "containet"  # a containet command


@dataclass(frozen=True)
class ContainerRef:
    """A container as commands name it: `name` in containet's words (or the docker
    name of a container containet did not start), `docker` as docker knows it."""

    name: str
    docker: str

    @classmethod
    def ours(cls, name: str) -> ContainerRef:
        return cls(name, docker_name(name))

    @classmethod
    def foreign(cls, docker: str) -> ContainerRef:
        return cls(docker, docker)


@dataclass(frozen=True)
class Cmd:
    """One shell command; `container` says which one when where is CONTAINER, `host`
    which host it runs on when its step has none (a barrier over several hosts)."""

    where: Where
    text: str
    container: ContainerRef | None = None
    host: str = ""


def every(period: float, waited: float, before: float) -> bool:
    """For a nudge: True once per `period` seconds of waiting, from the first period's
    end on (a nudge between `before` and `waited` seconds crossed a multiple of it)."""
    return int(waited // period) > int(before // period)


class Intent:
    """Base of every intent: subclasses are frozen dataclasses with a `host` field.

    `early`: needs nothing else of its plan (a `docker run`); `settle`: seconds
    verify may take to become true after apply; `subject`: what on the host it is
    about (a container), "" for the host itself (see Plan.apply); `readiness`: it
    changes nothing, only waits until what the steps before it made is ready (so
    `back` and `undo` pass over it); `progress`: while verify waits, one line on how
    far it is (None: nothing to say); `nudge`: while verify waits, a chance to put
    right what keeps it from holding (nothing, for most), told how long it has
    waited now and at the nudge before (see `every`)."""

    host: str

    @property
    def early(self) -> bool:
        return False

    @property
    def settle(self) -> float:
        return 3.0

    @property
    def subject(self) -> str:
        return ""

    @property
    def readiness(self) -> bool:
        return False

    def progress(self, ctx: Context) -> str | None:
        return None

    def nudge(self, ctx: Context, waited: float, before: float) -> None:
        return None

    def key(self) -> str:
        """Unique within a plan: the step id is "<host>/<key>"."""
        raise NotImplementedError

    def title(self) -> str:
        raise NotImplementedError

    def commands(self) -> tuple[Cmd, ...]:
        raise NotImplementedError

    def apply(self, ctx: Context) -> None:
        raise NotImplementedError

    def verify(self, ctx: Context) -> bool:
        raise NotImplementedError

    def undo(self, ctx: Context) -> None:
        """A repair is not undone: the state it restores is the wanted one."""


class Readiness(Intent):
    """Base of intents that change nothing and wait, up to `bound` seconds, until what
    came before them is ready for traffic (verify is tried until it holds)."""

    bound: float  # a dataclass field of each subclass

    @property
    def settle(self) -> float:
        return self.bound

    @property
    def readiness(self) -> bool:
        return True

    def apply(self, ctx: Context) -> None:
        """Nothing to change: the step waits (up to `bound`) for verify."""


def intent_dict(intent: Intent) -> dict[str, Any]:
    """An intent as JSON: its kind, its fields and the commands it stands for."""
    data: dict[str, Any] = {"kind": type(intent).__name__}
    data.update(asdict(intent) if is_dataclass(intent) else {"host": intent.host})
    data["commands"] = [c.text for c in intent.commands()]
    return data


def pid_expr(container: ContainerRef) -> str:
    return f"$(docker inspect -f '{{{{.State.Pid}}}}' {container.docker})"


def render(host: Host, cmd: Cmd) -> str:
    """The command as it runs here: in lab mode, inside the host's namespace."""
    text = cmd.text
    if cmd.where == Where.CONTAINER and cmd.container is not None:
        return f"nsenter -t {pid_expr(cmd.container)} -n {text}"
    if host.real or cmd.where in (Where.DOCKER, Where.CONTAINET):
        return text
    if cmd.where == Where.OVS and text.startswith("ovs-vsctl "):
        return f"ovs-vsctl --db={host.ovs_db} {text[len('ovs-vsctl ') :]}"
    if cmd.where == Where.OVS and text.startswith("ovs-appctl ") and host.run_dir is not None:
        target = host.run_dir / "ovs-vswitchd.ctl"  # the host's own daemon (see ovs.OvsPaths)
        return f"ovs-appctl --target={target} {text[len('ovs-appctl ') :]}"
    ns = host.netns
    if text.startswith("ip "):
        return f"ip -n {ns} {text[3:]}"
    return f"ip netns exec {ns} {text}"


def render_plain(host: Host, cmd: Cmd) -> str:
    """The command as typed on the host itself (the seed's VMs)."""
    if cmd.where == Where.CONTAINER and cmd.container is not None:
        return f"ip netns exec {cmd.container.name} {cmd.text}"
    return cmd.text
