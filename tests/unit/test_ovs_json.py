"""OVSDB traffic is parsed by OVS's C JSON parser where the distribution has one."""

from __future__ import annotations

import importlib.machinery

import ovs.json

from workbench import ovs as cn_ovs


def test_the_c_parser_is_used_when_the_system_has_one() -> None:
    have = any(
        (cn_ovs.SYSTEM_OVS_PY / f"_json{suffix}").is_file()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )
    assert cn_ovs.C_JSON is have
    assert (ovs.json.PARSER == ovs.json.PARSER_C) is have
    # and it parses what an OVSDB update looks like, the same as the Python one
    text = (
        '{"method":"update2","params":[null,{"Bridge":{"1":{"insert":{"name":"br0","ports":["set",[]]}}}}]}'
    )
    assert ovs.json.from_string(text) == {
        "method": "update2",
        "params": [None, {"Bridge": {"1": {"insert": {"name": "br0", "ports": ["set", []]}}}}],
    }
