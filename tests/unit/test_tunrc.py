"""tunrc parsing and validation: every bad value is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.setup import shipped_tunrc
from workbench.tunrc import TunrcError, load, parse_text, validate

SEED = """#!/bin/bash
# Docker Bridge Configuration
export BRIDGE_NAME='docker0'
export BRIDGE_ADDRESS='172.15.42.1/24'
export SUBNET='172.15.42.0/24'
export OVS_BRIDGE='br0'
export TUN_IF='gre0'
export TUN_TYPE='gre'
export REMOTE_IP='10.0.0.4'
"""


def test_seed_file_parses() -> None:
    rc = validate(parse_text(SEED, "host1_tunrc"), "host1_tunrc")
    assert rc.bridge_name == "docker0"
    assert rc.bridge_ip == "172.15.42.1"
    assert rc.prefixlen == 24
    assert rc.remote_ip == "10.0.0.4"
    assert rc.tun_type == "gre"


def test_shipped_files_are_the_seeds() -> None:
    h1, h2 = shipped_tunrc("host1"), shipped_tunrc("host2")
    assert (h1.bridge_address, h1.remote_ip) == ("172.15.42.1/24", "10.0.0.4")
    assert (h2.bridge_address, h2.remote_ip) == ("172.15.42.2/24", "10.0.0.3")
    assert h1.subnet == h2.subnet == "172.15.42.0/24"


def test_quotes_and_plain_values() -> None:
    values = parse_text('export BRIDGE_NAME="docker0"\nSUBNET=172.15.42.0/24  # comment\n')
    assert values == {"BRIDGE_NAME": "docker0", "SUBNET": "172.15.42.0/24"}


def test_render_round_trips() -> None:
    rc = validate(parse_text(SEED))
    again = validate(parse_text(rc.render()))
    assert again == rc


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("SUBNET", "172.15.42.0/33", "SUBNET='172.15.42.0/33' is not an IPv4 network"),
        ("SUBNET", "172.15.42.1/24", "SUBNET='172.15.42.1/24' is not an IPv4 network"),
        ("BRIDGE_ADDRESS", "172.15.42.1", "needs a prefix length"),
        ("BRIDGE_ADDRESS", "172.15.43.1/24", "is not inside SUBNET 172.15.42.0/24"),
        ("BRIDGE_ADDRESS", "172.15.42.0/24", "network or broadcast"),
        ("BRIDGE_ADDRESS", "banana/24", "is not an IPv4 address in CIDR form"),
        ("TUN_TYPE", "ipip", "is not a known tunnel type"),
        ("REMOTE_IP", "10.0.0.400", "REMOTE_IP='10.0.0.400' is not an IPv4 address"),
        ("REMOTE_IP", "172.15.42.9", "inside the container SUBNET"),
        ("BRIDGE_NAME", "a-very-long-bridge-name", "is not an interface name"),
        ("TUN_IF", "gre 0", "is not an interface name"),
        ("OVS_BRIDGE", "docker0", "same name as BRIDGE_NAME"),
    ],
)
def test_bad_values_name_file_and_key(key: str, value: str, message: str) -> None:
    values = parse_text(SEED)
    values[key] = value
    with pytest.raises(TunrcError) as err:
        validate(values, "config/host1_tunrc")
    text = str(err.value)
    assert text.startswith("config/host1_tunrc: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("key", ["REMOTE_IP", "SUBNET", "TUN_TYPE", "BRIDGE_NAME"])
def test_missing_key(key: str) -> None:
    values = parse_text(SEED)
    del values[key]
    with pytest.raises(TunrcError, match=f"host1_tunrc: {key} is missing"):
        validate(values, "host1_tunrc")


def test_garbage_line_is_reported_with_line_number() -> None:
    with pytest.raises(TunrcError, match=r"x:3: not an `export KEY='value'` line"):
        parse_text("export A='1'\n\nrm -rf /\n", "x")


def test_unterminated_quote() -> None:
    with pytest.raises(TunrcError, match="x:1: SUBNET"):
        parse_text("export SUBNET='172.15.42.0/24\n", "x")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TunrcError, match="cannot read tunrc"):
        load(tmp_path / "nope_tunrc")


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "host1_tunrc"
    path.write_text(SEED.replace("gre", "vxlan"))
    rc = load(path)
    assert rc.tun_type == "vxlan" and rc.tun_if == "vxlan0"
    assert rc.source == str(path)
