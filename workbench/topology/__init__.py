"""The topology discovered from live facts: what is there, whoever built it.

`discover(hosts)` reads netlink, OVSDB and docker and returns `build(facts)`, a
`Topology` (typed nodes and edges with queries); `facts` holds the raw facts as
frozen dataclasses. See model.py for the graph and build.py for the rules.
"""

from .build import Marks, build
from .facts import Facts
from .model import (
    AttachKind,
    Attachment,
    Container,
    ContainerStatus,
    Edge,
    EdgeKind,
    Host,
    Link,
    LinkState,
    LinuxBridge,
    NodeKind,
    OvsBridge,
    OvsPort,
    Topology,
    Tunnel,
    TunnelType,
    Wiring,
)

__all__ = [
    "AttachKind",
    "Attachment",
    "Container",
    "ContainerStatus",
    "Edge",
    "EdgeKind",
    "Facts",
    "Host",
    "Link",
    "LinkState",
    "LinuxBridge",
    "Marks",
    "NodeKind",
    "OvsBridge",
    "OvsPort",
    "Topology",
    "Tunnel",
    "TunnelType",
    "Wiring",
    "build",
]
