"""The fault catalogue on the real lab: each fault injected, the doctor names it as the
first failing check at the right hop, its fix (or `fault revert`) brings ping and TCP
back. One lab for the module: exp1 for the faults of a linux-bridge path, then exp2
for those of a userspace OVS port; scenario undo and clean take everything back.

Every test reverts what it injected, also on failure (`fault revert` in finally)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from tests_support import container_ping

from workbench import lab as wlab
from workbench.engine import Engine
from workbench.host import Place
from workbench.impair import procs, store
from workbench.marks import IPT_COMMENT

pytestmark = pytest.mark.lab

H2A = "172.15.42.101"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def lab(lab_engine: Engine) -> Iterator[Engine]:
    lab_engine.lab_up(progress=lambda _m: None)
    active = lab_engine.active()
    if active is not None:
        lab_engine.undo(active.scenario)  # also reverts what a crashed run left injected
    try:
        yield lab_engine
    finally:
        active = lab_engine.active()
        if active is not None:
            lab_engine.undo(active.scenario)


@pytest.fixture
def scenario(lab: Engine) -> Iterator[Callable[[str], Engine]]:
    def use(name: str) -> Engine:
        active = lab.active()
        if active is not None and active.scenario != name:
            lab.undo(active.scenario)
        lab.apply(name)
        return lab

    try:
        yield use
    finally:
        lab.fault_revert()
        lab.netem_clear()


def ping_works(engine: Engine) -> bool:
    """Every probe: a doctor fix returns only once the pair talks again (PairTalks), and
    a link brought up forgets the neighbour entries the outage left FAILED."""
    return engine.ping("h1-a", "h2-a", count=3, interval=0.2).received == 3


def tcp_works(engine: Engine) -> bool:
    return engine.iperf("h1-a", "h2-a", seconds=1).received_bps > 10e6


def break_and_explain(engine: Engine, name: str, hop: str, check: str) -> None:
    said = engine.fault_inject(name)
    assert said.startswith(f"{name}: ") and "$ " in said, said
    report = engine.doctor("h1-a", "h2-a")
    bad = report.first_failure
    assert bad is not None, report.summary
    assert (bad.hop, bad.name) == (hop, check), (bad.hop, bad.name, bad.evidence)
    if bad.fix is not None:  # the doctor's own fix brings ping and TCP back
        engine.doctor_fix(bad.fix)
        assert ping_works(engine) and tcp_works(engine)
        assert engine.fault_revert(name)[0].startswith(f"reverted {name}")
        assert container_ping("h1-a", H2A)  # and reverting after the fix breaks nothing
    else:  # `fault revert` does
        assert engine.fault_revert(name)[0].startswith(f"reverted {name}")
        assert ping_works(engine) and tcp_works(engine)
    assert store.load_all("fault") == []


@pytest.mark.parametrize(
    ("name", "hop", "check"),
    [
        ("mtu-blackhole", "container h1-a (host1)", "MTU"),
        ("forward-drop", "docker0 (host1)", "firewall"),
        ("wrong-remote-ip", "tunnel gre0 (host1)", "remote_ip"),
        ("veth-down", "veth cn-h1-a (host1)", "up"),
        ("link-flap", "veth cn-h1-a (host1)", "flapping"),
        ("tunnel-loss", "tunnel gre0 (host1)", "loss"),
    ],
)
def test_exp1_fault(scenario: Callable[[str], Engine], name: str, hop: str, check: str) -> None:
    break_and_explain(scenario("exp1"), name, hop, check)


def test_random_fault_stays_hidden_until_revealed(scenario: Callable[[str], Engine], cli: Cli) -> None:
    engine = scenario("exp1")
    out = cli("fault", "inject", "--random")
    assert out.returncode == 0 and "hidden" in out.stdout, out.stdout + out.stderr
    names = [f.name for f in engine.fault_catalogue()]
    assert not any(n in out.stdout for n in names)
    assert engine.faults_active() == ["a hidden fault (`containet fault reveal` names it)"]
    revealed = engine.fault_reveal()
    assert any(revealed.startswith(f"the hidden fault is {n}: ") for n in names), revealed
    assert engine.fault_revert()[0].startswith("reverted the hidden fault")
    assert ping_works(engine)


def test_scenario_undo_reverts_faults_and_impairments(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp1")
    engine.fault_inject("forward-drop")
    engine.fault_inject("tunnel-loss")
    engine.netem_set("h1-a", delay=5, loss=1)
    assert procs.marked()
    engine.undo("exp1")
    host1 = wlab.lab_hosts()[0].place
    assert host1.run(["iptables", "-S", "FORWARD"]).stdout.startswith("-P FORWARD ACCEPT")
    underlay = Place.named(wlab.UNDERLAY_NS)
    assert IPT_COMMENT not in underlay.run(["iptables-save"]).stdout
    assert procs.marked() == [] and store.load_all("fault") == store.load_all("impair") == []


@pytest.mark.parametrize(
    ("name", "hop", "check"),
    [
        ("tx-checksum", "container h1-a (host1)", "checksums"),
        ("vlan-mismatch", "veth cn-h1-a (host1)", "VLAN tag"),
    ],
)
def test_exp2_fault(scenario: Callable[[str], Engine], name: str, hop: str, check: str) -> None:
    break_and_explain(scenario("exp2"), name, hop, check)


def test_a_fault_that_does_not_fit_the_scenario_is_refused(scenario: Callable[[str], Engine]) -> None:
    engine = scenario("exp2")
    with pytest.raises(Exception, match="needs a container on a linux bridge"):
        engine.fault_inject("forward-drop")
    assert store.load_all("fault") == []


def test_clean_removes_faults_and_impairments_and_nothing_foreign(
    scenario: Callable[[str], Engine], cli: Cli
) -> None:
    engine = scenario("exp2")  # applied already by the tests before
    foreign = "f15foreign"  # not containet's: its qdisc must survive clean
    run = ["ip", "netns", "exec", foreign]
    subprocess.run(["ip", "netns", "del", foreign], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        subprocess.run([*run, "ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1"], check=True)
        subprocess.run([*run, "tc", "qdisc", "add", "dev", "fx0", "root", "tbf", "rate", "1mbit",
                        "burst", "32kb", "latency", "50ms"], check=True)  # fmt: skip
        engine.netem_set("host1:gre0", delay=5, rate=50)  # a delay line and a tbf in the underlay
        engine.netem_set("h1-a", loss=5, rate=50)  # a rule in h1-a, OVS QoS and a tbf
        engine.fault_inject("link-flap", on="h1-b")
        engine.fault_inject("tunnel-loss", on="host2:gre0")
        assert len(procs.marked()) == 2
        out = cli("clean")
        assert out.returncode == 0 and "injected fault(s) and impairment(s): reverted" in out.stdout, (
            out.stdout
        )
        assert procs.marked() == [] and wlab.marked_namespaces() == []
        assert not store.load_all("fault") and not store.load_all("impair") and not store.load_all("link")
        qd = subprocess.run([*run, "tc", "qdisc", "show", "dev", "fx0"], capture_output=True, text=True)
        assert "tbf" in qd.stdout, qd.stdout
    finally:
        subprocess.run(["ip", "netns", "del", foreign], capture_output=True, check=False)
        engine.lab_up(progress=lambda _m: None)  # the session goes on with a lab
