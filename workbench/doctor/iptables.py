"""iptables: would FORWARD let a bridged frame through?

A small interpreter of `iptables-save -c -t filter`: it walks a chain as the
kernel would for a new frame bridged on one bridge (in and out), follows jumps
to user chains, and says which rule or policy decides. Matches it cannot
evaluate without the packet (ports, conntrack state, …) become caveats.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class FwVerdict:
    accept: bool
    by: str  # the rule or policy that decides
    caveats: tuple[str, ...] = ()


def parse_iptables_save(text: str) -> tuple[dict[str, str], dict[str, list[str]], dict[str, int]]:
    """Chain policies, rules per chain (as the -A line without "-A CHAIN") and policy packet counts."""
    policies: dict[str, str] = {}
    counts: dict[str, int] = {}
    rules: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(":"):
            parts = line[1:].split()
            policies[parts[0]] = parts[1] if len(parts) > 1 else "-"
            m = re.match(r"\[(\d+):\d+\]", parts[2]) if len(parts) > 2 else None
            counts[parts[0]] = int(m.group(1)) if m else 0
            rules.setdefault(parts[0], [])
        else:
            line = re.sub(r"^\[\d+:\d+\]\s*", "", line)
            if line.startswith("-A "):
                _, chain, rest = line.split(" ", 2)
                rules.setdefault(chain, []).append(rest)
    return policies, rules, counts


def _iface_match(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else pattern == name


def _net_match(spec: str, ip: str | None) -> bool | None:
    if ip is None:
        return None
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return None


def _rule_match(rule: str, bridge: str, src: str | None, dst: str | None) -> tuple[str, str, str | None]:
    """("yes" | "no" | "some", target, condition) for a frame bridged on `bridge`."""
    words = shlex.split(rule)
    result, target, cond = "yes", "", None
    i, neg = 0, False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg = True
            i += 1
            continue
        val = words[i + 1] if i + 1 < len(words) else ""
        if w in ("-i", "--in-interface", "-o", "--out-interface"):
            hit = _iface_match(val, bridge) != neg
            if not hit:
                result = "no"
        elif w in ("-s", "--source", "-d", "--destination"):
            m = _net_match(val, src if w in ("-s", "--source") else dst)
            if m is None:
                result, cond = ("some" if result == "yes" else result), f"{w} {val}"
            elif m == neg:
                result = "no"
        elif w in ("-p", "--protocol"):
            if val not in ("all", "0") and result == "yes":
                result, cond = "some", f"only {'not ' if neg else ''}{val}"
        elif w in ("-m", "--match"):
            if val == "comment":
                i += 4 if i + 2 < len(words) and words[i + 2] == "--comment" else 2
                neg = False
                continue
            if result == "yes":
                result, cond = "some", f"-m {val}"
            j = i + 2
            while j < len(words) and words[j] not in ("-j", "-g", "-m", "-i", "-o", "-s", "-d", "-p"):
                j += 1
            i, neg = j, False
            continue
        elif w in ("-j", "--jump", "-g", "--goto"):
            target = val
        elif w.startswith("-") and result == "yes":
            result, cond = "some", w
        i += 2
        neg = False
    return result, target, cond


def forward_verdict(
    save: str, bridge: str, src: str | None, dst: str | None, chain: str = "FORWARD", depth: int = 0
) -> FwVerdict | None:
    """Walk `chain` as the kernel would for a new frame bridged on `bridge` (in and out)."""
    policies, rules, _ = parse_iptables_save(save)
    caveats: list[str] = []
    for n, rule in enumerate(rules.get(chain, []), start=1):
        hit, target, cond = _rule_match(rule, bridge, src, dst)
        if hit == "no" or not target:
            continue
        where = f"{chain} rule {n}: -A {chain} {rule}"
        if hit == "some":
            if target in ("DROP", "REJECT"):
                caveats.append(f"may drop ({cond}): {where}")
            continue
        if target == "ACCEPT":
            return FwVerdict(True, where, tuple(caveats))
        if target in ("DROP", "REJECT"):
            return FwVerdict(False, where, tuple(caveats))
        if target == "RETURN":
            return None
        if target in rules and depth < 8:
            sub = forward_verdict(save, bridge, src, dst, target, depth + 1)
            if sub is not None:
                return FwVerdict(sub.accept, sub.by, tuple(caveats) + sub.caveats)
    if depth:
        return None
    policy = policies.get(chain, "ACCEPT")
    return FwVerdict(policy == "ACCEPT", f"{chain} policy {policy}", tuple(caveats))


def policy_drops(save: str) -> int:
    """Packets FORWARD's policy dropped (0 when the policy accepts)."""
    policies, _, counts = parse_iptables_save(save)
    return counts.get("FORWARD", 0) if policies.get("FORWARD") in ("DROP", "REJECT") else 0
