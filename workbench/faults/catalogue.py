"""The fault catalogue: classic container-networking faults, each with a one-line
description, the command that causes it, what the doctor says, and how to build
it as an intent on a target (workbench.faults.intents, workbench.impair)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput
from ..impair.intent import Impair
from ..impair.link import ImpairLink
from ..impair.linkstate import Flap, LinkDown
from ..impair.spec import Spec
from ..intents.base import Intent
from .intents import ForwardDrop, MtuBlackhole, MtuEnd, TxChecksumOn, VlanMismatch, WrongRemote

WRONG_REMOTE = "10.0.0.99"  # in the lab's underlay subnet, where no host is
TUNNEL_LOSS = 40.0


@dataclass(frozen=True)
class FaultEnv:
    """What a fault is built from: its target's link, a peer container on another host
    (for faults on a path), and the impairment backend."""

    link: ImpairLink
    peer: ImpairLink | None
    backend: str


@dataclass(frozen=True)
class FaultDef:
    name: str
    summary: str
    target: str  # "container", "container on a linux bridge", "container on OVS", "tunnel"
    command: str  # the command that causes it, on the default target (as typed on the host)
    doctor: str  # where the doctor finds it: "hop: check"
    build: Callable[[FaultEnv], Intent]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "target": self.target,
            "command": self.command,
            "doctor": self.doctor,
        }


def _container(env: FaultEnv, kind: str) -> ImpairLink:
    link = env.link
    if link.kind != "container" or link.container is None:
        raise BadInput(f"this fault goes on a container, not on {link.target}")
    if kind == "ovs" and not link.on_ovs:
        raise BadInput(
            f"{link.target} hangs on a linux bridge: this fault needs a container on an OVS port "
            "(scenarios exp2, exp3, vxlan)"
        )
    if kind == "bridge" and link.on_ovs:
        raise BadInput(
            f"{link.target} hangs on OVS, whose frames never cross iptables: this fault needs a "
            "container on a linux bridge (scenario exp1)"
        )
    return link


def _tunnel(env: FaultEnv) -> ImpairLink:
    if env.link.kind != "tunnel":
        raise BadInput(f"this fault goes on a tunnel HOST:PORT (e.g. host1:gre0), not on {env.link.target}")
    return env.link


def _mtu(env: FaultEnv) -> Intent:
    link = _container(env, "any")
    assert link.container is not None
    ends = [MtuEnd(link.host, link.container, link.port)]
    if env.peer is not None and env.peer.container is not None:
        ends.append(MtuEnd(env.peer.host, env.peer.container, env.peer.port))
    return MtuBlackhole(link.host, tuple(ends))


def _vlan(env: FaultEnv) -> Intent:
    link = _container(env, "ovs")
    return VlanMismatch(link.host, link.port, 20)


def _forward(env: FaultEnv) -> Intent:
    return ForwardDrop(_container(env, "bridge").host)


def _tx(env: FaultEnv) -> Intent:
    link = _container(env, "ovs")
    assert link.container is not None
    return TxChecksumOn(link.host, link.container)


def _remote(env: FaultEnv) -> Intent:
    link = _tunnel(env)
    return WrongRemote(link.host, link.target.split(":", 1)[1], WRONG_REMOTE)


def _down(env: FaultEnv) -> Intent:
    link = _container(env, "any")
    return LinkDown(link.host, link)


def _flap(env: FaultEnv) -> Intent:
    link = _container(env, "any")
    return Flap(link.host, link, 1.0, 0)


def _loss(env: FaultEnv) -> Intent:
    link = _tunnel(env)
    return Impair(link.host, link, Spec(loss=TUNNEL_LOSS), env.backend)


CATALOGUE: tuple[FaultDef, ...] = (
    FaultDef(
        "mtu-blackhole",
        "MTU 1500 on both ends over a GRE tunnel that fits 1462: ping works, TCP stalls",
        "container",
        "ip link set eth0 mtu 1500 (in h1-a and h2-a); ip link set cn-h1-a mtu 1500",
        "container h1-a: MTU",
        _mtu,
    ),
    FaultDef(
        "vlan-mismatch",
        "one container's OVS port on VLAN 20, its peers untagged: they no longer talk",
        "container on OVS",
        "ovs-vsctl set port cn-h1-a tag=20",
        "veth cn-h1-a: VLAN tag",
        _vlan,
    ),
    FaultDef(
        "forward-drop",
        "bridged frames pass iptables (br_netfilter) and FORWARD's policy is DROP",
        "container on a linux bridge",
        "sysctl -w net.bridge.bridge-nf-call-iptables=1; iptables -P FORWARD DROP",
        "docker0: firewall",
        _forward,
    ),
    FaultDef(
        "tx-checksum",
        "tx checksum offload on, on a userspace OVS port: checksums never filled, TCP dies",
        "container on OVS",
        "ethtool -K eth0 tx on (in h1-a)",
        "container h1-a: checksums",
        _tx,
    ),
    FaultDef(
        "wrong-remote-ip",
        f"the tunnel points at {WRONG_REMOTE}, where no host is: nothing crosses",
        "tunnel",
        f"ovs-vsctl set interface gre0 options:remote_ip={WRONG_REMOTE}",
        "tunnel gre0: remote_ip",
        _remote,
    ),
    FaultDef(
        "veth-down",
        "the container's host-side veth is administratively down",
        "container",
        "ip link set cn-h1-a down",
        "veth cn-h1-a: up",
        _down,
    ),
    FaultDef(
        "link-flap",
        "the container's host-side veth goes down and up every second",
        "container",
        "while :; do ip link set cn-h1-a down; sleep .5; ip link set cn-h1-a up; sleep .5; done",
        "veth cn-h1-a: flapping",
        _flap,
    ),
    FaultDef(
        "tunnel-loss",
        f"the underlay drops {TUNNEL_LOSS:g}% of what reaches the host's tunnel, at random",
        "tunnel",
        f"iptables -A FORWARD -d 10.0.0.3 -m statistic --mode random --probability {TUNNEL_LOSS / 100:g} "
        "-j DROP (in the underlay)",
        "tunnel gre0: loss",
        _loss,
    ),
)

BY_NAME = {f.name: f for f in CATALOGUE}


def find(name: str) -> FaultDef:
    try:
        return BY_NAME[name]
    except KeyError:
        raise BadInput(f"unknown fault {name!r} (have: {', '.join(BY_NAME)})") from None
