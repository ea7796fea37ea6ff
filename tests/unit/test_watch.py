"""The pure parts of inventory.watch: folding changes into what to re-read."""

from __future__ import annotations

from workbench.inventory.watch import BACKOFF, Change, Dirty, SourceState, dirty


def test_docker_changes_mean_the_container_list() -> None:
    assert dirty([Change("docker"), Change("docker", detail="start")]) == Dirty(frozenset(), True)


def test_host_changes_mean_that_host_and_the_containers() -> None:
    what = dirty([Change("netlink", "host1")] * 20 + [Change("ovs", "host2")])
    assert what.hosts == frozenset({"host1", "host2"}) and what.containers


def test_nothing_to_do() -> None:
    assert not dirty([])
    assert not Dirty()


def test_source_states_count_as_changes_of_what_they_cover() -> None:
    assert dirty([SourceState("ovs", "host2", False, "gone")]).hosts == frozenset({"host2"})
    assert dirty([SourceState("docker", None, True)]).containers
    assert SourceState("netlink", "host1", True).key == "netlink:host1"
    assert SourceState("docker", None, True).key == "docker"


def test_union() -> None:
    a = Dirty(frozenset({"host1"}), False) | Dirty(frozenset({"host2"}), True)
    assert a == Dirty(frozenset({"host1", "host2"}), True)


def test_backoff_is_bounded() -> None:
    first, factor, cap = BACKOFF
    assert 0 < first <= cap <= 10 and factor > 1
