"""The project's mark: every name, label and OVS row it creates carries it.

Cleanup finds things by these marks and never by guess, so anything on the
machine without them is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import BadInput

#: prefix of every network namespace and root-namespace link the project creates
PREFIX = "cn-"
#: docker label on every container (value "1"); more labels carry host and name
LABEL = "containet"
LABEL_HOST = "containet.host"
LABEL_NAME = "containet.name"
#: key set in external_ids of every OVS Bridge/Port/Interface row we create
OVS_MARK = "containet"
#: comment on every iptables rule we add
IPT_COMMENT = "containet"
#: run directory: per-host OVS databases, sockets, pid and log files
RUN_DIR = Path("/run/containet")
#: the offline container image
IMAGE = "containet/busybox:latest"

IFNAMSIZ = 15
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


def netns_name(host: str) -> str:
    """Namespace of an emulated host: host1 -> cn-host1."""
    return f"{PREFIX}{host}"


def docker_name(container: str) -> str:
    return f"{PREFIX}{container}"


def host_veth(container: str) -> str:
    """Host-side end of a container's veth pair (seed: tap$pid)."""
    return f"{PREFIX}{container}"


def check_container_name(name: str) -> str:
    """Container names become interface names, so they are short and plain."""
    if not _NAME_RE.match(name):
        raise BadInput(
            f"bad container name {name!r}: use 1-12 chars of a-z, 0-9 and '-', starting with a letter"
        )
    return name


def check_ifname(name: str, what: str = "interface name") -> str:
    if not name or len(name) > IFNAMSIZ or "/" in name or " " in name or name in (".", ".."):
        raise BadInput(f"bad {what} {name!r}: 1-{IFNAMSIZ} characters, no '/' or spaces")
    return name
