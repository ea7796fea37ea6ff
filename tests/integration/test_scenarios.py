"""The seed's experiments on the real lab: packets cross the tunnel (or, across
VLANs, do not); apply twice, undo and a failed step leave the state they found;
bad input changes nothing."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from tests_support import container_ping, normalized

from workbench import links
from workbench.engine import Engine
from workbench.errors import BadInput, StepFailed
from workbench.host import Place
from workbench.intents import Cmd, Intent
from workbench.marks import docker_name
from workbench.steps import Plan, Step

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("name", ["exp1", "exp2", "vxlan"])
def test_containers_talk_across_the_tunnel(applied: Callable[[str], Engine], name: str) -> None:
    engine = applied(name)
    snap = engine.snapshot()
    assert {c.name: c.ip for c in snap.containers} == {
        "h1-a": "172.15.42.100",
        "h1-b": "172.15.42.102",
        "h2-a": "172.15.42.101",
        "h2-b": "172.15.42.103",
    }
    # cross-host both ways, and same-host
    assert container_ping("h1-a", "172.15.42.101")
    assert container_ping("h2-b", "172.15.42.100")
    assert container_ping("h1-a", "172.15.42.102")
    tunnels = [p for h in snap.hosts for p in h.tunnels]
    assert {p.type for p in tunnels} == {"vxlan" if name == "vxlan" else "gre"}
    assert {p.remote_ip for p in tunnels} == {"10.0.0.3", "10.0.0.4"}


@pytest.mark.parametrize(
    ("name", "src", "dst", "mtu"),
    [
        ("exp1", "h1-a", "h2-a", 1462),
        ("exp2", "h1-a", "h2-a", 1462),
        ("exp3", "h1-b", "h2-b", 1458),  # the VLAN tag rides inside the tunnel: 4 bytes less
        ("vxlan", "h1-a", "h2-a", 1450),
    ],
)
def test_full_size_frames_and_tcp_cross_the_tunnel(
    applied: Callable[[str], Engine], name: str, src: str, dst: str, mtu: int
) -> None:
    """Not only ping: TCP, and frames as big as the interface allows (the traps
    are checksum offload over OVS's userspace datapath and the tunnel's MTU)."""
    engine = applied(name)
    snap = engine.snapshot()
    target = snap.container(dst)
    assert target is not None and target.ip is not None
    assert {c.mtu for c in snap.containers} == {mtu}
    assert container_ping(src, target.ip, size=mtu - 28, df=True)
    result = engine.iperf(src, dst, seconds=1)
    assert result.received_bps > 10e6, result.warnings
    assert not [w for w in result.warnings if w.startswith("nothing arrived")]


def test_exp1_containers_reach_their_gateway_and_hang_on_docker0(applied: Callable[[str], Engine]) -> None:
    engine = applied("exp1")
    snap = engine.snapshot()
    h1 = snap.host("host1")
    assert h1 is not None
    docker0 = next(b for b in h1.linux_bridges if b.name == "docker0")
    assert docker0.addresses == ("172.15.42.1/24",)
    assert set(docker0.ports) == {"br0", "cn-h1-a", "cn-h1-b"}
    assert all(c.attached_to == "docker0" and c.gateway == "172.15.42.1" for c in snap.containers)
    assert container_ping("h1-a", "172.15.42.1")  # host1's docker0
    assert container_ping("h2-a", "172.15.42.2")  # host2's docker0


def test_docker_leaves_the_containers_network_to_us(applied: Callable[[str], Engine]) -> None:
    """Containers are started with docker's networking disabled: each still has a
    namespace of its own, and in it only lo and the eth0 the plumbing made."""
    applied("exp1")
    cli = docker.from_env()
    try:
        for name in ("h1-a", "h2-b"):
            attrs = cli.containers.get(docker_name(name)).attrs
            assert attrs["Config"].get("NetworkDisabled") is True
            assert attrs["HostConfig"]["NetworkMode"] == "none"
            pid = attrs["State"]["Pid"]
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
            argv = ["nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show"]
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            assert sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines()) == [
                "eth0",
                "lo",
            ]
    finally:
        cli.close()


def test_a_context_works_in_each_namespace_from_any_thread_and_lets_go(engine: Engine) -> None:
    """One worker per namespace per context: the socket it uses lives in that
    namespace whichever thread asks, and nothing of it outlives the context."""
    hosts = {h.name: h for h in engine.hosts()}
    with engine.context() as ctx:
        with ThreadPoolExecutor(max_workers=4) as pool:
            rows = list(
                pool.map(
                    lambda h: ctx.netlink(hosts[h].place, links.link_row, "br-phy"), ["host1", "host2"] * 4
                )
            )
        assert {r.addresses for r in rows if r is not None} == {("10.0.0.3/24",), ("10.0.0.4/24",)}
        assert all(r is not None for r in rows)
        assert ctx.netlink(Place.root(), links.link_row, "br-phy") is None  # the root namespace has none
        assert any(t.name.startswith("netns:") for t in threading.enumerate())
    assert not any(t.name.startswith("netns:") for t in threading.enumerate())


def test_exp3_only_same_vlan_talks(applied: Callable[[str], Engine]) -> None:
    engine = applied("exp3")
    vlans = {c.name: c.vlan for c in engine.snapshot().containers}
    assert vlans == {"h1-a": 10, "h2-a": 10, "h1-b": 20, "h2-b": 20}
    assert container_ping("h1-a", "172.15.42.101")  # VLAN 10 across the tunnel
    assert container_ping("h1-b", "172.15.42.103")  # VLAN 20 across the tunnel
    assert not container_ping("h1-a", "172.15.42.103")  # 10 -> 20, other host
    assert not container_ping("h1-a", "172.15.42.102")  # 10 -> 20, same host


def test_mtu_fits_the_tunnel_and_1500_is_the_trap(engine: Engine) -> None:
    engine.apply("exp2")
    # a full-size frame with don't-fragment crosses GRE at the default MTU
    assert container_ping("h1-a", "172.15.42.101", size=1462 - 28, df=True)
    engine.undo("exp2")
    trap = Engine(mtu=1500)
    trap.apply("exp2")
    try:
        assert container_ping("h1-a", "172.15.42.101")  # small pings still work...
        assert not container_ping("h1-a", "172.15.42.101", size=1500 - 28, df=True)  # ...big frames vanish
    finally:
        trap.undo("exp2")


def test_apply_twice_is_the_same_state_and_undo_restores(engine: Engine) -> None:
    before = normalized(engine.snapshot())
    assert engine.apply("exp1") == 19  # 18 steps, then the traffic barrier
    once = normalized(engine.snapshot())
    assert engine.apply("exp1") == 0
    assert normalized(engine.snapshot()) == once
    assert engine.undo("exp1") == 18  # the barrier changed nothing: nothing to undo
    assert normalized(engine.snapshot()) == before
    assert engine.undo("exp1") == 0
    assert engine.active() is None


def test_step_by_step_and_back(engine: Engine) -> None:
    plan = engine.plan("exp2")
    for i in range(3):
        assert engine.next_step("exp2") == i
    assert engine.status("exp2")[:4] == [True, True, True, False]
    assert engine.back_step("exp2") == 2
    assert engine.status("exp2")[:3] == [True, True, False]
    engine.undo("exp2")
    assert engine.status("exp2") == [False] * len(plan.steps)


def test_a_failing_step_rolls_back_to_the_state_it_found(engine: Engine) -> None:
    engine.apply("exp2")
    engine.undo("exp2")
    engine.next_step("exp2")  # one step already there: must survive the rollback
    before = normalized(engine.snapshot())

    @dataclass(frozen=True)
    class Boom(Intent):
        """An intent whose apply breaks (after the first six steps of exp2 held)."""

        host: str

        def key(self) -> str:
            return "boom"

        def title(self) -> str:
            return "injected failure"

        def commands(self) -> tuple[Cmd, ...]:
            return ()

        def apply(self, ctx: Any) -> None:
            raise RuntimeError("injected fault")

        def verify(self, ctx: Any) -> bool:
            return False

    bad = Step(Boom("host2"), "A test.")
    real = engine.plan("exp2")
    plan = Plan(real.name, real.title, real.summary, real.steps[:6] + (bad,) + real.steps[6:])
    with engine.context() as ctx, pytest.raises(StepFailed, match="injected fault"):
        plan.apply(ctx)
    assert normalized(engine.snapshot()) == before


def test_switching_scenarios_needs_an_undo(engine: Engine) -> None:
    engine.apply("exp2")
    with pytest.raises(BadInput, match="scenario exp2 is applied: `containet scenario undo exp2` first"):
        engine.apply("exp1")


def test_undo_or_back_of_another_scenario_is_refused_and_changes_nothing(
    engine: Engine, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """exp3's plan shares exp1's bridge, tunnel and containers: undoing it while exp1 is
    applied used to tear those down. Now one line, exit 2, and exp1 still talks."""
    engine.apply("exp1")
    before = normalized(engine.snapshot())
    for action in ("undo", "back"):
        out = cli("scenario", action, "exp3")
        assert out.returncode == 2 and out.stdout == "", out.stdout
        said = "scenario exp1 is applied, not exp3: `containet scenario undo exp1` takes it back"
        assert out.stderr == f"containet: error: {said}\n"
    assert normalized(engine.snapshot()) == before
    assert cli("pingall").returncode == 0


def test_container_add_and_rm(applied: Callable[[str], Engine]) -> None:
    engine = applied("exp3")
    engine.container_add("host2", "web", "172.15.42.120/24", vlan=20)
    snap = engine.snapshot()
    web = snap.container("web")
    assert web is not None and (web.host, web.ip, web.vlan, web.attached_to) == (
        "host2",
        "172.15.42.120",
        20,
        "br0",
    )
    assert container_ping("h1-b", "172.15.42.120")  # VLAN 20 from host1
    assert not container_ping("h1-a", "172.15.42.120")  # VLAN 10 does not see it
    engine.container_rm("web")
    snap = engine.snapshot()
    assert snap.container("web") is None
    assert all(p.name != "cn-web" for h in snap.hosts for b in h.ovs_bridges for p in b.ports)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["host1", "web", "172.15.42.300/24"], "is not an IPv4 address"),
        (["host1", "web", "10.9.9.9/24"], "outside the container subnet"),
        (["host1", "web", "172.15.42.101/24"], "already used by h2-a"),
        (["host1", "web", "172.15.42.1/24"], "already used by host1's bridge"),
        (["host9", "web", "172.15.42.120/24"], "unknown host 'host9'"),
        (["host1", "Web!", "172.15.42.120/24"], "bad container name"),
        (["host1", "h1-a", "172.15.42.120/24"], "container h1-a already exists"),
        (["host1", "web", "172.15.42.120/24", "--vlan", "5000"], "out of range"),
        (["host1", "web", "172.15.42.120/24", "--vlan", "10"], "--vlan needs the exp3 scenario"),
    ],
)
def test_bad_container_add_changes_nothing(
    kept: Callable[[str], Engine], cli: Callable[..., Any], args: list[str], message: str
) -> None:
    engine = kept("exp1")
    before = normalized(engine.snapshot())
    out = cli("container", "add", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("containet: error: ") and message in lines[0]
    assert normalized(engine.snapshot()) == before


def test_unknown_container_rm(kept: Callable[[str], Engine], cli: Callable[..., Any]) -> None:
    kept("exp1")
    out = cli("container", "rm", "ghost")
    assert out.returncode == 2 and "unknown container 'ghost'" in out.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("export BRIDGE_ADDRESS='172.15.42.1/33'", "BRIDGE_ADDRESS='172.15.42.1/33' is not an IPv4 address"),
        ("export BRIDGE_ADDRESS='10.1.1.1/24'", "is not inside SUBNET"),
        ("export TUN_TYPE='ipip'", "is not a known tunnel type"),
        ("export REMOTE_IP=''", "REMOTE_IP is missing"),
        ("export OVS_BRIDGE='br0-with-a-long-name'", "is not an interface name"),
    ],
)
def test_bad_tunrc_changes_nothing(
    engine: Engine, cli: Callable[..., Any], tmp_path: Path, line: str, message: str
) -> None:
    from workbench.setup import shipped_tunrc

    for host in ("host1", "host2"):
        text = shipped_tunrc(host).render()
        if host == "host2":
            key = line.split("=")[0]
            text = "\n".join(x for x in text.splitlines() if not x.startswith(key + "=")) + "\n" + line + "\n"
        (tmp_path / f"{host}_tunrc").write_text(text)
    before = normalized(engine.snapshot())
    out = cli("--tunrc-dir", str(tmp_path), "scenario", "apply", "exp1")
    assert out.returncode == 2, out.stdout
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path}/host2_tunrc: " in err[0] and message in err[0]
    assert normalized(engine.snapshot()) == before
    assert engine.active() is None


@pytest.mark.parametrize("name", ["exp1", "exp3"])
def test_the_exported_script_builds_what_the_engine_builds(engine: Engine, tmp_path: Path, name: str) -> None:
    """`scenario export` is a real script: run by bash, the plan verifies; the
    engine's undo then takes everything back (the script marks what it makes)."""
    import subprocess

    before = normalized(engine.snapshot())
    script = tmp_path / f"{name}.sh"
    script.write_text(engine.export(name))
    try:
        out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-500:]
        assert all(engine.status(name))
        assert container_ping("h1-a", "172.15.42.101")
    finally:
        with engine.context() as ctx:
            engine.plan(name).undo(ctx)
    assert normalized(engine.snapshot()) == before
