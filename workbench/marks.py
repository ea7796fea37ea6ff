"""The project's mark: every name, label and OVS row it creates carries it.

Cleanup finds things by these marks and never by guess, so anything on the
machine without them is left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import BadInput

#: An instance keeps several labs apart on one machine (the test suite beside a
#: presenter's demo): CONTAINET_INSTANCE=t1 marks everything with "t1", and
#: cleanup in one instance never touches another's.
INSTANCE = os.environ.get("CONTAINET_INSTANCE", "").strip()
if not re.match(r"^[a-z0-9]{0,8}$", INSTANCE):
    raise BadInput(f"CONTAINET_INSTANCE={INSTANCE!r}: use up to 8 of a-z, 0-9")
#: the family prefix of every name the project creates
PREFIX = "cn-"
#: prefix of this instance's namespaces and docker container names
NS_PREFIX = f"{PREFIX}{INSTANCE}-" if INSTANCE else PREFIX
#: the value of every mark: docker label, OVS external_ids, lo alias, iptables comment
MARK_VALUE = INSTANCE or "1"
#: docker label on every container; more labels carry host and name. A container
#: is ours only with LABEL=MARK_VALUE *and* a LABEL_NAME label (containers.is_ours)
LABEL = "containet"
LABEL_HOST = "containet.host"
LABEL_NAME = "containet.name"
#: label of the offline image (not LABEL: containers inherit their image's labels)
LABEL_IMAGE = "containet.image"
#: key set in external_ids of every OVS Bridge/Port/Interface row we create
OVS_MARK = "containet"
#: comment on every iptables rule we add, alias of lo in every namespace we create
IPT_COMMENT = f"containet:{INSTANCE}" if INSTANCE else "containet"
NS_ALIAS = IPT_COMMENT
#: run directory: per-host OVS databases, sockets, pid and log files
RUN_DIR = Path("/run/containet") / (INSTANCE or "default")
#: the offline container image
IMAGE = "containet/busybox:latest"

IFNAMSIZ = 15
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


def netns_name(host: str) -> str:
    """Namespace of an emulated host: host1 -> cn-host1."""
    return f"{NS_PREFIX}{host}"


def docker_name(container: str) -> str:
    return f"{NS_PREFIX}{container}"


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
