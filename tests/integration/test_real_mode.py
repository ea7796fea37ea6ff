"""Real mode on this machine: the root namespace is host1, with an Open vSwitch
in the root namespace (userspace datapath, as this kernel has no OVS module).
One host's half of exp1 and exp2 is applied, verified, undone; nothing without
containet's mark is touched."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests_support import container_ping, link_names, run_cli

from workbench.engine import Engine
from workbench.host import Place
from workbench.marks import INSTANCE
from workbench.ovs import Ovs, OvsPaths, start_daemons, stop_daemons
from workbench.setup import shipped_tunrc

pytestmark = pytest.mark.lab

TUNRC = {  # marked names: nothing of the machine's own is called like this
    "BRIDGE_NAME": "cn-rdock0",
    "OVS_BRIDGE": "cn-rbr0",
    "TUN_IF": "cn-rgre0",
}


@pytest.fixture
def system_ovs(tmp_path: Path) -> Iterator[str]:
    """An Open vSwitch in the root namespace, like a VM's own (stopped afterwards)."""
    # outside containet's run directory: like a VM's own OVS, it is not ours
    paths = OvsPaths(Path(f"/run/containet-sysovs-{INSTANCE}"))
    stop_daemons(paths)
    start_daemons(Place.root(), paths)
    try:
        yield f"unix:{paths.sock}"
    finally:
        stop_daemons(paths)
        subprocess.run(["rm", "-rf", str(paths.run_dir)], check=False)


@pytest.fixture
def tunrc_dir(tmp_path: Path) -> Path:
    text = shipped_tunrc("host1").render()
    for key, value in TUNRC.items():
        text = "\n".join(
            f"export {key}='{value}'" if line.startswith(f"export {key}=") else line
            for line in text.splitlines()
        )
    (tmp_path / "host1_tunrc").write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize("name", ["exp1", "exp2"])
def test_half_of_a_scenario_on_this_machine(system_ovs: str, tunrc_dir: Path, name: str) -> None:
    foreign = f"fx{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", foreign, "type", "bridge"], check=True)
    ovs = Ovs(system_ovs)
    ovs.api.add_br("foreign0", datapath_type="netdev").execute(check_error=True)  # not ours
    engine = Engine("real", tunrc_dir=tunrc_dir, ovs_db=system_ovs)
    before = link_names()
    try:
        assert engine.lab_status() == "real mode: this machine is host1"
        steps = engine.apply(name)
        assert steps == len(engine.plan(name).steps)
        assert all(engine.status(name))
        snap = engine.snapshot()
        assert {c.name for c in snap.containers} == {"h1-a", "h1-b"}
        assert {c.ip for c in snap.containers} == {"172.15.42.100", "172.15.42.102"}
        host = snap.hosts[0]
        assert "cn-rbr0" in {b.name for b in host.ovs_bridges}
        assert [p.remote_ip for p in host.tunnels] == ["10.0.0.4"]
        assert container_ping("h1-a", "172.15.42.102")  # two containers of this host
        assert engine.apply(name) == 0

        assert engine.undo(name) == steps
        assert link_names() == before
        assert sorted(ovs.bridges()) == ["foreign0"]
        assert engine.snapshot().containers == ()
    finally:
        engine.undo(name)
        ovs.api.del_br("foreign0", if_exists=True).execute(check_error=True)
        ovs.close()
        subprocess.run(["ip", "link", "del", foreign], check=False)
    assert foreign not in link_names()


def test_a_bridge_that_was_there_keeps_living(system_ovs: str, tunrc_dir: Path) -> None:
    """Like docker's own docker0 on a VM: exp1 adds its address, undo takes only that back."""
    subprocess.run(["ip", "link", "add", "cn-rdock0", "type", "bridge"], check=True)
    engine = Engine("real", tunrc_dir=tunrc_dir, ovs_db=system_ovs)
    try:
        engine.apply("exp1")
        engine.undo("exp1")
        assert "cn-rdock0" in link_names()
        addrs = subprocess.run(
            ["ip", "-o", "addr", "show", "dev", "cn-rdock0"], capture_output=True, text=True
        )
        assert "172.15.42.1" not in addrs.stdout
    finally:
        engine.undo("exp1")
        subprocess.run(["ip", "link", "del", "cn-rdock0"], check=False)


def test_clean_after_a_crash_in_real_mode(system_ovs: str, tunrc_dir: Path) -> None:
    """A CLI killed after apply (no undo): `clean --ovs-db` removes our bridge, links
    and rules from the root namespace and the OVS, and not the foreign bridge. Its
    own instance, so the clean does not touch the session lab of the other tests."""
    rm = f"{INSTANCE[:6]}rm"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(rm, *args)

    ovs = Ovs(system_ovs)
    ovs.api.add_br("foreign0", datapath_type="netdev").execute(check_error=True)  # not ours
    mine = {"cn-rdock0", "cn-h1-a", "cn-h1-b", "cn-rbr0"}
    try:
        applied = cli(
            "--real", "--tunrc-dir", str(tunrc_dir), "--ovs-db", system_ovs, "scenario", "apply", "exp1"
        )
        assert applied.returncode == 0, applied.stderr
        assert mine <= link_names()
        dry = cli("--ovs-db", system_ovs, "clean", "--dry-run")
        assert "would remove system OVS bridge cn-rbr0" in dry.stdout and "foreign0" not in dry.stdout
        clean = cli("--ovs-db", system_ovs, "clean")
        assert clean.returncode == 0, clean.stderr
        assert not mine & link_names()
        assert ovs.bridges() == ["foreign0"]
        assert (
            f"containet:{rm}" not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        )
        assert not subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=containet={rm}"], capture_output=True, text=True
        ).stdout.strip()
    finally:
        cli("--ovs-db", system_ovs, "clean")
        ovs.api.del_br("foreign0", if_exists=True).execute(check_error=True)
        ovs.close()


def test_real_mode_without_ovs_is_one_clear_line(tmp_path: Path) -> None:
    from workbench.errors import NotReady

    engine = Engine("real", ovs_db=f"unix:{tmp_path}/nothing.sock")
    with pytest.raises(NotReady, match="Open vSwitch is not running here"):
        engine.apply("exp1")
