"""Real mode's view of the peer host: one host shares its OVS database on the
private network, the other reads the peer's bridges and tunnels from it. Here
host2 of the lab plays the peer and host1's namespace the reader (traffic stays
between namespaces the test made)."""

from __future__ import annotations

import pytest

from workbench import peer
from workbench.engine import Engine
from workbench.errors import BadInput

pytestmark = pytest.mark.lab


def test_share_read_and_stop(applied) -> None:  # type: ignore[no-untyped-def]
    lab = applied("exp2")
    host1, host2 = lab.hosts()
    as_host2 = Engine("real", real_host="host2", ovs_db=host2.ovs_db)  # host2's own workbench
    try:
        said = as_host2.share("10.0.0.4")
        assert said.endswith("ptcp:6640:10.0.0.4")
        assert as_host2.share("10.0.0.4") == said  # twice is fine
        view = peer.peer_view("host2", "tcp:10.0.0.4:6640", place=host1.place)
        assert view.reachable and view.ovs_connected
        assert [(t.name, t.type, t.remote_ip) for t in view.tunnels] == [("gre0", "gre", "10.0.0.3")]
        assert {p.name for b in view.ovs_bridges for p in b.ports} >= {"cn-h2-a", "cn-h2-b"}
    finally:
        assert as_host2.share(None) == "stopped sharing (ptcp:6640:10.0.0.4)"
    gone = peer.peer_view("host2", "tcp:10.0.0.4:6640", place=host1.place)
    assert not gone.reachable and gone.error is not None
    assert as_host2.share(None) == "nothing was shared"


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
