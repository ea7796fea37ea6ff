"""Names, marks and the default containers: pure, no root."""

from __future__ import annotations

import pytest

from workbench import marks
from workbench.actions import ContainerSpec, check_spec, tunnel_mtu
from workbench.errors import BadInput
from workbench.host import Host, Place
from workbench.lab import host_names, lab_hosts, underlay_ip
from workbench.setup import default_containers


def test_instance_marks_every_name() -> None:
    # the test suite runs as its own instance, apart from a presenter's lab
    assert marks.INSTANCE
    assert marks.netns_name("host1") == f"cn-{marks.INSTANCE}-host1"
    assert marks.docker_name("h1-a") == f"cn-{marks.INSTANCE}-h1-a"
    assert marks.RUN_DIR.name == marks.INSTANCE
    assert marks.MARK_VALUE == marks.INSTANCE
    assert f"containet:{marks.INSTANCE}" == marks.IPT_COMMENT


def test_host_veth_fits_ifnamsiz() -> None:
    longest = "a" * 12
    assert len(marks.host_veth(marks.check_container_name(longest))) <= marks.IFNAMSIZ


@pytest.mark.parametrize("bad", ["", "A", "1abc", "abc_def", "a" * 13, "web 1", "../x"])
def test_bad_container_names(bad: str) -> None:
    with pytest.raises(BadInput, match="bad container name"):
        marks.check_container_name(bad)


def test_seed_addresses() -> None:
    assert host_names() == ["host1", "host2"]
    assert [underlay_ip(1), underlay_ip(2)] == ["10.0.0.3", "10.0.0.4"]
    h1, h2 = lab_hosts(2)
    assert (h1.underlay_ip, h2.underlay_ip) == ("10.0.0.3", "10.0.0.4")
    assert h1.ovs_db.endswith("/host1/db.sock")


def test_too_many_hosts() -> None:
    with pytest.raises(Exception, match="1 to 8 hosts"):
        host_names(9)


def _hosts(n: int) -> tuple[Host, ...]:
    return tuple(Host(f"host{i}", i, underlay_ip(i), Place.root(), "unix:/dev/null") for i in range(1, n + 1))


def test_default_containers_follow_the_seed() -> None:
    specs = default_containers(_hosts(2), "172.15.42.0/24")
    by_name = {s.name: (s.host, s.cidr, s.vlan) for s in specs}
    assert by_name == {
        "h1-a": ("host1", "172.15.42.100/24", None),
        "h1-b": ("host1", "172.15.42.102/24", None),
        "h2-a": ("host2", "172.15.42.101/24", None),
        "h2-b": ("host2", "172.15.42.103/24", None),
    }


def test_default_containers_with_vlans_and_more_hosts() -> None:
    specs = default_containers(_hosts(3), "172.15.42.0/24", vlans=True)
    assert len({s.cidr for s in specs}) == 6
    assert {s.vlan for s in specs if s.name.endswith("-a")} == {10}
    assert {s.vlan for s in specs if s.name.endswith("-b")} == {20}


def test_tunnel_mtu_leaves_room_for_headers() -> None:
    assert tunnel_mtu("gre") == 1462
    assert tunnel_mtu("vxlan") == 1450


@pytest.mark.parametrize(
    ("cidr", "vlan", "message"),
    [
        ("300.1.1.1/24", None, "not an IPv4 address"),
        ("172.15.42.110", None, "needs a prefix length"),
        ("10.1.1.1/24", None, "outside the container subnet"),
        ("172.15.42.255/24", None, "network or broadcast"),
        ("172.15.42.100/24", None, "already used by h1-a"),
        ("172.15.42.120/24", 0, "out of range"),
        ("172.15.42.120/24", 4095, "out of range"),
    ],
)
def test_check_spec(cidr: str, vlan: int | None, message: str) -> None:
    spec = ContainerSpec("web", "host1", cidr, vlan)
    with pytest.raises(BadInput, match=message):
        check_spec(spec, "172.15.42.0/24", {"172.15.42.100": "h1-a"})


def test_qos_input_checks() -> None:
    from workbench import qos

    assert qos.check(1, None) == 32.0  # never under 32 KB
    assert qos.check(50, None) == 125.0  # 20 ms at the rate
    assert qos.check(200, None) == 500.0
    assert qos.check(50, 2) == 2
    for rate, burst, message in ((0, None, "positive"), (-1, None, "positive"), (50, 1.0, "full-size frame")):
        with pytest.raises(BadInput, match=message):
            qos.check(rate, burst)
    state = qos.QosState("h1-a", "host1", 50, 32, "ovs linux-htb", "tc tbf on eth0 (in the container)")
    assert (
        state.describe()
        == "h1-a: 50 Mbit/s (burst 32 KB) in: ovs linux-htb; out: tc tbf on eth0 (in the container)"
    )
