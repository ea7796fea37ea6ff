"""Real mode's view of the peer host: one host shares its OVS database read-only
on the private network, the other reads the peer's bridges and tunnels from it.

Two namespaces this test makes play the seed's VMs (host2 10.0.0.4 shares,
host1 10.0.0.3 reads, a veth between them), each with its own ovsdb-server
outside containet's run directory (a VM's own OVS is not containet's), and the
CLI runs inside them as it would on each VM. Traffic stays between these two
namespaces. Everything runs in an instance of its own: `clean` here never
touches the session lab of the other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests_support import NOTHING, leftovers

from workbench import peer
from workbench.engine import Engine
from workbench.errors import BadInput
from workbench.host import Place
from workbench.marks import INSTANCE
from workbench.ovs import SCHEMA, read_pid, stop_pid

pytestmark = pytest.mark.lab

OWN = f"{INSTANCE[:6]}ro"  # this module's instance
SHARED = f"tcp:10.0.0.4:{peer.PORT}"


@dataclass(frozen=True)
class Vm:
    name: str
    ns: str
    ip: str
    db: str  # unix:<sock> of its own OVS database

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`containet --real --host NAME ...` as run on this VM."""
        argv = [sys.executable, "-m", "workbench.cli", "--real", "--host", self.name, "--ovs-db", self.db]
        return self.run([*argv, *args], timeout=timeout)

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, CONTAINET_INSTANCE=OWN),
        )


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def own_ovsdb(run_dir: Path) -> str:
    """A VM's own OVS database: an ovsdb-server with the Open_vSwitch root row (no
    ovs-vswitchd: the rows are what is shared and read)."""
    run_dir.mkdir(parents=True)
    db, sock = run_dir / "conf.db", run_dir / "db.sock"
    sh("ovsdb-tool", "create", str(db), str(SCHEMA))
    sh("ovsdb-tool", "transact", str(db), '["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{}}]')
    sh(
        "ovsdb-server",
        str(db),
        f"--remote=punix:{sock}",
        f"--pidfile={run_dir / 'ovsdb-server.pid'}",
        f"--log-file={run_dir / 'ovsdb-server.log'}",
        f"--unixctl={run_dir / 'ovsdb-server.ctl'}",
        "--detach",
        "--no-chdir",
    )
    return f"unix:{sock}"


def vsctl(db: str, *args: str) -> str:
    return sh("ovs-vsctl", f"--db={db}", "--no-wait", "--timeout=5", *args)


def replicas() -> list[int]:
    """Live ovsdb-servers copying a database, started on this instance's run directory."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--sync-from=" in cmd and f"/run/containet/{OWN}/".encode() in cmd:
            found.append(int(pid))
    return found


def dump(db: str) -> list[str]:
    """The whole database as text, rows sorted."""
    return sorted(sh("ovsdb-client", "dump", db, "Open_vSwitch").splitlines())


@pytest.fixture
def vms() -> Iterator[tuple[Vm, Vm]]:
    """host1 and host2 as two namespaces on a veth, each with its own OVS database;
    host2's has the seed's exp2 half: br0, gre0 toward host1, two container ports."""
    tag = f"{os.getpid() % 100000}"
    base = Path(f"/run/containet-peer-{OWN}")
    host1 = Vm("host1", f"peer{tag}-1", "10.0.0.3", "")
    host2 = Vm("host2", f"peer{tag}-2", "10.0.0.4", "")
    subprocess.run(["rm", "-rf", str(base)], check=False)
    try:
        for vm in (host1, host2):
            sh("ip", "netns", "add", vm.ns)
            sh("ip", "-n", vm.ns, "link", "set", "lo", "up")
        veth = ["link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", host2.ns]
        sh("ip", "-n", host1.ns, *veth)
        for vm in (host1, host2):
            sh("ip", "-n", vm.ns, "addr", "add", f"{vm.ip}/24", "dev", "eth1")
            sh("ip", "-n", vm.ns, "link", "set", "eth1", "up")
        host1 = Vm(host1.name, host1.ns, host1.ip, own_ovsdb(base / "host1"))
        host2 = Vm(host2.name, host2.ns, host2.ip, own_ovsdb(base / "host2"))
        vsctl(host2.db, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
        vsctl(host2.db, "add-port", "br0", "gre0", "--", "set", "Interface", "gre0", "type=gre",
              "options:remote_ip=10.0.0.3")  # fmt: skip
        vsctl(host2.db, "add-port", "br0", "cn-h2-a", "tag=10")
        vsctl(host2.db, "add-port", "br0", "cn-h2-b", "tag=20")
        yield host1, host2
    finally:
        subprocess.run(
            [sys.executable, "-m", "workbench.cli", "clean"],
            capture_output=True,
            timeout=120,
            env=dict(os.environ, CONTAINET_INSTANCE=OWN),
        )
        for name in ("host1", "host2"):
            pid = read_pid(base / name / "ovsdb-server.pid")
            if pid:
                stop_pid(pid)
        for vm in (host1, host2):
            subprocess.run(["ip", "netns", "del", vm.ns], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def listeners(vm: Vm) -> list[str]:
    out = vm.run(["ss", "-Hltn", f"sport = :{peer.PORT}"]).stdout
    return sorted(line.split()[3] for line in out.splitlines())


def test_a_share_is_read_only(vms: tuple[Vm, Vm]) -> None:
    """Writes through the share are refused and change nothing; reads see bridges,
    ports, VLAN tags and tunnels, live; `share --stop` leaves no process."""
    host1, host2 = vms
    said = host2.cli("share", "--listen", host2.ip)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == f"sharing this host's OVS database read-only at ptcp:6640:{host2.ip}"
    assert host2.cli("share", "--listen", host2.ip).stdout == said.stdout  # twice is fine
    assert len(replicas()) == 1
    assert listeners(host2) == [f"{host2.ip}:6640"]  # only the address asked for
    before = dump(host2.db)

    # (a) writes through the share, from the other host: all refused
    remote = f"--db={SHARED}"
    for write in (
        ["add-br", "intruder"],
        ["del-port", "br0", "gre0"],
        ["set", "Port", "cn-h2-a", "tag=20"],
        ["set-manager", "ptcp:6641"],  # nor can it open a writable door
    ):
        out = host1.run(["ovs-vsctl", remote, "--no-wait", "--timeout=5", *write])
        assert out.returncode != 0, write
        assert "not allowed when database server is in read only mode" in out.stderr, out.stderr
    raw = host1.run(
        ["ovsdb-client", "transact", SHARED, '["Open_vSwitch",{"op":"delete","table":"Bridge","where":[]}]']
    )
    assert "not allowed" in raw.stdout + raw.stderr
    assert dump(host2.db) == before
    assert vsctl(host2.db, "list-br").split() == ["br0"]

    # (b) reads through the share: the CLI ...
    status = host1.cli("status", "--peer", f"host2={host2.ip}")
    assert status.returncode == 0, status.stderr
    text = status.stdout
    assert f"host2  underlay {host2.ip}" in text and "ovs bridge br0 (netdev)" in text
    assert "port gre0" in text and "remote_ip=10.0.0.3" in text
    assert "tag=10" in text and "tag=20" in text
    # ... and the API, from host1's namespace
    view = peer.peer_view("host2", SHARED, place=Place.named(host1.ns))
    assert view.reachable and view.ovs_connected
    assert [(t.name, t.type, t.remote_ip) for t in view.tunnels] == [("gre0", "gre", "10.0.0.3")]
    ports = {p.name: p.tag for b in view.ovs_bridges for p in b.ports}
    assert ports["cn-h2-a"] == 10 and ports["cn-h2-b"] == 20
    # a live copy: a port host2 adds shows up through the share
    vsctl(host2.db, "add-port", "br0", "cn-h2-c")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        view = peer.peer_view("host2", SHARED, place=Place.named(host1.ns))
        if "cn-h2-c" in {p.name for b in view.ovs_bridges for p in b.ports}:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a port added on host2 never showed through the share")

    # (c) share --stop: no process, no listener, nothing to read, host2's OVS as it was
    stopped = host2.cli("share", "--stop")
    assert stopped.stdout.strip() == f"stopped sharing (ptcp:6640:{host2.ip})"
    assert replicas() == [] and listeners(host2) == []
    gone = peer.peer_view("host2", SHARED, place=Place.named(host1.ns))
    assert not gone.reachable and gone.error is not None
    assert host2.cli("share", "--stop").stdout.strip() == "nothing was shared"
    assert vsctl(host2.db, "list-ports", "br0").split() == ["cn-h2-a", "cn-h2-b", "cn-h2-c", "gre0"]
    assert leftovers(OWN) == NOTHING


def test_clean_stops_a_share_and_a_bad_address_starts_none(vms: tuple[Vm, Vm]) -> None:
    host1, host2 = vms
    bad = host2.cli("share", "--listen", host1.ip)  # host1's address, not host2's
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"containet: error: --listen {host1.ip}: not an address of this host "
        "(share on its private-network address)"
    )
    assert replicas() == []

    assert host2.cli("share", "--listen", host2.ip).returncode == 0
    assert len(replicas()) == 1
    clean = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "clean"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, CONTAINET_INSTANCE=OWN),
    )
    assert clean.returncode == 0, clean.stderr
    assert "ovs process" in clean.stdout
    assert replicas() == [] and listeners(host2) == []
    assert leftovers(OWN) == NOTHING
    assert vsctl(host2.db, "list-br").split() == ["br0"]  # host2's own OVS: not containet's


def test_bad_peer_and_listen_arguments() -> None:
    assert peer.parse_peer("host2=10.0.0.4") == ("host2", "tcp:10.0.0.4:6640")
    assert peer.parse_peer("host2=tcp:10.0.0.4:7000") == ("host2", "tcp:10.0.0.4:7000")
    for bad in ("host2", "=tcp:1.2.3.4:1", "host2=tcp:nope:6640"):
        with pytest.raises(BadInput):
            peer.parse_peer(bad)
    with pytest.raises(BadInput, match="not an IPv4 address"):
        peer.listen_target("10.0.0")
    with pytest.raises(BadInput, match="share is for real mode"):
        Engine().share("10.0.0.3")
