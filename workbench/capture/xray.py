"""The X-ray of one frame: a ruler of its headers with their bytes, and what is
left of the path MTU once the tunnel has wrapped it.

A frame seen on the underlay carries its tunnel: its outer IPv4 packet is what
the underlay's MTU must hold. A frame seen on the container side has not been
wrapped yet: the X-ray adds what the path's tunnel will (inner Ethernet header,
the access port's 802.1Q tag when it has one, GRE or UDP+VXLAN, outer IPv4) and
says whether the result still fits: the MTU trap seen on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .decode import Frame

#: bytes a tunnel adds around the inner Ethernet frame: outer IPv4 + its own header(s)
WRAP = {"gre": 20 + 4, "vxlan": 20 + 8 + 8, "geneve": 20 + 8 + 8}
ETH = 14
TAG = 4
RULER = 64  # columns of the drawn ruler
LETTERS = {
    "Ethernet": "E",
    "802.1Q": "Q",
    "IPv4": "I",
    "GRE": "G",
    "UDP": "U",
    "VXLAN": "V",
    "Geneve": "N",
    "ICMP": "C",
    "TCP": "T",
    "ARP": "A",
    "payload": ".",
}


@dataclass(frozen=True)
class PathContext:
    """What the path adds to a frame captured before the tunnel."""

    tunnel: str | None = None  # the tunnel type the frames leave by ("gre", "vxlan"), None: none
    underlay_mtu: int = 1500
    tag: bool = False  # an access port tags the frame before it enters the tunnel
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"tunnel": self.tunnel, "underlay_mtu": self.underlay_mtu, "tag": self.tag}


@dataclass(frozen=True)
class Xray:
    frame: Frame
    context: PathContext
    outer_ip_len: int | None  # the IPv4 packet the underlay carries (projected when not wrapped yet)
    limit: int  # the underlay's MTU
    overhead: int  # bytes the tunnel costs this frame (outer IPv4 + tunnel + inner Ethernet (+tag))
    projected: bool  # the outer packet is computed, not seen

    @property
    def left(self) -> int | None:
        return None if self.outer_ip_len is None else self.limit - self.outer_ip_len

    @property
    def too_big(self) -> bool:
        return self.left is not None and self.left < 0

    @property
    def verdict(self) -> str:
        if self.outer_ip_len is None:
            return "no IPv4 packet to measure against the path MTU"
        what = "would be" if self.projected else "is"
        base = f"outer IPv4 packet {what} {self.outer_ip_len} B of the underlay's {self.limit} B MTU"
        tunnel = self.frame.tunnel or self.context.tunnel
        if self.too_big:
            inner_max = self.limit - self.overhead  # the inner IP packet's largest size
            return (
                f"TOO BIG for the {tunnel.upper() if tunnel else 'path'}: {base}, {-self.left} B over "  # type: ignore[operator]
                f"(inner packets must be <= {inner_max} B: the container MTU)"
            )
        if tunnel is None:
            return (
                f"IPv4 packet {self.outer_ip_len} B of the {self.limit} B MTU: {self.left} B left (no tunnel)"
            )
        return f"{base}: {self.left} B left; the tunnel costs {self.overhead} B per frame"

    def ruler(self, width: int = RULER) -> str:
        """[EEEEIIIIIG|EEQIIITTT.......] one letter per header, width by bytes (at least one)."""
        headers = self.frame.headers
        if not headers:
            return "[]"
        total = sum(h.size for h in headers) or 1
        cols = [max(1, round(h.size * width / total)) for h in headers]
        out = []
        for i, (h, n) in enumerate(zip(headers, cols, strict=True)):
            if i and headers[i - 1].layer != h.layer:
                out.append("|")
            out.append(LETTERS.get(h.name, "?") * n)
        return "[" + "".join(out) + "]"

    def lines(self) -> list[str]:
        f = self.frame
        out = [f"frame {f.index}  {f.wire_len} B on the wire  {f.summary}"]
        for layer in ("outer", "tunnel", "inner"):
            hs = f.layer(layer)
            if hs:
                cells = "  ".join(f"{h.name} {h.size}" for h in hs)
                out.append(f"  {layer:6}  {cells}")
        for h in f.headers:
            if h.detail:
                out.append(f"    {h.layer:6} {h.name:8} {h.size:5} B  {h.detail}")
        out.append(f"  {self.ruler()}")
        if self.projected and self.context.tunnel:
            tag = " + 802.1Q tag" if self.context.tag else ""
            out.append(f"  path: {self.context.tunnel.upper()}{tag} over a {self.limit} B underlay")
        out.append(f"  {self.verdict}")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame.index,
            "outer_ip_len": self.outer_ip_len,
            "limit": self.limit,
            "left": self.left,
            "overhead": self.overhead,
            "projected": self.projected,
            "too_big": self.too_big,
            "verdict": self.verdict,
            "ruler": self.ruler(),
            "context": self.context.to_dict(),
        }


def xray(frame: Frame, context: PathContext | None = None) -> Xray:
    """The frame against the path MTU: as seen (a wrapped frame) or as it will be."""
    ctx = context or PathContext()
    limit = ctx.underlay_mtu
    if frame.encapsulated:
        outer = frame.extra.get("outer_ip_len")
        inner = frame.extra.get("ip_len")
        overhead = outer - inner if outer is not None and inner is not None else 0
        return Xray(frame, ctx, outer, limit, overhead, projected=False)
    ip_len = frame.extra.get("ip_len")
    if ip_len is None:
        return Xray(frame, ctx, None, limit, 0, projected=True)
    if ctx.tunnel is None or ctx.tunnel not in WRAP:
        return Xray(frame, ctx, ip_len, limit, 0, projected=True)
    tag = TAG if ctx.tag and frame.vlan is None else 0
    tag += TAG if frame.vlan is not None else 0
    overhead = WRAP[ctx.tunnel] + ETH + tag
    return Xray(frame, ctx, ip_len + overhead, limit, overhead, projected=True)
