"""The declared plans: what each experiment builds, in which order (no root)."""

from __future__ import annotations

import pytest

from workbench.engine import Engine, discover_scenarios


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def ids(engine: Engine, name: str) -> list[str]:
    return [s.id for s in engine.plan(name).steps]


def test_entry_points_find_all_scenarios() -> None:
    assert list(discover_scenarios()) == ["exp1", "exp2", "exp3", "vxlan", "kvxlan", "qos", "ovn", "ovn-vlan"]


def test_exp1_follows_the_seed(engine: Engine) -> None:
    assert ids(engine, "exp1")[:5] == [
        "host1/bridge:docker0",
        "host1/ovs:br0",
        "host1/tunnel:gre0",
        "host1/enslave:br0",
        "host1/iptables",
    ]
    plan = engine.plan("exp1")
    runs = [s for s in plan.steps if s.id.split("/")[1].startswith("run:")]
    plumbs = [s for s in plan.steps if s.id.split("/")[1].startswith("plumb:")]
    assert len(runs) == len(plumbs) == 4
    assert all(s.early for s in runs) and not any(s.early for s in plumbs)
    # the seed's oddity is kept and said: host2's containers route via host1's .1
    h2 = next(s for s in plumbs if s.host == "host2")
    assert "host1's bridge" in h2.why
    assert any("ip route add default via 172.15.42.1" in c.text for c in h2.commands)


def test_every_step_explains_itself(engine: Engine) -> None:
    for name in engine.scenarios:
        for step in engine.plan(name).steps:
            assert step.title and step.why.endswith(".") and step.commands, step.id


def test_exp2_has_no_docker0(engine: Engine) -> None:
    steps = engine.plan("exp2").steps
    assert not any("docker0" in s.id for s in steps)
    plumbs = [s for s in steps if "plumb:" in s.id]
    assert all(any(c.text.startswith("ovs-vsctl add-port br0 cn-") for c in s.commands) for s in plumbs)
    assert "no one owns" in plumbs[0].why


def test_exp3_tags_every_port(engine: Engine) -> None:
    plumbs = [s for s in engine.plan("exp3").steps if "plumb:" in s.id]
    tags = {s.id.split(":")[1]: [c.text for c in s.commands if "add-port" in c.text][0] for s in plumbs}
    assert tags["h1-a"].endswith("tag=10") and tags["h2-a"].endswith("tag=10")
    assert tags["h1-b"].endswith("tag=20") and tags["h2-b"].endswith("tag=20")
    assert engine.plan("exp3").expect == {"same_vlan_only": True}


def test_vxlan_uses_vxlan_and_a_smaller_mtu(engine: Engine) -> None:
    steps = engine.plan("vxlan").steps
    tunnels = [s for s in steps if "tunnel:" in s.id]
    assert [s.id for s in tunnels] == ["host1/tunnel:vxlan0", "host2/tunnel:vxlan0"]
    assert "type=vxlan" in tunnels[0].commands[0].text
    plumb = next(s for s in steps if "plumb:" in s.id)
    assert "mtu 1450" in plumb.commands[0].text


def test_exp3_mtu_leaves_room_for_the_vlan_tag(engine: Engine) -> None:
    plumb = next(s for s in engine.plan("exp3").steps if "plumb:" in s.id)
    assert "mtu 1458" in plumb.commands[0].text


def test_userspace_ovs_ports_compute_their_own_checksums(engine: Engine) -> None:
    for name in ("exp2", "exp3", "vxlan"):
        plumb = next(s for s in engine.plan(name).steps if "plumb:" in s.id)
        assert any(c.text == "ethtool -K eth0 tx off" for c in plumb.commands), name
        assert "TCP dies" in plumb.why
    exp1 = next(s for s in engine.plan("exp1").steps if "plumb:" in s.id)
    assert not any("ethtool" in c.text for c in exp1.commands)


def test_mtu_override(engine: Engine) -> None:
    plumb = next(s for s in Engine(mtu=1500).plan("exp1").steps if "plumb:" in s.id)
    assert "mtu 1500" in plumb.commands[0].text


def test_export_is_runnable_bash(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    script = tmp_path / "exp1.sh"
    script.write_text(engine.export("exp1"))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


def test_unknown_scenario(engine: Engine) -> None:
    from workbench.errors import BadInput

    have = "exp1, exp2, exp3, vxlan, kvxlan, qos, ovn, ovn-vlan"
    with pytest.raises(BadInput, match=f"unknown scenario .exp9. \\(have: {have}\\)"):
        engine.plan("exp9")


@pytest.mark.parametrize("name", ["exp1", "exp2", "exp3", "vxlan", "qos", "kvxlan", "ovn", "ovn-vlan"])
def test_every_two_host_plan_ends_when_traffic_flows(engine: Engine, name: str) -> None:
    """`apply` returns when frames cross, not when configuration is written: every
    scenario's last step is the traffic barrier, and it probes within a segment only
    (exp3's VLANs, ovn-vlan's logical switches), or it would wait for what the
    scenario forbids."""
    from workbench.intents import TunnelsCarry

    plan = engine.plan(name)
    last = plan.steps[-1]
    assert isinstance(last.intent, TunnelsCarry) and last.readiness and last.host == ""
    probes = {(src.name, ip) for _h, src, ip in last.intent.probes}
    if name in ("exp3", "ovn-vlan"):  # h1-a/h2-a on 10, h1-b/h2-b on 20
        assert probes == {
            ("h1-a", "172.15.42.101"),
            ("h2-a", "172.15.42.100"),
            ("h1-b", "172.15.42.103"),
            ("h2-b", "172.15.42.102"),
        }
    else:  # each tunnel both ways, and every other container's own port
        assert probes == {
            ("h1-a", "172.15.42.101"),
            ("h2-a", "172.15.42.100"),
            ("h1-b", "172.15.42.101"),
            ("h2-b", "172.15.42.100"),
        }
    # in a shell it waits as the step does: one echo a second, 10 s at most
    assert [c.text for c in last.commands] == [f"ping -c 1 -w 10 {ip}" for _h, _src, ip in last.intent.probes]
