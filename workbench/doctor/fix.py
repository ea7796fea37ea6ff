"""The doctor's hands: apply a check's fix.

Most fixes are one netlink, ethtool, iptables or OVSDB change in a host's or a
container's namespace. Two are containet commands the doctor cannot do itself
(re-apply the scenario, bring the lab up): the caller passes them in as
`FixHooks`, with a way to read a fresh inventory (a container's namespace is
found by its pid, which a re-created container changes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from .. import links
from ..errors import BadInput, NotReady
from ..host import Host, Place
from ..inventory.model import Snapshot
from ..marks import IPT_COMMENT
from ..ovs import Ovs
from .collect import resolve
from .model import FixAction, FixOp


@dataclass(frozen=True)
class FixHooks:
    """What applying a fix asks of the caller (the engine)."""

    snapshot: Callable[[], Snapshot]  # a fresh inventory
    scenario_apply: Callable[[str], object]  # `containet scenario apply NAME`
    lab_up: Callable[[], object]  # `containet lab up`


def container_place(snapshot: Snapshot, name: str) -> Place:
    c = resolve(snapshot, name)
    if c.status != "running" or not c.pid:
        raise NotReady(f"container {c.name} is not running")
    return Place.of_pid(c.pid, c.name)


def _add_route(ipr: Any, dst: str, gateway: str | None) -> None:
    idx = links.must_index(ipr, "eth0")
    kwargs: dict[str, Any] = {"dst": dst, "oif": idx}
    if gateway:
        kwargs["gateway"] = gateway
    else:
        kwargs["scope"] = 253  # link
    try:
        ipr.route("add", **kwargs)
    except NetlinkError as exc:
        if exc.code != 17:
            raise


def apply_op(hosts: Sequence[Host], op: FixOp, hooks: FixHooks) -> None:
    by_name = {h.name: h for h in hosts}
    if op.kind == "scenario_apply":
        hooks.scenario_apply(op.arg("name"))
        return
    if op.kind == "lab_up":
        hooks.lab_up()
        return
    if op.host not in by_name:
        raise BadInput(f"unknown host {op.host!r} in fix {op.cmd!r}")
    host = by_name[op.host]
    place = (
        container_place(hooks.snapshot(), op.where.split(":", 1)[1])
        if op.where.startswith("container:")
        else host.place
    )
    if op.kind == "link_up":
        place.netlink(links.set_up, op.arg("link"))
    elif op.kind == "set_mtu":
        place.netlink(links.set_mtu, op.arg("link"), int(op.arg("mtu")))
    elif op.kind == "set_master":
        place.netlink(links.set_master, op.arg("link"), op.arg("master"))
    elif op.kind == "tx_offload_off":
        place.call(links.tx_checksum, op.arg("link"), False)
    elif op.kind == "add_address":
        place.netlink(links.add_address, "eth0", op.arg("cidr"))
    elif op.kind == "add_route":
        place.netlink(_add_route, op.arg("dst"), dict(op.args).get("gateway"))
    elif op.kind == "iptables_accept_bridge":
        br = op.arg("bridge")
        rule = ["FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", IPT_COMMENT, "-j", "ACCEPT"]
        if place.run(["iptables", "-w", "-C", *rule], check=False).returncode != 0:
            place.run(["iptables", "-w", "-I", *rule])
    elif op.kind.startswith("ovs_"):
        ovs = Ovs(host.ovs_db, timeout=5)
        try:
            _ovs_op(ovs, op)
        finally:
            ovs.close()
    else:
        raise BadInput(f"unknown fix kind {op.kind!r}")


def _ovs_op(ovs: Ovs, op: FixOp) -> None:
    if op.kind == "ovs_add_port":
        tag = op.arg("tag")
        ovs.add_port(op.arg("bridge"), op.arg("port"), tag=int(tag) if tag else None)
    elif op.kind == "ovs_set_tag":
        tag = op.arg("tag")
        ovs.set_tag(op.arg("port"), int(tag) if tag else None)
    elif op.kind == "ovs_set_remote_ip":
        ovs.api.db_set("Interface", op.arg("port"), ("options", {"remote_ip": op.arg("remote_ip")})).execute(
            check_error=True
        )
    elif op.kind == "ovs_set_type":
        ovs.api.db_set("Interface", op.arg("port"), ("type", op.arg("type"))).execute(check_error=True)
    else:
        raise BadInput(f"unknown fix kind {op.kind!r}")


def apply_fix(hosts: Sequence[Host], fix: FixAction, hooks: FixHooks) -> str:
    """Apply every op of `fix` in order; a one-line summary."""
    for op in fix.ops:
        apply_op(hosts, op, hooks)
    return f"applied: {fix.title}"
