"""See the packets: capture on any port of the lab (tcpdump inside the right
namespace, an OVS mirror for ports with no device), decode each frame (dpkt),
the X-ray of its headers against the path MTU, OVS flows and traces, live rates."""

from .capture import Capture, CaptureOptions, CaptureResult, capture_pids, check_filter, frames
from .decode import Frame, Header, decode
from .pcap import Record, read_file, write_file
from .where import Target, resolve
from .xray import PathContext, Xray, xray

__all__ = [
    "Capture",
    "CaptureOptions",
    "CaptureResult",
    "Frame",
    "Header",
    "PathContext",
    "Record",
    "Target",
    "Xray",
    "capture_pids",
    "check_filter",
    "decode",
    "frames",
    "read_file",
    "resolve",
    "write_file",
    "xray",
]
