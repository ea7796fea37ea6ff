"""A bandwidth cap on a container, both ways (see workbench.qos for what enforces it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import qos
from ..errors import BadInput
from ..marks import host_veth
from .base import Cmd, ContainerRef, Intent, Where

if TYPE_CHECKING:
    from ..steps import Context


@dataclass(frozen=True)
class QosCap(Intent):
    host: str
    name: str
    rate_mbit: float
    on_ovs: bool

    def __post_init__(self) -> None:
        qos.check(self.rate_mbit, None)  # a bad rate is refused before any plan runs

    @property
    def subject(self) -> str:
        return self.name

    @property
    def burst_kb(self) -> float:
        return qos.check(self.rate_mbit, None)

    def key(self) -> str:
        return f"qos:{self.name}"

    def title(self) -> str:
        return f"cap {self.name} at {self.rate_mbit:g} Mbit/s"

    def commands(self) -> tuple[Cmd, ...]:
        veth = host_veth(self.name)
        bps = int(self.rate_mbit * 1e6)
        burst_bits = int(self.burst_kb * 1024 * 8)
        tbf = f"tbf rate {self.rate_mbit:g}mbit burst {self.burst_kb:g}kb latency 50ms"
        down = (
            Cmd(
                Where.OVS,
                f"ovs-vsctl set port {veth} qos=@q -- --id=@q create qos type=linux-htb "
                f"other-config:max-rate={bps} queues:0=@q0 -- "
                f"--id=@q0 create queue other-config:min-rate={bps} other-config:max-rate={bps} "
                f"other-config:burst={burst_bits}",
            )
            if self.on_ovs
            else Cmd(Where.HOST, f"tc qdisc add dev {veth} root {tbf}")
        )
        return (down, Cmd(Where.CONTAINER, f"tc qdisc add dev eth0 root {tbf}", ContainerRef.ours(self.name)))

    def _target(self, ctx: Context, pid: int | None = None) -> qos.Target:
        if pid is None:
            row = ctx.container(self.name)
            if row is None or not row.pid:
                raise BadInput(f"container {self.name} is not running")
            pid = row.pid
        return qos.Target(self.name, ctx.host(self.host), pid, self.on_ovs)

    def apply(self, ctx: Context) -> None:
        qos.apply(
            self._target(ctx), ctx.ovs(self.host) if self.on_ovs else None, self.rate_mbit, self.burst_kb
        )

    def verify(self, ctx: Context) -> bool:
        state = qos.read(self._target(ctx), ctx.ovs(self.host) if self.on_ovs else None)
        return state.rate_mbit is not None and abs(state.rate_mbit - self.rate_mbit) < 0.01 * self.rate_mbit

    def undo(self, ctx: Context) -> None:
        row = ctx.container(self.name)
        target = self._target(ctx, row.pid if row is not None else 0)
        qos.clear(target, ctx.ovs(self.host) if self.on_ovs else None)
