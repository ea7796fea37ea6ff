"""How the lab's Open vSwitch reads and writes its data ports: AF_PACKET or AF_XDP.

With the userspace datapath, OVS moves every frame of a kernel port (the underlay NIC
eth1, each container's host-side veth) through a socket. By default that is an
AF_PACKET socket served by ovs-vswitchd's main thread; its receive queue overflows
when the thread falls behind, and TCP pays with retransmits (measured here: ~15% of
segments; the GRE path at 2-5% of a raw veth). OVS 3.1 can open the same devices as
AF_XDP sockets instead (`type=afxdp`, generic XDP mode), polled by a PMD thread that
sleeps up to 100 us when idle (`other_config:pmd-maxsleep=100`). Measured in one run
on this machine (loaded): GRE path 822 vs 271 Mbit/s, RTT 0.33 vs 0.82 ms, no
retransmits, ~9% of a core per host when idle (bench/bench_measure.py part 5).

Tried and dropped (kept in the README's notes): PMD without sleep (same rate, a core
spinning per host); `afxdp-nonpmd` (the main thread polls: ~1.8x only); native XDP
(ovs-vswitchd 3.1 aborts on a poll-loop assertion); userspace TSO (3.1 drops every
offloaded packet it must tunnel: "Tunneling packets with HW offload flags is not
supported"; software segmentation for tunnels came in OVS 3.5).

What it costs, and why it is a choice (`lab up --ovs-io afxdp`), not the default: a
frame OVS takes by XDP never reaches the kernel's packet taps, so `tcpdump -i eth1`
on such a port sees nothing. containet's own capture knows it and reads those ports
through an OVS mirror, as it does for tunnel ports. The topology, the scenarios and
what they teach are the same; only the port's type changes.

The choice is the lab's (a file in its run directory); `ensure` brings every marked
data port in line, in place (no port is removed, no container touched), and the
plumbing of a new container asks `current` for the type to create.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import BadInput, NotReady
from .host import Host
from .marks import MARK_VALUE, OVS_MARK, RUN_DIR
from .ovs import Ovs

MODES = ("packet", "afxdp")
SAVED = RUN_DIR / "ovs-io"
#: the kernel-device port types a mode may turn into one another ("" is OVSDB's system)
DATA_TYPES = ("", "system", "afxdp", "afxdp-nonpmd")


@dataclass(frozen=True)
class PortType:
    type: str | None  # None: OVS's default (system)
    options: dict[str, str]

    def render(self, port: str) -> str:
        """The ovs-vsctl tail that sets it, for the command shown ("" by default)."""
        if self.type is None:
            return ""
        opts = "".join(f" options:{k}={v}" for k, v in self.options.items())
        return f" -- set interface {port} type={self.type}{opts}"


TYPES = {
    "packet": PortType(None, {}),
    "afxdp": PortType("afxdp", {"xdp-mode": "generic"}),
}
#: the PMD thread's longest idle sleep with AF_XDP ports, microseconds (OVS 3.1's key)
PMD_MAXSLEEP = {"pmd-maxsleep": "100"}


def check(mode: str) -> str:
    if mode not in MODES:
        raise BadInput(f"unknown OVS port I/O {mode!r} (packet or afxdp)")
    return mode


def saved() -> str:
    try:
        mode = SAVED.read_text().strip()
    except OSError:
        return "packet"
    return mode if mode in MODES else "packet"


def save(mode: str) -> None:
    if mode == "packet":
        SAVED.unlink(missing_ok=True)  # the default leaves nothing behind
        return
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    SAVED.write_text(check(mode) + "\n")


def current() -> PortType:
    """The type a new data port gets: the lab's choice (none saved, as on a VM: OVS's default)."""
    return TYPES[saved()]


def is_xdp(iface_type: str) -> bool:
    """Frames of such a port bypass the kernel's taps: tcpdump on its device sees nothing."""
    return iface_type.startswith("afxdp")


def _data_ports(ovs: Ovs) -> list[tuple[str, PortType]]:
    """(interface, how it is opened) of every port containet made on a kernel device."""
    rows = ovs.api.db_list("Interface", columns=["name", "type", "options", "external_ids"]).execute(
        check_error=True
    )
    return [
        (
            row["name"],
            PortType(
                None if row["type"] in ("", "system") else row["type"],  # OVS's default, either way
                {k: v for k, v in row["options"].items() if k == "xdp-mode"},
            ),
        )
        for row in rows
        if row["external_ids"].get(OVS_MARK) == MARK_VALUE and row["type"] in DATA_TYPES
    ]


def ensure(hosts: Sequence[Host], mode: str, progress: Callable[[str], None]) -> list[str]:
    """Every marked data port of the lab's hosts in `mode`, in place; what changed. A host
    whose ports are all as wanted is only read (this runs on every `lab up`)."""
    want = TYPES[check(mode)]
    changed: list[str] = []
    for host in hosts:
        if host.real:
            continue
        ovs = Ovs(host.ovs_db)
        stale = [
            name for name, now in _data_ports(ovs) if (now.type, now.options) != (want.type, want.options)
        ]
        if not stale:
            continue
        _pmd_sleep(ovs, want.type is not None)
        for name in stale:
            with ovs.api.transaction(check_error=True) as txn:
                txn.add(ovs.api.db_set("Interface", name, ("type", want.type or "")))
                if want.options:
                    txn.add(ovs.api.db_set("Interface", name, ("options", want.options)))
                else:
                    txn.add(ovs.api.db_remove("Interface", name, "options", "xdp-mode"))
            line = f"{host.name}: port {name} now {want.type or 'system'} (OVS port I/O {mode})"
            progress(line)
            changed.append(line)
        _wait_open(ovs, stale)
    save(mode)
    return changed


def _pmd_sleep(ovs: Ovs, on: bool) -> None:
    if on:
        ovs.api.db_set("Open_vSwitch", ".", ("other_config", PMD_MAXSLEEP)).execute(check_error=True)
    else:
        ovs.api.db_remove("Open_vSwitch", ".", "other_config", *PMD_MAXSLEEP).execute(check_error=True)


def _wait_open(ovs: Ovs, names: list[str], timeout: float = 5.0) -> None:
    """Until OVS has opened each port again (an ofport, no error): a port whose type
    changed is closed and reopened, and frames sent meanwhile are lost."""
    deadline = time.monotonic() + timeout
    while True:
        rows = ovs.api.db_list("Interface", names, columns=["name", "ofport", "error"]).execute(
            check_error=True
        )
        closed = [r["name"] for r in rows if _one(r["error"]) or _ofport(r["ofport"]) <= 0]
        if not closed:
            return
        if time.monotonic() > deadline:
            raise NotReady(
                f"OVS did not open {', '.join(closed)} within {timeout:.0f} s (ovs-vsctl list interface)"
            )
        time.sleep(0.1)


def _one(value: object) -> object:
    """An optional OVSDB column as ovsdbapp gives it: [] (unset), [x], or x."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _ofport(value: object) -> int:
    port = _one(value)
    return port if isinstance(port, int) else -1
