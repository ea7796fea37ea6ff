"""See an OVS port that has no kernel device (a tunnel port of the userspace
datapath) through an OVS mirror: every frame the port sends or receives is
copied to a new internal port, whose tap device tcpdump opens.

The fact comes from how OVS mirrors work (ovs-tcpdump does the same); the code is
containet's. The port and the Mirror row carry containet's mark
(external_ids:containet), so `containet clean` removes them after a crash, and
the capture removes them when it ends, whatever ended it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .. import links
from ..errors import NotReady, WorkbenchError
from ..marks import MARK_VALUE, OVS_MARK
from ..ovs import uuids
from .where import MirrorSpec

PREFIX = "cnm"  # mirror ports: cnm + 6 hex digits (an interface name fits 15 characters)
UP_WAIT = 3.0
OWNER = "containet-capture-pid"  # the process whose capture made the port


def mirror_name() -> str:
    return f"{PREFIX}{os.getpid() & 0xFFFF:04x}{int(time.monotonic() * 1000) & 0xFF:02x}"


def _vsctl(spec: MirrorSpec, *args: str) -> str:
    argv = ["ovs-vsctl", f"--db={spec.host.ovs_db}", "--timeout=5", *args]
    return spec.host.place.run(argv, timeout=10).stdout


def add(spec: MirrorSpec, name: str) -> str:
    """A marked internal port `name` on the port's bridge, up, and a Mirror that
    copies the port's frames (both ways) to it. Returns the device name."""
    sweep(spec)
    mark = f"external_ids:{OVS_MARK}={MARK_VALUE}"
    owner = f"external_ids:{OWNER}={os.getpid()}"
    _vsctl(
        spec,
        "--",
        "add-port",
        spec.bridge,
        name,
        "--",
        "set",
        "Interface",
        name,
        "type=internal",
        mark,
        "--",
        "set",
        "Port",
        name,
        mark,
        owner,
        "--",
        "--id=@src",
        "get",
        "Port",
        spec.port,
        "--",
        "--id=@out",
        "get",
        "Port",
        name,
        "--",
        "--id=@m",
        "create",
        "Mirror",
        f"name={name}",
        "select_src_port=@src",
        "select_dst_port=@src",
        "output_port=@out",
        mark,
        "--",
        "add",
        "Bridge",
        spec.bridge,
        "mirrors",
        "@m",
    )
    deadline = time.monotonic() + UP_WAIT
    while True:  # the tap device appears once ovs-vswitchd has read the change
        try:
            spec.host.place.call(_quiet_ipv6, name)  # no router solicitations of its own in the copy
            spec.host.place.netlink(links.set_up, name)
            return name
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            if time.monotonic() > deadline:
                remove(spec, name)
                raise NotReady(f"the mirror port {name} did not appear in {spec.host.name}: {exc}") from exc
            time.sleep(0.05)


def sweep(spec: MirrorSpec) -> list[str]:
    """Remove the mirror ports (and their Mirror rows) of captures whose process is
    gone (killed before it could remove them) from the bridge: what it removed."""
    try:
        out = _vsctl(
            spec,
            "--bare",
            "--columns=name,external_ids",
            "find",
            "Port",
            f"external_ids:{OVS_MARK}={MARK_VALUE}",
        )
    except WorkbenchError:
        return []
    gone = []
    for block in out.strip().split("\n\n"):
        words = block.split()
        if not words or not words[0].startswith(PREFIX):
            continue
        pid = next((w.split("=", 1)[1] for w in words[1:] if w.startswith(f"{OWNER}=")), "")
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            remove(spec, words[0])
            gone.append(words[0])
    return gone


def _quiet_ipv6(name: str) -> None:
    """IPv6 off on the device (its /proc/sys follows the calling thread's namespace)."""
    with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as fh:
        fh.write("1")


def remove(spec: MirrorSpec, name: str) -> None:
    """Take the Mirror off its bridge and delete the port (each if it is still there)."""
    try:
        _vsctl(
            spec,
            "--",
            "--id=@m",
            "get",
            "Mirror",
            name,
            "--",
            "remove",
            "Bridge",
            spec.bridge,
            "mirrors",
            "@m",
        )
    except WorkbenchError:
        pass  # no such mirror (or no bridge any more)
    try:
        _vsctl(spec, "--if-exists", "del-port", spec.bridge, name)
    except WorkbenchError:
        pass


def marked_mirrors(ovs: Any) -> list[tuple[str, str, Any]]:
    """(mirror name, its bridge, its row uuid) for the Mirror rows carrying our mark
    (after a crash: the capture itself removes its own), read with an Ovs client."""
    bridges = {}
    for br in ovs.rows("Bridge", ["name", "mirrors"]):
        for uuid in uuids(br.get("mirrors")):
            bridges[uuid] = br["name"]
    out = []
    for row in ovs.rows("Mirror", ["_uuid", "name", "external_ids"]):
        if (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE and row["_uuid"] in bridges:
            out.append((row["name"], bridges[row["_uuid"]], row["_uuid"]))
    return out


def remove_marked(ovs: Any, bridge: str, uuid: Any) -> None:
    ovs.api.db_remove("Bridge", bridge, "mirrors", uuid).execute(check_error=True)
