"""Step factories: the building blocks scenarios declare.

Each factory returns a Step whose apply/verify/undo use the libraries
(pyroute2, ovsdbapp, docker SDK; iptables as an argument list) and whose
commands are the shell equivalent a presenter would type on the seed's VMs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import containers as dk
from . import links
from .errors import BadInput
from .host import Host, Place
from .marks import (
    IMAGE,
    IPT_COMMENT,
    LABEL,
    LABEL_HOST,
    LABEL_NAME,
    MARK_VALUE,
    OVS_MARK,
    docker_name,
    host_veth,
)
from .ovs import one
from .steps import Cmd, Context, Step

# Bytes a tunnel adds in front of the inner Ethernet frame, and the Ethernet
# header itself: outer IPv4 (20) + GRE (4) or UDP (8) + VXLAN (8), + inner 14.
TUNNEL_OVERHEAD = {"gre": 20 + 4 + 14, "vxlan": 20 + 8 + 8 + 14}
UNDERLAY_MTU = 1500


def tunnel_mtu(tun_type: str, underlay_mtu: int = UNDERLAY_MTU) -> int:
    """The largest container MTU whose packets still fit the tunnel."""
    return underlay_mtu - TUNNEL_OVERHEAD.get(tun_type, 50)


def pid_expr(container: str) -> str:
    return f"$(docker inspect -f '{{{{.State.Pid}}}}' {docker_name(container)})"


def render(host: Host, cmd: Cmd) -> str:
    """The command as it runs here: in lab mode, inside the host's namespace."""
    text = cmd.text
    if cmd.where.startswith("container:"):
        name = cmd.where.split(":", 1)[1]
        return f"nsenter -t {pid_expr(name)} -n {text}"
    if host.real or cmd.where == "docker":
        return text
    if cmd.where == "ovs" and text.startswith("ovs-vsctl "):
        return f"ovs-vsctl --db={host.ovs_db} {text[len('ovs-vsctl ') :]}"
    ns = host.netns
    if text.startswith("ip "):
        return f"ip -n {ns} {text[3:]}"
    return f"ip netns exec {ns} {text}"


def render_plain(host: Host, cmd: Cmd) -> str:
    """The command as typed on the host itself (the seed's VMs)."""
    if cmd.where.startswith("container:"):
        name = cmd.where.split(":", 1)[1]
        return f"ip netns exec {name} {cmd.text}"
    return cmd.text


def _netlink(ctx: Context, host: str, fn, *args):  # type: ignore[no-untyped-def]
    return ctx.netlink(ctx.host(host).place, fn, *args)


# --- linux bridge ----------------------------------------------------------
def linux_bridge(host: str, name: str, address: str, *, why: str) -> Step:
    """A linux bridge with an address. A bridge we create carries our mark (its
    ifalias); one that was there before (docker's own docker0 on a real host) only
    gets the address, and undo takes back only the address."""

    def apply(ctx: Context) -> None:
        def do(ipr):  # type: ignore[no-untyped-def]
            links.add_bridge(ipr, name, mark=IPT_COMMENT)
            links.add_address(ipr, name, address)
            links.set_up(ipr, name)

        _netlink(ctx, host, do)

    def verify(ctx: Context) -> bool:
        row = _netlink(ctx, host, links.link_row, name)
        return row is not None and row.kind == "bridge" and address in row.addresses and row.admin_up

    def undo(ctx: Context) -> None:
        def do(ipr):  # type: ignore[no-untyped-def]
            row = links.link_row(ipr, name)
            if row is None:
                return
            if row.alias == IPT_COMMENT:
                links.delete_link(ipr, name)
            else:
                links.delete_address(ipr, name, address)

        _netlink(ctx, host, do)

    return Step(
        id=f"{host}/bridge:{name}",
        host=host,
        title=f"linux bridge {name} {address}",
        why=why,
        commands=(
            Cmd("host", f"ip link add {name} type bridge"),
            Cmd("host", f"ip link set {name} alias {IPT_COMMENT}"),  # containet's mark
            Cmd("host", f"ip addr add {address} dev {name}"),
            Cmd("host", f"ip link set {name} up"),
        ),
        apply=apply,
        verify=verify,
        undo=undo,
    )


# --- OVS bridge and tunnel ---------------------------------------------------
def ovs_bridge(host: str, name: str, *, why: str, datapath: str = "netdev") -> Step:
    def apply(ctx: Context) -> None:
        ctx.ovs(host).add_bridge(name, datapath_type=datapath)

        def up(ipr):  # type: ignore[no-untyped-def]
            if links.index_of(ipr, name) is not None:
                links.set_up(ipr, name)

        _netlink(ctx, host, up)

    def verify(ctx: Context) -> bool:
        if not ctx.ovs(host).has_bridge(name):
            return False
        row = _netlink(ctx, host, links.link_row, name)
        if row is not None and not row.admin_up:
            _netlink(ctx, host, links.set_up, name)  # the tap appears a moment later
            return False
        return row is not None

    def undo(ctx: Context) -> None:
        ovs = ctx.ovs(host)
        if ovs.is_ours("Bridge", name):  # a bridge that was there before stays
            ovs.del_bridge(name)

    dp = f" datapath_type={datapath}" if datapath != "system" else ""
    dp = f" -- set bridge {name}{dp} external_ids:{OVS_MARK}={MARK_VALUE}"
    return Step(
        id=f"{host}/ovs:{name}",
        host=host,
        title=f"OVS bridge {name}",
        why=why,
        commands=(
            Cmd("ovs", f"ovs-vsctl add-br {name}{dp}"),
            Cmd("host", f"ip link set {name} up"),
        ),
        apply=apply,
        verify=verify,
        undo=undo,
    )


def tunnel_port(host: str, bridge: str, port: str, tun_type: str, remote_ip: str, *, why: str) -> Step:
    options = {"remote_ip": remote_ip}

    def apply(ctx: Context) -> None:
        ctx.ovs(host).add_port(bridge, port, iface_type=tun_type, options=options)

    def verify(ctx: Context) -> bool:
        ovs = ctx.ovs(host)
        iface = ovs.row("Interface", port)
        return (
            iface is not None
            and port in ovs.ports(bridge)
            and iface.get("type") == tun_type
            and (iface.get("options") or {}).get("remote_ip") == remote_ip
        )

    def undo(ctx: Context) -> None:
        ctx.ovs(host).del_port(port)

    return Step(
        id=f"{host}/tunnel:{port}",
        host=host,
        title=f"{tun_type.upper()} port {port} on {bridge} -> {remote_ip}",
        why=why,
        commands=(
            Cmd(
                "ovs",
                f"ovs-vsctl add-port {bridge} {port} -- set interface {port} "
                f"type={tun_type} options:remote_ip={remote_ip}",
            ),
        ),
        apply=apply,
        verify=verify,
        undo=undo,
    )


def bridge_rstp(host: str, bridge: str, *, why: str) -> Step:
    def read(ctx: Context) -> bool:
        row = ctx.ovs(host).row("Bridge", bridge) or {}
        return bool(row.get("rstp_enable"))

    def apply(ctx: Context) -> None:
        ctx.ovs(host).api.db_set("Bridge", bridge, ("rstp_enable", True)).execute(check_error=True)

    def undo(ctx: Context) -> None:
        if ctx.ovs(host).has_bridge(bridge):
            ctx.ovs(host).api.db_set("Bridge", bridge, ("rstp_enable", False)).execute(check_error=True)

    return Step(
        id=f"{host}/rstp:{bridge}",
        host=host,
        title=f"RSTP on {bridge}",
        why=why,
        commands=(Cmd("ovs", f"ovs-vsctl set bridge {bridge} rstp_enable=true"),),
        apply=apply,
        verify=read,
        undo=undo,
    )


def enslave(host: str, link: str, master: str, *, why: str) -> Step:
    def apply(ctx: Context) -> None:
        _netlink(ctx, host, links.set_master, link, master)

    def verify(ctx: Context) -> bool:
        row = _netlink(ctx, host, links.link_row, link)
        return row is not None and row.master == master

    def undo(ctx: Context) -> None:
        def do(ipr):  # type: ignore[no-untyped-def]
            row = links.link_row(ipr, link)
            if row is not None and row.master == master:
                links.set_master(ipr, link, None)

        _netlink(ctx, host, do)

    return Step(
        id=f"{host}/enslave:{link}",
        host=host,
        title=f"put {link} into {master}",
        why=why,
        commands=(Cmd("host", f"ip link set {link} master {master}"),),
        apply=apply,
        verify=verify,
        undo=undo,
    )


# --- iptables ------------------------------------------------------------------
def seed_rules(subnet: str, ovs_bridge: str) -> list[tuple[str, list[str]]]:
    """The seed's iptables.sh: NAT out of the subnet, FORWARD through the bridge."""
    return [
        ("nat", ["POSTROUTING", "-s", subnet, "!", "-d", subnet, "-j", "MASQUERADE"]),
        (
            "filter",
            [
                "FORWARD",
                "-o",
                ovs_bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ],
        ),
        ("filter", ["FORWARD", "-i", ovs_bridge, "!", "-o", ovs_bridge, "-j", "ACCEPT"]),
        ("filter", ["FORWARD", "-i", ovs_bridge, "-o", ovs_bridge, "-j", "ACCEPT"]),
    ]


def _ipt(table: str, op: str, rule: list[str]) -> list[str]:
    return ["iptables", "-w", "-t", table, op, rule[0], *rule[1:], "-m", "comment", "--comment", IPT_COMMENT]


def _restore_text(rules: list[tuple[str, list[str]]]) -> str:
    lines = []
    for table in dict.fromkeys(t for t, _ in rules):
        lines.append(f"*{table}")
        for t, rule in rules:
            if t == table:
                lines.append(" ".join(["-A", *rule, "-m", "comment", "--comment", IPT_COMMENT]))
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _check_text(rules: list[tuple[str, list[str]]]) -> str:
    return _restore_text(rules).replace("\n-A ", "\n-C ")


def iptables_rules(host: str, rules: list[tuple[str, list[str]]], *, why: str) -> Step:
    def present(ctx: Context, table: str, rule: list[str]) -> bool:
        return ctx.run(ctx.host(host).place, _ipt(table, "-C", rule), check=False).returncode == 0

    def apply(ctx: Context) -> None:
        todo = [tr for tr in rules if not present(ctx, *tr)]
        if todo:  # one iptables-restore for all of them, appended in order
            ctx.run(ctx.host(host).place, ["iptables-restore", "--noflush", "-w"], stdin=_restore_text(todo))

    def verify(ctx: Context) -> bool:
        """Every rule there, asked in one go: iptables-restore stops at a -C that fails."""
        check = ["iptables-restore", "--noflush", "-w"]
        return ctx.run(ctx.host(host).place, check, check=False, stdin=_check_text(rules)).returncode == 0

    def undo(ctx: Context) -> None:
        for table, rule in rules:
            while present(ctx, table, rule):
                ctx.run(ctx.host(host).place, _ipt(table, "-D", rule))

    return Step(
        id=f"{host}/iptables",
        host=host,
        title="NAT and FORWARD rules",
        why=why,
        commands=tuple(Cmd("host", " ".join(_ipt(t, "-A", r)).replace(" -w", "")) for t, r in rules),
        apply=apply,
        verify=verify,
        undo=undo,
    )


# --- containers ------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerSpec:
    name: str
    host: str
    cidr: str  # e.g. 172.15.42.100/24
    vlan: int | None = None

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]


def check_spec(spec: ContainerSpec, subnet: str, taken: dict[str, str]) -> None:
    """Reject a bad container before anything changes (taken: ip -> name)."""
    try:
        iface = ipaddress.IPv4Interface(spec.cidr)
    except ValueError:
        raise BadInput(f"{spec.cidr!r} is not an IPv4 address with prefix (e.g. 172.15.42.110/24)") from None
    if "/" not in spec.cidr:
        raise BadInput(f"{spec.cidr!r} needs a prefix length (e.g. {spec.cidr}/24)")
    net = ipaddress.IPv4Network(subnet)
    if iface.ip not in net:
        raise BadInput(f"{iface.ip} is outside the container subnet {net}")
    if iface.ip in (net.network_address, net.broadcast_address):
        raise BadInput(f"{iface.ip} is the network or broadcast address of {net}")
    other = taken.get(str(iface.ip))
    if other and other != spec.name:
        raise BadInput(f"{iface.ip} is already used by {other}")
    if spec.vlan is not None and not 1 <= spec.vlan <= 4094:
        raise BadInput(f"VLAN {spec.vlan} is out of range (1-4094)")


def container_run(spec: ContainerSpec, *, why: str) -> Step:
    dname = docker_name(spec.name)

    def apply(ctx: Context) -> None:
        ctx.forget(spec.name)
        try:
            row = dk.run(ctx.docker, spec.name, spec.host)
        except BadInput:  # the name is taken: by a container of ours left stopped?
            found = dk.find(ctx.docker, spec.name)
            if found is None:
                raise
            row = found
            if row.status != "running":
                dk.remove(ctx.docker, row.id)
                row = dk.run(ctx.docker, spec.name, spec.host)
        ctx.remember(row)

    def verify(ctx: Context) -> bool:
        row = ctx.container(spec.name)
        return row is not None and row.status == "running" and row.host == spec.host and row.pid > 0

    def undo(ctx: Context) -> None:
        ctx.forget(spec.name)
        dk.remove(ctx.docker, dname)

    return Step(
        id=f"{spec.host}/run:{spec.name}",
        host=spec.host,
        title=f"docker run {spec.name} --net=none",
        why=why,
        commands=(
            Cmd(
                "docker",
                f"docker run -d --net=none --name {dname} --label {LABEL}={MARK_VALUE} "
                f"--label {LABEL_HOST}={spec.host} --label {LABEL_NAME}={spec.name} "
                f"{IMAGE} sleep 2147483647",
            ),
        ),
        apply=apply,
        verify=verify,
        undo=undo,
        early=True,
        settle=1.0,
        subject=spec.name,
    )


@dataclass(frozen=True)
class Attach:
    """Where a container's host-side veth goes: a linux bridge or an OVS bridge."""

    bridge: str
    ovs: bool = False


def container_plumb(
    spec: ContainerSpec,
    attach: Attach,
    gateway: str | None,
    mtu: int,
    *,
    why: str,
    tx_offload: bool = True,
) -> Step:
    """The seed's start-container.sh. With tx_offload=False the container's eth0
    computes its own TCP/UDP checksums: OVS's userspace datapath forwards frames
    from a veth port as they are, so a checksum left to the "NIC" would never be
    filled in and TCP would die silently while ping (checksummed in software) works."""
    veth = host_veth(spec.name)
    host = spec.host

    def apply(ctx: Context) -> None:
        row = ctx.container(spec.name)
        if row is None or not row.pid:
            raise BadInput(f"container {spec.name} is not running")
        place = ctx.host(host).place

        def host_side(ipr):  # type: ignore[no-untyped-def]
            stale = links.link_row(ipr, veth)
            if stale is not None and stale.alias == IPT_COMMENT:
                links.delete_link(ipr, veth)  # a stale half from an earlier run
            master = None if attach.ovs else attach.bridge
            links.add_veth_into(ipr, veth, "eth0", row.pid, mtu, master=master, alias=IPT_COMMENT)

        ctx.netlink(place, host_side)
        inside = Place.of_pid(row.pid, spec.name)
        ctx.netlink(inside, links.configure_iface, "eth0", spec.cidr, gateway, mtu)
        if not tx_offload:
            ctx.call(inside, links.tx_checksum, "eth0", False)
        if attach.ovs:
            ctx.ovs(host).add_port(attach.bridge, veth, tag=spec.vlan)

    def verify(ctx: Context) -> bool:
        row = ctx.container(spec.name)
        if row is None or not row.pid:
            return False
        hrow = _netlink(ctx, host, links.link_row, veth)
        if hrow is None or not hrow.admin_up or hrow.mtu != mtu:
            return False
        if attach.ovs:
            ovs = ctx.ovs(host)
            if veth not in ovs.ports(attach.bridge):
                return False
            if one((ovs.row("Port", veth) or {}).get("tag")) != spec.vlan:
                return False
        elif hrow.master != attach.bridge:
            return False
        inside = Place.of_pid(row.pid, spec.name)
        crow = ctx.netlink(inside, links.link_row, "eth0")
        if crow is None or spec.cidr not in crow.addresses or crow.mtu != mtu or not crow.admin_up:
            return False
        return tx_offload or not ctx.call(inside, links.tx_checksum, "eth0")

    def undo(ctx: Context) -> None:
        if attach.ovs:
            ctx.ovs(host).del_port(veth)
        _netlink(ctx, host, links.delete_link, veth)

    pid = pid_expr(spec.name)
    cmds = [
        Cmd("host", f"ip link add {veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {pid}"),
        Cmd(f"container:{spec.name}", f"ip addr add {spec.cidr} dev eth0"),
        Cmd(f"container:{spec.name}", "ip link set eth0 up"),
    ]
    if gateway:
        cmds.append(Cmd(f"container:{spec.name}", f"ip route add default via {gateway}"))
    if not tx_offload:
        cmds.append(Cmd(f"container:{spec.name}", "ethtool -K eth0 tx off"))
    if attach.ovs:
        tag = f" tag={spec.vlan}" if spec.vlan is not None else ""
        cmds.append(Cmd("ovs", f"ovs-vsctl add-port {attach.bridge} {veth}{tag}"))
    else:
        cmds.append(Cmd("host", f"ip link set {veth} master {attach.bridge}"))
    cmds.append(Cmd("host", f"ip link set {veth} alias {IPT_COMMENT} up"))
    where = f"OVS {attach.bridge}" + (f" VLAN {spec.vlan}" if spec.vlan is not None else "")
    return Step(
        id=f"{host}/plumb:{spec.name}",
        host=host,
        title=f"wire {spec.name} {spec.cidr} to {where if attach.ovs else attach.bridge}",
        why=why,
        commands=tuple(cmds),
        apply=apply,
        verify=verify,
        undo=undo,
        subject=spec.name,
    )


# --- QoS ---------------------------------------------------------------------------
def qos_cap(spec: ContainerSpec, rate_mbit: float, *, on_ovs: bool, why: str) -> Step:
    """Cap a container both ways (see workbench.qos for what enforces it here)."""
    from . import qos

    burst = qos.check(rate_mbit, None)

    def target(ctx: Context) -> qos.Target:
        row = ctx.container(spec.name)
        if row is None or not row.pid:
            raise BadInput(f"container {spec.name} is not running")
        return qos.Target(spec.name, ctx.host(spec.host), row.pid, on_ovs)

    def apply(ctx: Context) -> None:
        qos.apply(target(ctx), ctx.ovs(spec.host) if on_ovs else None, rate_mbit, burst)

    def verify(ctx: Context) -> bool:
        state = qos.read(target(ctx), ctx.ovs(spec.host) if on_ovs else None)
        return state.rate_mbit is not None and abs(state.rate_mbit - rate_mbit) < 0.01 * rate_mbit

    def undo(ctx: Context) -> None:
        row = ctx.container(spec.name)
        pid = row.pid if row is not None else 0
        where = qos.Target(spec.name, ctx.host(spec.host), pid, on_ovs)
        qos.clear(where, ctx.ovs(spec.host) if on_ovs else None)

    veth = host_veth(spec.name)
    bps = int(rate_mbit * 1e6)
    tbf = f"tbf rate {rate_mbit:g}mbit burst {burst:g}kb latency 50ms"
    down = (
        Cmd(
            "ovs",
            f"ovs-vsctl set port {veth} qos=@q -- --id=@q create qos type=linux-htb "
            f"other-config:max-rate={bps} queues:0=@q0 -- --id=@q0 create queue other-config:max-rate={bps}",
        )
        if on_ovs
        else Cmd("host", f"tc qdisc add dev {veth} root {tbf}")
    )
    up = Cmd(
        f"container:{spec.name}",
        f"tc qdisc add dev eth0 root {tbf}",
    )
    return Step(
        id=f"{spec.host}/qos:{spec.name}",
        host=spec.host,
        title=f"cap {spec.name} at {rate_mbit:g} Mbit/s",
        why=why,
        commands=(down, up),
        apply=apply,
        verify=verify,
        undo=undo,
        subject=spec.name,
    )
