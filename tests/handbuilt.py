"""The seed's setups built by hand, as a meetup attendee would, with plain commands only.

Nothing here uses containet's code to build: every change is one `ip`, `ovs-vsctl`,
`iptables`, `docker` or `nsenter` argument list (no shell), and nothing built carries
containet's marks (no ifalias, no OVS external_ids, no iptables comment, no docker
labels of our own). The containers run the offline image `containet/busybox`; it is
imported when missing (the only use of containet's code, and not part of the setup).

Two places are supported:

* an emulated host of a lab that `containet lab up` made (`lab_host(instance, "host1")`):
  `ip -n cn-<instance>-host1 ...`, `ip netns exec cn-<instance>-host1 iptables ...`,
  `ovs-vsctl --db=unix:/run/containet/<instance>/host1/db.sock ...`;
* the root namespace with an OVS of the test's own (`root_place(db)`), for real mode.

Builders return the containers they made (`Built`), so a test can compare with what
containet reports. `teardown(...)` removes exactly what the builders made, is idempotent
and tolerates leftovers of a crashed earlier run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IMAGE = "containet/busybox"
HOSTS = ("host1", "host2")
UNDERLAY = {"host1": "10.0.0.3", "host2": "10.0.0.4"}
PEER = {"host1": "host2", "host2": "host1"}
BRIDGE_ADDRESS = {"host1": "172.15.42.1/24", "host2": "172.15.42.2/24"}  # the tunrc files
SUBNET = "172.15.42.0/24"
GATEWAY = "172.15.42.1"  # the seed's start-container.sh: <a>.<b>.<c>.1, on every host
DOCKER_BRIDGE = "docker0"
OVS_BRIDGE = "br0"
#: docker names of the containers the builders start (prefix "hb" by default)
EXP1_NAMES = ("web1", "web2")
TIMEOUT = 60


class CommandFailed(RuntimeError):
    pass


def run(*argv: str, check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """One plain command; on failure the error names the command and what it printed."""
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)}: exit {out.returncode}: {out.stderr.strip() or out.stdout}")
    return out


# --- where a command runs ------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    """A host: its namespace (None: the root namespace) and its OVS database."""

    name: str
    netns: str | None
    db: str

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        ns = ("-n", self.netns) if self.netns else ()
        return run("ip", *ns, *args, check=check)

    def iptables(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ("ip", "netns", "exec", self.netns) if self.netns else ()
        return run(*prefix, "iptables", *args, check=check)

    def vsctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ovs-vsctl", f"--db={self.db}", *args, check=check)

    def has_link(self, name: str) -> bool:
        return self.ip("link", "show", "dev", name, check=False).returncode == 0

    def exists(self) -> bool:
        return self.netns is None or os.path.exists(f"/var/run/netns/{self.netns}")


def lab_host(instance: str, host: str) -> Place:
    """An emulated host of the lab `CONTAINET_INSTANCE=<instance> containet lab up` made."""
    return Place(host, f"cn-{instance}-{host}", f"unix:/run/containet/{instance}/{host}/db.sock")


def root_place(db: str, name: str = "host1") -> Place:
    """This machine's root namespace, with the OVS whose database is `db` (real mode)."""
    return Place(name, None, db)


# --- what the builders made ----------------------------------------------------------
@dataclass(frozen=True)
class Built:
    name: str  # docker name
    host: str
    ip: str  # without the prefix length
    pid: int
    id: str  # full docker id
    host_veth: str
    attached_to: str  # docker0 or br0
    mtu: int
    tag: int | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]


# --- the pieces ------------------------------------------------------------------------
def ensure_image() -> None:
    if run("docker", "image", "inspect", IMAGE, check=False).returncode == 0:
        return
    import docker

    from workbench.containers import ensure_image as build  # the offline image, not the setup

    cli = docker.from_env()
    try:
        build(cli)
    finally:
        cli.close()


def docker_run(name: str) -> tuple[str, int]:
    """`docker run -d --net=none` as the seed does; returns (id, pid)."""
    cid = run("docker", "run", "-d", "--net=none", "--name", name, IMAGE, "sleep", "1d").stdout.strip()
    pid = int(run("docker", "inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
    return cid, pid


def nsenter(pid: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("nsenter", "-t", str(pid), "-n", *args, check=check)


def start_container(
    place: Place,
    name: str,
    cidr: str,
    *,
    mtu: int,
    attach: str,
    ovs_port: bool,
    gateway: str = GATEWAY,
    veth: str | None = None,
    tag: int | None = None,
    tx_off: bool = False,
) -> Built:
    """The seed's start-container.sh: a --net=none container, a veth pair whose peer becomes
    eth0 inside (address, default route), the host side on a linux bridge (`ip link set
    master`) or, with `ovs_port`, a port of an OVS bridge (`ovs-vsctl add-port`, optional tag)."""
    cid, pid = docker_run(name)
    host_side = veth or f"tap{pid}"
    peer = f"peertap{pid}"
    place.ip("link", "add", host_side, "type", "veth", "peer", "name", peer)
    place.ip("link", "set", peer, "netns", str(pid))
    nsenter(pid, "ip", "link", "set", "dev", peer, "name", "eth0")
    nsenter(pid, "ip", "link", "set", "eth0", "mtu", str(mtu))
    nsenter(pid, "ip", "link", "set", "eth0", "up")
    nsenter(pid, "ip", "addr", "add", cidr, "dev", "eth0")
    nsenter(pid, "ip", "route", "add", "default", "via", gateway)
    if tx_off:  # README "Checksum offload": OVS's userspace datapath never fills the TCP checksum in
        nsenter(pid, "ethtool", "-K", "eth0", "tx", "off")
    place.ip("link", "set", host_side, "mtu", str(mtu))
    place.ip("link", "set", host_side, "up")
    if ovs_port:
        place.vsctl("add-port", attach, host_side)
        if tag is not None:
            set_tag(place, host_side, tag)
    else:
        place.ip("link", "set", host_side, "master", attach)
    return Built(name, place.name, cidr.split("/")[0], pid, cid, host_side, attach, mtu, tag)


def set_tag(place: Place, port: str, tag: int | None) -> None:
    """`ovs-vsctl set port X tag=N` (None: `clear port X tag`)."""
    if tag is None:
        place.vsctl("clear", "port", port, "tag")
    else:
        place.vsctl("set", "port", port, f"tag={tag}")


def ovs_bridge(place: Place, tunnel: str | None, tun_type: str, remote_ip: str) -> None:
    """`ovs-vsctl add-br br0` (userspace datapath: no OVS kernel module here) and the
    tunnel port to the other host."""
    place.vsctl("add-br", OVS_BRIDGE, "--", "set", "bridge", OVS_BRIDGE, "datapath_type=netdev")
    if tunnel:
        place.vsctl(
            "add-port", OVS_BRIDGE, tunnel,
            "--", "set", "interface", tunnel, f"type={tun_type}", f"options:remote_ip={remote_ip}",
        )  # fmt: skip
    place.ip("link", "set", OVS_BRIDGE, "up")


def iptables_rules(subnet: str = SUBNET, bridge: str = OVS_BRIDGE) -> list[list[str]]:
    """The seed's iptables.sh, as (table, chain, rule...) argument lists."""
    return [
        ["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-d", subnet, "-j", "MASQUERADE"],
        ["-t", "filter", "FORWARD", "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
         "-j", "ACCEPT"],
        ["-t", "filter", "FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "ACCEPT"],
        ["-t", "filter", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"],
    ]  # fmt: skip


def _rule(op: str, rule: list[str]) -> list[str]:
    table, chain, rest = rule[:2], rule[2], rule[3:]
    return [*table, op, chain, *rest]


# --- the seed's experiments --------------------------------------------------------------
def docker_bridge(place: Place, host: str) -> None:
    """The seed's docker0 with the host's BRIDGE_ADDRESS, up."""
    place.ip("link", "add", DOCKER_BRIDGE, "type", "bridge")
    place.ip("addr", "add", BRIDGE_ADDRESS[host], "dev", DOCKER_BRIDGE)
    place.ip("link", "set", DOCKER_BRIDGE, "up")


def exp1_gre(instance: str, mtu: int = 1500, prefix: str = "hb") -> tuple[Built, ...]:
    """Experiment 1 by hand: docker0 (172.15.42.1/24, .2/24), br0 with gre0 to the other
    host, br0 inside docker0, the iptables rules; one container per host on docker0:
    <prefix>-web1 172.15.42.110 on host1, <prefix>-web2 172.15.42.111 on host2."""
    ensure_image()
    for host in HOSTS:
        p = lab_host(instance, host)
        docker_bridge(p, host)
        ovs_bridge(p, "gre0", "gre", UNDERLAY[PEER[host]])
        p.ip("link", "set", OVS_BRIDGE, "master", DOCKER_BRIDGE)
        for rule in iptables_rules():
            p.iptables(*_rule("-A", rule))
    return (
        start_container(lab_host(instance, "host1"), f"{prefix}-web1", "172.15.42.110/24", mtu=mtu,
                        attach=DOCKER_BRIDGE, ovs_port=False),
        start_container(lab_host(instance, "host2"), f"{prefix}-web2", "172.15.42.111/24", mtu=mtu,
                        attach=DOCKER_BRIDGE, ovs_port=False),
    )  # fmt: skip


def exp2_vxlan(instance: str, mtu: int = 1450, prefix: str = "hb", tx_off: bool = True) -> tuple[Built, ...]:
    """Experiment 2 with the seed's to-do, VXLAN: no docker0; br0 with vxlan0 to the other
    host; each container's veth a port of br0; <prefix>-vx1 172.15.42.112 on host1,
    <prefix>-vx2 172.15.42.113 on host2. `tx_off=False` leaves checksum offload on (the fault)."""
    ensure_image()
    for host in HOSTS:
        ovs_bridge(lab_host(instance, host), "vxlan0", "vxlan", UNDERLAY[PEER[host]])
    return (
        start_container(lab_host(instance, "host1"), f"{prefix}-vx1", "172.15.42.112/24", mtu=mtu,
                        attach=OVS_BRIDGE, ovs_port=True, tx_off=tx_off),
        start_container(lab_host(instance, "host2"), f"{prefix}-vx2", "172.15.42.113/24", mtu=mtu,
                        attach=OVS_BRIDGE, ovs_port=True, tx_off=tx_off),
    )  # fmt: skip


KERNEL_VXLAN = "vxlan0"


def kernel_vxlan(instance: str, vni: int = 42, prefix: str = "hb") -> tuple[Built, ...]:
    """The network of scenario kvxlan by hand, as Docker's overlay or flannel would: docker0
    with a kernel VXLAN device in it (`ip link add vxlan0 type vxlan id VNI local .. remote
    .. dstport 4789`, MTU 1450); <prefix>-kv1 172.15.42.118 on host1, <prefix>-kv2
    172.15.42.119 on host2. The underlay stays where the lab has it (br-phy)."""
    ensure_image()
    for host in HOSTS:
        p = lab_host(instance, host)
        docker_bridge(p, host)
        p.ip("link", "add", KERNEL_VXLAN, "type", "vxlan", "id", str(vni), "local", UNDERLAY[host],
             "remote", UNDERLAY[PEER[host]], "dstport", "4789")  # fmt: skip
        p.ip("link", "set", KERNEL_VXLAN, "master", DOCKER_BRIDGE, "mtu", "1450", "up")
    return (
        start_container(lab_host(instance, "host1"), f"{prefix}-kv1", "172.15.42.118/24", mtu=1450,
                        attach=DOCKER_BRIDGE, ovs_port=False),
        start_container(lab_host(instance, "host2"), f"{prefix}-kv2", "172.15.42.119/24", mtu=1450,
                        attach=DOCKER_BRIDGE, ovs_port=False),
    )  # fmt: skip


#: exp3's containers: name suffix, host, address (the tag comes from `tags`)
EXP3 = (
    ("vl1", "host1", "172.15.42.114/24"),
    ("vl2", "host1", "172.15.42.115/24"),
    ("vl3", "host2", "172.15.42.116/24"),
    ("vl4", "host2", "172.15.42.117/24"),
)


def exp3_vlan(
    instance: str, tags: Sequence[int | None] = (10, 20, 10, 20), mtu: int = 1458, prefix: str = "hb"
) -> tuple[Built, ...]:
    """Experiment 3 by hand: as exp2 over GRE, with a VLAN tag per port (`ovs-vsctl set port
    X tag=N`). Four containers, in EXP3's order: <prefix>-vl1 and -vl2 on host1, -vl3 and
    -vl4 on host2, tagged tags[0..3] (default 10, 20, 10, 20: vl1-vl3 and vl2-vl4 talk).
    MTU 1458: GRE's 38 bytes plus the 802.1Q tag that travels inside the tunnel."""
    if len(tags) != len(EXP3):
        raise ValueError(f"exp3_vlan wants {len(EXP3)} tags, got {len(tags)}")
    ensure_image()
    for host in HOSTS:
        ovs_bridge(lab_host(instance, host), "gre0", "gre", UNDERLAY[PEER[host]])
    return tuple(
        start_container(lab_host(instance, host), f"{prefix}-{suffix}", cidr, mtu=mtu, attach=OVS_BRIDGE,
                        ovs_port=True, tag=tag, tx_off=True)
        for (suffix, host, cidr), tag in zip(EXP3, tags, strict=True)
    )  # fmt: skip


def all_names(prefix: str = "hb") -> list[str]:
    """Every docker name the lab builders may have started."""
    suffixes = [*EXP1_NAMES, "vx1", "vx2", "kv1", "kv2", *(s for s, _, _ in EXP3)]
    return [f"{prefix}-{s}" for s in suffixes]


# --- real mode: two containers on one host's own OVS -------------------------------------
REAL_BRIDGE = "cn-hbbr0"  # a cn- name in the root namespace: nothing of the machine's is called so
REAL = (("r1", "cn-hbr1", "172.15.42.120/24"), ("r2", "cn-hbr2", "172.15.42.121/24"))


def real_pair(db: str, mtu: int = 1500, prefix: str = "hb") -> tuple[Built, ...]:
    """On this machine (root namespace) with the OVS at `db`: bridge cn-hbbr0 (userspace
    datapath), two --net=none containers whose host-side veths (cn-hbr1, cn-hbr2) are its
    ports, checksum offload off inside. No tunnel: both containers are on this host."""
    ensure_image()
    p = root_place(db)
    ovs_bridge_named(p, REAL_BRIDGE)
    return tuple(
        start_container(p, f"{prefix}-{suffix}", cidr, mtu=mtu, attach=REAL_BRIDGE, ovs_port=True,
                        veth=veth, tx_off=True)
        for suffix, veth, cidr in REAL
    )  # fmt: skip


def ovs_bridge_named(place: Place, bridge: str) -> None:
    place.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    place.ip("link", "set", bridge, "up")


def teardown_real(db: str | None, prefix: str = "hb") -> None:
    """Remove what `real_pair` made: its containers, veths and bridge. Idempotent."""
    remove_containers([f"{prefix}-{suffix}" for suffix, _, _ in REAL])
    p = root_place(db or "")
    for _, veth, _ in REAL:
        if p.has_link(veth):
            p.ip("link", "del", veth, check=False)
    if db:
        p.vsctl("--if-exists", "del-br", REAL_BRIDGE, check=False)


# --- teardown ----------------------------------------------------------------------------------
def remove_containers(names: Iterable[str]) -> None:
    """`docker rm -f` by name; absent ones are fine."""
    names = list(names)
    present = [n for n in names if run("docker", "inspect", n, check=False).returncode == 0]
    if present:
        run("docker", "rm", "-f", *present)


def teardown(instance: str | None, prefix: str = "hb") -> None:
    """Remove exactly what the lab builders made: the containers by their docker names and,
    in the lab's namespaces if they still exist, br0, docker0 and the seed's iptables rules.
    Idempotent; whatever an earlier crashed run left is removed the same way. A br0 that
    carries containet's mark (a scenario's) is left to containet."""
    remove_containers(all_names(prefix))
    if instance is None:
        return
    for host in HOSTS:
        p = lab_host(instance, host)
        if not p.exists():
            continue  # `containet lab down` or `clean` took the namespace and everything in it
        # a removed container's namespace (and so its veth) outlives it while a socket in it
        # is still retrying, e.g. a TCP stream stalled by the MTU trap: delete the seed's
        # tap<pid> ends by hand (nothing but these builders names links tap<pid> in this lab)
        for veth in seed_veths(p):
            p.ip("link", "del", veth, check=False)
        if os.path.exists(p.db.removeprefix("unix:")):
            ids = p.vsctl("--if-exists", "get", "bridge", OVS_BRIDGE, "external_ids", check=False).stdout
            if "containet" not in ids:
                p.vsctl("--if-exists", "del-br", OVS_BRIDGE, check=False)
        for link in (KERNEL_VXLAN, DOCKER_BRIDGE):
            if p.has_link(link) and not _marked_link(p, link):
                p.ip("link", "del", link, check=False)
        for rule in iptables_rules():
            while p.iptables(*_rule("-C", rule), check=False).returncode == 0:
                p.iptables(*_rule("-D", rule))


def seed_veths(place: Place) -> list[str]:
    """Links named as the seed's start-container.sh names a container's host side: tap<pid>."""
    out = place.ip("-j", "link", "show", "type", "veth", check=False).stdout or "[]"
    return [row["ifname"] for row in json.loads(out) if re.fullmatch(r"tap\d+", row.get("ifname", ""))]


def _marked_link(place: Place, name: str) -> bool:
    out = place.ip("-j", "link", "show", "dev", name, check=False).stdout or "[]"
    return any("containet" in (row.get("ifalias") or "") for row in json.loads(out))


# --- checks a user would do by hand ---------------------------------------------------------
def ping(src: Built, dst_ip: str, *, size: int = 56, df: bool = False, count: int = 2) -> bool:
    """The host's iputils ping from inside `src`'s namespace; True when every reply came back."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", "-s", str(size)]
    if df:
        argv += ["-M", "do"]
    out = nsenter(src.pid, *argv, dst_ip, check=False)
    return out.returncode == 0 and f"{count} received" in out.stdout
