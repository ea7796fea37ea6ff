"""Bandwidth caps per container, and what enforces them on this machine.

Measured on the project's machines (OVS 3.1, userspace datapath, a kernel
without the cls_basic/act_police tc modules):
- OVS `ingress_policing_rate` on the host-side port does nothing here: OVS
  installs it with tc's basic classifier, which this kernel lacks (its log
  says "adding cls_basic policing action failed").
- OVS QoS `egress-policer` is for DPDK ports only; it has no effect on a veth.
- OVS QoS `linux-htb` with a queue on the host-side port works: it shapes
  what leaves the port, i.e. what the container receives.
So a cap is enforced in both directions by:
- download (to the container): OVS linux-htb QoS on its port when it hangs on
  OVS (exp2, exp3, vxlan); a tc tbf on the host-side veth when it hangs on a
  linux bridge (exp1);
- upload (from the container): a tc tbf on the container's own eth0 (with the
  kernel datapath, e.g. the seed's VMs, OVS ingress policing is used instead).
The inventory and `qos show` say which mechanism is in force.

The bucket (burst) defaults to 20 ms at the rate, never under 32 KB, and goes
to both directions (the tbf's burst, the htb queue's burst). Tokens that
overflow the bucket are lost for good: when the path stalls longer than the
bucket lasts (ovs-vswitchd or the sender descheduled on a busy machine, a VM's
stolen time), the flow lands under the cap. OVS's own htb bucket is one MTU
(0.2 ms at 50 Mbit/s), so the queue also gets min-rate = max-rate: its class
sends on its own 20 ms bucket and never borrows from the one-MTU root class.
Measured here, a 50 Mbit/s cap, both CPUs 60% taken by a real-time hog in
30 ms slices: toward the container 36-40 Mbit/s before, 47-48 after; from it
44.5-47.8 with a 5 ms bucket, 46.8-48.0 with 20 ms. The cost: at most 20 ms of
line-rate data above the cap, 1% of a 2 s measurement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.tcmsg import common as tc_common

from . import links
from .errors import BadInput
from .host import Host, Place
from .marks import MARK_VALUE, OVS_MARK, host_veth
from .ovs import MARK, Ovs, uuids

TBF_HANDLE = 0x10000  # 1:
TBF_ROOT = 0xFFFFFFFF
TBF_LATENCY = "50ms"
MIN_BURST_KB = 2  # one full-size frame (1.5 KB) must fit in the bucket
BURST_MS = 20  # the default bucket, in milliseconds at the rate


@dataclass(frozen=True)
class QosState:
    container: str
    host: str
    rate_mbit: float | None  # the cap in force (None: no cap)
    burst_kb: float | None
    download: str  # mechanism toward the container, "" when none
    upload: str  # mechanism from the container, "" when none

    def describe(self) -> str:
        if self.rate_mbit is None:
            return f"{self.container}: no cap"
        return (
            f"{self.container}: {self.rate_mbit:g} Mbit/s (burst {self.burst_kb:g} KB) "
            f"in: {self.download or '-'}; out: {self.upload or '-'}"
        )


def default_burst_kb(rate_mbit: float) -> float:
    """BURST_MS at the rate, and never under 32 KB (TCP needs room)."""
    return max(32.0, round(rate_mbit * 1000 / 8 * BURST_MS / 1000, 1))


def check(rate_mbit: float, burst_kb: float | None) -> float:
    if not rate_mbit > 0:
        raise BadInput(f"--rate must be a positive number of Mbit/s, not {rate_mbit:g}")
    if rate_mbit > 100_000:
        raise BadInput(f"--rate {rate_mbit:g} Mbit/s is beyond any link here (max 100000)")
    burst = default_burst_kb(rate_mbit) if burst_kb is None else burst_kb
    if burst < MIN_BURST_KB:
        raise BadInput(f"--burst {burst:g} KB is smaller than one full-size frame (1.5 KB): use >= 2")
    return burst


# --- tc tbf ------------------------------------------------------------------
def _tbf_set(ipr: IPRoute, ifname: str, rate_mbit: float, burst_kb: float) -> None:
    idx = links.must_index(ipr, ifname)
    _tbf_clear(ipr, ifname)
    ipr.tc(
        "add",
        "tbf",
        idx,
        TBF_HANDLE,
        rate=f"{int(rate_mbit * 1000)}kbit",
        burst=int(burst_kb * 1024),
        latency=TBF_LATENCY,
    )


def _tbf_clear(ipr: IPRoute, ifname: str) -> None:
    idx = links.index_of(ipr, ifname)
    if idx is None:
        return
    if any(q.get("kind") == "tbf" for q in ipr.get_qdiscs(idx)):
        ipr.tc("del", index=idx, handle=TBF_HANDLE, parent=TBF_ROOT)


def tbf_read(ipr: IPRoute, ifname: str) -> tuple[float, float] | None:
    """The tbf on ifname as (rate in Mbit/s, burst in KB), if one is there."""
    idx = links.index_of(ipr, ifname)
    if idx is None:
        return None
    for q in ipr.get_qdiscs(idx):
        if q.get("kind") == "tbf":
            parms = q.get(("options", "TCA_TBF_PARMS")) or {}
            bytes_per_s = float(parms.get("rate", 0))
            # the kernel keeps the bucket as the time it lasts at the rate, in ticks
            seconds = float(parms.get("buffer", 0)) / tc_common.tick_in_usec / 1e6
            return bytes_per_s * 8 / 1e6, round(bytes_per_s * seconds / 1024, 1)
    return None


def tbf_rate(ipr: IPRoute, ifname: str) -> float | None:
    """The tbf rate on ifname in Mbit/s, if one is there."""
    got = tbf_read(ipr, ifname)
    return None if got is None else got[0]


# --- OVS linux-htb QoS -----------------------------------------------------------
def _ovs_qos_set(ovs: Ovs, port: str, rate_mbit: float, burst_kb: float) -> None:
    bps = str(int(rate_mbit * 1e6))
    # min-rate = max-rate: the queue's htb class sends on its own bucket (burst) and
    # never borrows from the root class, whose bucket OVS makes one MTU deep
    queue_config = {"min-rate": bps, "max-rate": bps, "burst": str(int(burst_kb * 1024 * 8))}
    _ovs_qos_clear(ovs, port)
    api = ovs.api
    with api.transaction(check_error=True) as txn:
        queue = txn.add(api.db_create("Queue", other_config=queue_config, external_ids=MARK))
        qos = txn.add(
            api.db_create(
                "QoS",
                type="linux-htb",
                other_config={"max-rate": bps},
                queues={0: queue},
                external_ids={**MARK, "port": port, "id": str(uuid.uuid4())},
            )
        )
        txn.add(api.db_set("Port", port, ("qos", qos)))


def _ovs_qos_rows(ovs: Ovs, port: str) -> tuple[dict[str, Any] | None, list[Any]]:
    for row in ovs.rows("QoS"):
        ids = row.get("external_ids") or {}
        if ids.get(OVS_MARK) == MARK_VALUE and ids.get("port") == port:
            return row, uuids(list((row.get("queues") or {}).values()))
    return None, []


def _ovs_qos_clear(ovs: Ovs, port: str) -> None:
    row, queues = _ovs_qos_rows(ovs, port)
    api = ovs.api
    with api.transaction(check_error=True) as txn:
        if ovs.row("Port", port) is not None:
            txn.add(api.db_clear("Port", port, "qos"))
        if row is not None:
            txn.add(api.db_destroy("QoS", row["_uuid"]))
        for q in queues:
            txn.add(api.db_destroy("Queue", q))


def _ovs_qos_rate(ovs: Ovs, port: str) -> float | None:
    row, _ = _ovs_qos_rows(ovs, port)
    if row is None:
        return None
    return float((row.get("other_config") or {}).get("max-rate", 0)) / 1e6


# --- per container ---------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a container's cap goes: its host, host-side veth, pid, OVS or not."""

    name: str
    host: Host
    pid: int
    on_ovs: bool


def apply(target: Target, ovs: Ovs | None, rate_mbit: float, burst_kb: float) -> QosState:
    veth = host_veth(target.name)
    if target.on_ovs:
        assert ovs is not None
        _ovs_qos_set(ovs, veth, rate_mbit, burst_kb)
        down = "ovs linux-htb"
    else:
        target.host.place.netlink(_tbf_set, veth, rate_mbit, burst_kb)
        down = f"tc tbf on {veth}"
    if target.on_ovs and target.host.datapath == "system":
        assert ovs is not None
        kbps = int(rate_mbit * 1000)
        ovs.api.db_set(
            "Interface",
            veth,
            ("ingress_policing_rate", kbps),
            ("ingress_policing_burst", int(burst_kb * 8)),
        ).execute(check_error=True)
        up = "ovs ingress policing"
    else:
        Place.of_pid(target.pid, target.name).netlink(_tbf_set, "eth0", rate_mbit, burst_kb)
        up = "tc tbf on eth0 (in the container)"
    return QosState(target.name, target.host.name, rate_mbit, burst_kb, down, up)


def clear(target: Target, ovs: Ovs | None) -> None:
    veth = host_veth(target.name)
    if ovs is not None:
        _ovs_qos_clear(ovs, veth)
        if ovs.row("Interface", veth) is not None:
            ovs.api.db_set(
                "Interface", veth, ("ingress_policing_rate", 0), ("ingress_policing_burst", 0)
            ).execute(check_error=True)
    target.host.place.netlink(_tbf_clear, veth)
    if target.pid:
        Place.of_pid(target.pid, target.name).netlink(_tbf_clear, "eth0")


def read(target: Target, ovs: Ovs | None) -> QosState:
    """The cap in force, read from the kernel and OVS (the burst as the tbf keeps it)."""
    veth = host_veth(target.name)
    down_rate = _ovs_qos_rate(ovs, veth) if (ovs is not None and target.on_ovs) else None
    down = "ovs linux-htb" if down_rate is not None else ""
    down_tbf = target.host.place.netlink(tbf_read, veth) if down_rate is None else None
    if down_tbf is not None:
        down_rate, down = down_tbf[0], f"tc tbf on {veth}"
    up_tbf = Place.of_pid(target.pid, target.name).netlink(tbf_read, "eth0") if target.pid else None
    up_rate, up = (up_tbf[0], "tc tbf on eth0 (in the container)") if up_tbf else (None, "")
    tbf = up_tbf or down_tbf
    burst = tbf[1] if tbf else None
    if up_rate is None and ovs is not None and target.on_ovs:
        iface = ovs.row("Interface", veth) or {}
        if iface.get("ingress_policing_rate"):
            up_rate = float(iface["ingress_policing_rate"]) / 1000
            up = "ovs ingress policing"
            burst = float(iface.get("ingress_policing_burst") or 0) / 8  # kbit -> KB
    rate = down_rate if down_rate is not None else up_rate
    if rate is not None and not burst:
        burst = default_burst_kb(rate)
    return QosState(target.name, target.host.name, rate, burst if rate else None, down, up)


def marked_rows(ovs: Ovs) -> list[str]:
    """Every QoS or Queue row containet made (after a clear or undo: none)."""
    return [
        f"{table} {row['_uuid']}"
        for table in ("QoS", "Queue")
        for row in ovs.rows(table)
        if (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE
    ]
