"""The seed's tunrc files: `export KEY='value'` lines, read and validated.

    export BRIDGE_NAME='docker0'
    export BRIDGE_ADDRESS='172.15.42.1/24'
    export SUBNET='172.15.42.0/24'
    export OVS_BRIDGE='br0'
    export TUN_IF='gre0'
    export TUN_TYPE='gre'
    export REMOTE_IP='10.0.0.4'
    export VNI='42'             # optional: kvxlan's VXLAN network identifier (default 42)

Every problem is reported as one line naming the file and the key, before
anything on the machine changes.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import BadInput
from .marks import IFNAMSIZ

KEYS = ("BRIDGE_NAME", "BRIDGE_ADDRESS", "SUBNET", "OVS_BRIDGE", "TUN_IF", "TUN_TYPE", "REMOTE_IP")
OPTIONAL = ("VNI",)  # keys a tunrc may leave out: their default is used
DEFAULT_VNI = 42
MAX_VNI = (1 << 24) - 1  # 24 bits in the VXLAN header
TUN_TYPES = ("gre", "vxlan")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


class TunrcError(BadInput):
    pass


@dataclass(frozen=True)
class Tunrc:
    source: str
    bridge_name: str
    bridge_address: str  # CIDR, e.g. 172.15.42.1/24
    subnet: str  # e.g. 172.15.42.0/24
    ovs_bridge: str
    tun_if: str
    tun_type: str
    remote_ip: str
    vni: int = DEFAULT_VNI  # the kernel VXLAN device's network identifier (scenario kvxlan)

    @property
    def bridge_ip(self) -> str:
        return self.bridge_address.split("/")[0]

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def with_tunnel(self, tun_type: str, tun_if: str | None = None) -> Tunrc:
        return replace(self, tun_type=tun_type, tun_if=tun_if or f"{tun_type}0")

    def render(self) -> str:
        lines = [f"# tunrc ({self.source})"]
        for key in KEYS + OPTIONAL:
            lines.append(f"export {key}='{getattr(self, key.lower())}'")
        return "\n".join(lines) + "\n"


def parse_text(text: str, source: str = "<tunrc>") -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("#!"):
            continue
        m = _LINE.match(line)
        if not m:
            raise TunrcError(f"{source}:{lineno}: not an `export KEY='value'` line: {line!r}")
        key, rest = m.groups()
        try:
            words = shlex.split(rest, comments=True)
        except ValueError as exc:
            raise TunrcError(f"{source}:{lineno}: {key}: {exc}") from exc
        if len(words) > 1:
            raise TunrcError(f"{source}:{lineno}: {key}: one value expected, got {rest!r}")
        values[key] = words[0] if words else ""
    return values


def validate(values: dict[str, str], source: str = "<tunrc>") -> Tunrc:
    def bad(key: str, why: str) -> TunrcError:
        return TunrcError(f"{source}: {key}={values.get(key, '')!r} {why}")

    for key in KEYS:
        if not values.get(key):
            raise TunrcError(f"{source}: {key} is missing (add: export {key}='...')")
    for key in ("BRIDGE_NAME", "OVS_BRIDGE", "TUN_IF"):
        if not _IFNAME.match(values[key]):
            raise bad(key, f"is not an interface name (1-{IFNAMSIZ} of A-Z a-z 0-9 _ . -)")
    try:
        subnet = ipaddress.IPv4Network(values["SUBNET"], strict=True)
    except ValueError:
        raise bad("SUBNET", "is not an IPv4 network in CIDR form (e.g. 172.15.42.0/24)") from None
    if "/" not in values["BRIDGE_ADDRESS"]:
        raise bad("BRIDGE_ADDRESS", "needs a prefix length (e.g. 172.15.42.1/24)")
    try:
        addr = ipaddress.IPv4Interface(values["BRIDGE_ADDRESS"])
    except ValueError:
        raise bad("BRIDGE_ADDRESS", "is not an IPv4 address in CIDR form (e.g. 172.15.42.1/24)") from None
    if addr.ip not in subnet or addr.network != subnet:
        raise bad("BRIDGE_ADDRESS", f"is not inside SUBNET {subnet}")
    if addr.ip in (subnet.network_address, subnet.broadcast_address):
        raise bad("BRIDGE_ADDRESS", f"is the network or broadcast address of {subnet}")
    if values["TUN_TYPE"] not in TUN_TYPES:
        raise bad("TUN_TYPE", f"is not a known tunnel type ({' or '.join(TUN_TYPES)})")
    try:
        remote = ipaddress.IPv4Address(values["REMOTE_IP"])
    except ValueError:
        raise bad("REMOTE_IP", "is not an IPv4 address") from None
    if remote in subnet:
        raise bad("REMOTE_IP", f"is inside the container SUBNET {subnet}: it must be the other host")
    if values["BRIDGE_NAME"] == values["OVS_BRIDGE"]:
        raise bad("OVS_BRIDGE", "is the same name as BRIDGE_NAME")
    vni = values.get("VNI", str(DEFAULT_VNI))
    if not vni.isdigit() or not 1 <= int(vni) <= MAX_VNI:
        raise bad("VNI", f"is not a VXLAN network identifier (1-{MAX_VNI})")
    return Tunrc(
        source=source,
        bridge_name=values["BRIDGE_NAME"],
        bridge_address=str(addr),
        subnet=str(subnet),
        ovs_bridge=values["OVS_BRIDGE"],
        tun_if=values["TUN_IF"],
        tun_type=values["TUN_TYPE"],
        remote_ip=str(remote),
        vni=int(vni),
    )


def load(path: str | Path) -> Tunrc:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TunrcError(f"{path}: cannot read tunrc ({exc.strerror})") from None
    return validate(parse_text(text, str(path)), str(path))
