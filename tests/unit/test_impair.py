"""Impairments and faults without a lab: the spec's checks, the commands each backend
shows, records that survive a round trip, the catalogue, and the doctor's judgement of
a flapping link and of random drops in the underlay."""

from __future__ import annotations

import pytest

from workbench.doctor.impaired import Flap, UnderlayDrop, check_flap, check_underlay_loss
from workbench.doctor.model import Out, Status, plain
from workbench.errors import BadInput
from workbench.faults import intents as fault_intents
from workbench.faults.catalogue import CATALOGUE, find
from workbench.impair import codec
from workbench.impair.intent import Impair, loss_rule, relay_args
from workbench.impair.link import ImpairLink
from workbench.impair.linkstate import Flap as FlapIntent
from workbench.impair.spec import Spec, check
from workbench.intents.base import ContainerRef

H1A = ImpairLink(
    target="h1-a",
    kind="container",
    host="host1",
    ns="cn-host1",
    port="cn-h1-a",
    bridge="docker0",
    mtu=1462,
    container=ContainerRef.ours("h1-a"),
)
GRE = ImpairLink(
    target="host1:gre0",
    kind="tunnel",
    host="host1",
    ns="cn-underlay",
    port="host1",
    bridge="ul0",
    mtu=1500,
    dst_ip="10.0.0.3",
)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (Spec(delay=-1), "--delay must be 0 or more"),
        (Spec(loss=101), "--loss is a percentage"),
        (Spec(duplicate=200), "--duplicate is a percentage"),
        (Spec(delay=5, jitter=10), "--jitter 10 ms is more than --delay 5 ms"),
        (Spec(reorder=10), "--reorder needs a --delay"),
        (Spec(rate=1e6), "--rate 1e+06 Mbit/s is beyond"),
        (Spec(delay=float("nan")), "--delay must be 0 or more"),
    ],
)
def test_bad_specs_are_refused(spec: Spec, says: str) -> None:
    with pytest.raises(BadInput, match=says.replace("+", r"\+")):
        check(spec)


def test_flags_merge_and_zero_removes() -> None:
    spec = Spec().merged({"delay": 20, "loss": None})
    assert spec == Spec(delay=20)
    spec = spec.merged({"loss": 10, "rate": 100})
    assert spec.describe() == "delay 20 ms, loss 10%, rate 100 Mbit/s"
    assert spec.netem_words() == ["delay", "20ms", "loss", "10%"]
    assert spec.merged({"delay": 0, "loss": 0, "rate": 0}).empty


def test_substitute_commands_are_the_ones_run() -> None:
    imp = Impair("host1", H1A, Spec(delay=20, jitter=2, loss=10, rate=50), "substitute")
    texts = [c.text for c in imp.commands()]
    a, b = H1A.delay_links
    assert texts[0] == f"ip link add {a} mtu 1462 type veth peer name {b} mtu 1462"
    assert "bridge link set dev cn-h1-a state 0" in texts
    relay = next(t for t in texts if "relay.py" in t)
    assert relay.endswith(" ".join(relay_args(H1A, imp.spec)) + " &")
    assert relay_args(H1A, imp.spec) == ["--near", "cn-h1-a", "--far", b, "--delay", "20", "--jitter", "2"]
    loss = next(c for c in imp.commands() if "statistic" in c.text)
    assert loss.container == ContainerRef.ours("h1-a") and "-A INPUT" in loss.text and "0.1 " in loss.text
    assert any(t.startswith("tc qdisc add dev cn-h1-a root tbf rate 50mbit") for t in texts)


def test_tunnel_commands_run_in_the_underlay() -> None:
    imp = Impair("host1", GRE, Spec(loss=40), "substitute")
    (cmd,) = imp.commands()
    assert cmd.text.startswith("ip netns exec cn-underlay iptables -A FORWARD -d 10.0.0.3 -m statistic")
    assert loss_rule(GRE, 40) == (
        "FORWARD",
        ["-d", "10.0.0.3", "-m", "statistic", "--mode", "random", "--probability", "0.4"],
    )


def test_netem_backend_is_one_qdisc() -> None:
    imp = Impair("host1", H1A, Spec(delay=20, jitter=5, reorder=25, rate=100), "netem")
    texts = [c.text for c in imp.commands()]
    assert texts[0] == "tc qdisc replace dev cn-h1-a root netem delay 20ms 5ms reorder 25% rate 100mbit"
    assert texts[1].startswith("tc qdisc replace dev eth0 root tbf rate 100mbit")  # the container's upload


def test_records_survive_a_round_trip() -> None:
    for intent in (
        Impair("host1", H1A, Spec(delay=20), "substitute"),
        FlapIntent("host1", H1A, 0.5, 3),
        fault_intents.MtuBlackhole(
            "host1", (fault_intents.MtuEnd("host1", ContainerRef.ours("h1-a"), "cn-h1-a", 1462, 1462),)
        ),
        fault_intents.ForwardDrop("host1", "ACCEPT", "0"),
        fault_intents.VlanMismatch("host2", "cn-h2-a", 20, None),
    ):
        assert codec.decode(codec.encode(intent)) == intent


def test_catalogue_has_the_classic_faults() -> None:
    names = {f.name for f in CATALOGUE}
    assert names >= {
        "mtu-blackhole",
        "vlan-mismatch",
        "forward-drop",
        "tx-checksum",
        "wrong-remote-ip",
        "veth-down",
        "link-flap",
        "tunnel-loss",
    }
    assert all(f.summary and f.command and f.doctor for f in CATALOGUE)
    with pytest.raises(BadInput, match="unknown fault 'nope'"):
        find("nope")


def test_doctor_names_a_flap_and_underlay_loss() -> None:
    from workbench.doctor.facts import DoctorFacts, EndFacts, HostFacts

    src = EndFacts("h1-a", "host1", True, host_veth="cn-h1-a")
    dst = EndFacts("h2-a", "host2", True, host_veth="cn-h2-a")
    rule = ("FORWARD", "-d", "10.0.0.3/32", "-m", "statistic", "--probability", "0.4", "-j", "DROP")
    facts = DoctorFacts(
        src=src,
        dst=dst,
        src_ip=None,
        dst_ip=None,
        hosts={"host1": HostFacts("host1", "10.0.0.3"), "host2": HostFacts("host2", "10.0.0.4")},
        flaps=(Flap("cn-h1-a", 4, 1.2),),
        underlay_drops=(UnderlayDrop("10.0.0.3", 40.0, rule),),
        underlay_ns="cn-underlay",
    )
    out = Out(plain)
    check_flap(out, facts, src)
    check_flap(out, facts, dst)  # no flap there: nothing said
    check_underlay_loss(out, facts, "host1", "gre0")
    check_underlay_loss(out, facts, "host2", "gre0")  # nothing drops toward host2
    assert [(c.hop, c.name, c.status) for c in out.checks] == [
        ("veth cn-h1-a (host1)", "flapping", Status.FAIL),
        ("tunnel gre0 (host1)", "loss", Status.FAIL),
    ]
    assert "4 time(s)" in out.checks[0].evidence and "40%" in out.checks[1].evidence
