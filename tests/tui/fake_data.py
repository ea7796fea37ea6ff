"""The fake engine's canned data, built from the engine's own types: the
scenarios and their steps, the inventory of the two hosts, the doctor's report,
ping and iperf results. FakeEngine (fake_engine.py) decides which to hand out."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.context import Context
from workbench.doctor import Check, DoctorReport, FixAction, Status
from workbench.intents import Cmd, Intent, LinkUp, Where
from workbench.inventory.model import Container, HostView, Iface, LinuxBridge, OvsBridge, OvsPort
from workbench.measure.iperf_data import IperfInterval, IperfResult
from workbench.measure.ping import PingReply, PingResult, Target, make_result
from workbench.setup import Setup
from workbench.steps import Plan, Step


# --- scenarios ---------------------------------------------------------------------
@dataclass(frozen=True)
class Shown(Intent):
    """An intent that only shows its command: the fake keeps state in its own dict."""

    host: str
    name: str
    cmd: str

    def key(self) -> str:
        return self.name

    def title(self) -> str:
        return self.name

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, self.cmd),)

    def apply(self, ctx: Context) -> None:
        pass

    def verify(self, ctx: Context) -> bool:
        return True


#: every fake scenario has these steps: (host, title, why, command)
STEPS = [
    (
        "host1",
        "linux bridge docker0 172.15.42.1/24",
        "Containers plug into a linux bridge.",
        "ip link add docker0 type bridge",
    ),
    ("host1", "OVS bridge br0", "OVS carries the tunnel.", "ovs-vsctl add-br br0"),
    (
        "host1",
        "GRE port gre0 to 10.0.0.4",
        "Wraps frames in GRE.",
        "ovs-vsctl add-port br0 gre0 -- set interface gre0 type=gre options:remote_ip=10.0.0.4",
    ),
    ("host2", "linux bridge docker0 172.15.42.2/24", "The same on host2.", "ip link add docker0 type bridge"),
    ("host2", "OVS bridge br0", "OVS carries the tunnel.", "ovs-vsctl add-br br0"),
    ("", "run h1-a h2-a", "docker run --net=none.", "docker run -d --net=none --name h1-a containet/busybox"),
]


@dataclass
class FakeScenario:
    """A scenario (workbench.api.Scenario) whose plan is STEPS, whatever the setup."""

    NAME: str
    TITLE: str
    SUMMARY: str

    def plan(self, setup: Setup | None = None) -> Plan:
        steps = tuple(
            Step(Shown(host, f"s{i}", cmd), why, title=title)
            for i, (host, title, why, cmd) in enumerate(STEPS)
        )
        return Plan(self.NAME, self.TITLE, self.SUMMARY, steps)


def scenarios() -> dict[str, FakeScenario]:
    return {
        n: FakeScenario(n, t, s)
        for n, t, s in (
            ("exp1", "Exp1 docker bridge + OVS", "Containers on docker0; OVS br0 carries a GRE tunnel."),
            ("exp2", "Exp2 OVS only", "Containers plugged straight into OVS br0."),
            ("exp3", "Exp3 VLANs", "Exp2 with VLAN tags 10 and 20."),
        )
    }


# --- the inventory -------------------------------------------------------------------
def host_view(
    name: str, index: int, *, lab_up: bool, bridge: bool, tunnel: bool, containers: bool
) -> HostView:
    """Host `index` (1, 2) as the inventory shows it: docker0 once the first step is
    applied (with the container's veth once they run), br0 and gre0 once the tunnel is."""
    if not lab_up:
        return HostView(name, f"10.0.0.{index + 2}", False, False, error="namespace missing")
    phy = OvsBridge("br-phy", "netdev", (OvsPort("eth1"),), ours=True)
    lb: tuple[LinuxBridge, ...] = ()
    obr: tuple[OvsBridge, ...] = (phy,)
    if bridge:
        ports = ("br0", f"cn-h{index}-a") if containers else ("br0",)
        lb = (LinuxBridge("docker0", "UP", 1500, (f"172.15.42.{index}/24",), ports),)
    if tunnel:
        remote = "10.0.0.4" if index == 1 else "10.0.0.3"
        gre = OvsPort("gre0", "gre", None, (("remote_ip", remote),), 1)
        obr = (OvsBridge("br0", "netdev", (gre,), ours=True), phy)
    return HostView(
        name=name,
        underlay_ip=f"10.0.0.{index + 2}",
        reachable=True,
        ovs_connected=True,
        links=(),
        linux_bridges=lb,
        ovs_bridges=obr,
    )


def containers(per_host: int = 1, vlans: bool = False) -> tuple[Container, ...]:
    """h1-a on host1 and h2-a on host2, running, on docker0; with `per_host` > 1 also
    h1-b, h1-c ... and h2-b ... (host1's on even addresses from .100, host2's on odd ones
    from .101, as in the lab). With `vlans` (exp3) the a, c, e ... containers are on
    VLAN 10, the b, d, f ... ones on VLAN 20."""
    out = []
    for n, host in ((1, "host1"), (2, "host2")):
        for k in range(per_host):
            name = f"h{n}-{chr(ord('a') + k)}"
            mac = f"02:00:00:00:{k:02x}:0{n}" if k else f"02:00:00:00:00:0{n}"
            ip = f"172.15.42.{99 + n + 2 * k}/24"
            eth0 = Iface("eth0", "veth", "UP", 1450, mac, (ip,))
            out.append(
                Container(
                    name=name,
                    host=host,
                    docker_name=f"cn-{name}",
                    id=f"abcdef00{k:02x}0{n}",
                    status="running",
                    pid=1000 + n + 10 * k,
                    interfaces=(Iface("lo", "", "UNKNOWN", 65536, "", ("127.0.0.1/8",)), eth0),
                    gateway="172.15.42.1",
                    host_veth=f"cn-{name}",
                    attached_to="docker0",
                    vlan=(20 if k % 2 else 10) if vlans else None,
                    ours=True,
                )
            )
    return tuple(out)


# --- measurements --------------------------------------------------------------------
def ping_result(src: str, dst: str, replies: list[PingReply], dst_ip: str = "172.15.42.101") -> PingResult:
    """The replies folded as the engine folds them."""
    return make_result(src, Target(dst, dst_ip), replies, ())


def iperf_result(src: str, dst: str, udp: bool, intervals: list[IperfInterval]) -> IperfResult:
    """One run: sent is the intervals' mean, received 1% less, no retransmits."""
    sent = sum(i.bits_per_second for i in intervals) / max(1, len(intervals))
    received = sent * 0.99
    return IperfResult(
        src=src,
        dst=dst,
        protocol="UDP" if udp else "TCP",
        seconds=float(len(intervals)),
        sent_bps=sent,
        received_bps=received,
        retransmits=0,
        intervals=tuple(intervals),
        warnings=(),
        runs=(received,),
        median_bps=received,
        spread_pct=0.0,
    )


# --- the doctor ----------------------------------------------------------------------
def doctor_report(src: str, dst: str, veth_down: bool) -> DoctorReport:
    """src (host1) to dst (host2) over exp1; with veth_down, host1's veth is DOWN and
    the report offers to bring it up (a LinkUp intent)."""
    fix = FixAction(
        "bring cn-h1-a up on host1",
        (LinkUp("host1", "cn-h1-a"),),
    )
    ok, warn, fail = Status.OK, Status.WARN, Status.FAIL
    veth = (
        Check(
            "up",
            "veth cn-h1-a (host1)",
            fail,
            "cn-h1-a is DOWN on host1 (container side: DOWN)",
            "ip -n cn-host1 link set cn-h1-a up",
            fix,
        )
        if veth_down
        else Check("up", "veth cn-h1-a (host1)", ok, "cn-h1-a UP, carrier")
    )
    checks = (
        Check("eth0 up", f"container {src} (host1)", warn if veth_down else ok, "eth0 UP"),
        Check("address", f"container {src} (host1)", ok, "eth0 172.15.42.100/24 in 172.15.42.0/24"),
        veth,
        Check("MTU pair", "veth cn-h1-a (host1)", ok, "both ends MTU 1462"),
        Check("up", "docker0 (host1)", ok, "docker0 UP, mtu 1462, 172.15.42.1/24"),
        Check("ofproto/trace", "OVS br0 (host1)", ok, "frame leaves by gre0 (tunnelled to 10.0.0.4)"),
        Check("remote_ip", "tunnel gre0 (host1)", ok, "remote_ip=10.0.0.4 is host2's underlay address"),
        Check("address", f"container {dst} (host2)", ok, "eth0 172.15.42.101/24 in 172.15.42.0/24"),
        Check(
            "ping",
            "end to end",
            fail if veth_down else ok,
            "84 B 0/2" if veth_down else "84 B 2/2, 1462 B DF 2/2",
        ),
    )
    return DoctorReport(src, dst, "host1", "host2", "exp1", checks, seconds=0.4)
