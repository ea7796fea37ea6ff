"""The pcap file format (libpcap's classic one, which tcpdump and Wireshark read):
a 24-byte file header, then a 16-byte header before each frame. Read from a
stream as it grows (tcpdump's `-w -`), written as frames come."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
FILE_HEADER = 24
RECORD_HEADER = 16


@dataclass(slots=True)
class Record:
    """One captured frame as pcap holds it (slots: made ~15k times a second on a busy
    port by the capture's reader thread; treat it as read-only)."""

    index: int  # 1-based, in capture order
    time: float  # seconds since the epoch
    wire_len: int  # orig_len: the frame's length on the wire
    data: bytes  # what the snap length kept

    @property
    def size(self) -> int:
        """Bytes it holds in memory, roughly (data + the record's own)."""
        return len(self.data) + 96


class PcapError(ValueError):
    pass


class StreamReader:
    """Feed bytes as they arrive; take out complete records."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fmt: str | None = None
        self._unpack: Callable[..., tuple[int, int, int, int]] | None = None
        self._scale = 1e-6
        self.linktype: int | None = None
        self.snaplen = 0
        self.count = 0

    def feed(self, chunk: bytes) -> list[Record]:
        self._buf += chunk
        out: list[Record] = []
        if self._fmt is None:
            if len(self._buf) < FILE_HEADER:
                return out
            self._header(bytes(self._buf[:FILE_HEADER]))
            del self._buf[:FILE_HEADER]
        assert self._unpack is not None
        unpack, scale, count = self._unpack, self._scale, self.count
        buf = self._buf
        size = len(buf)
        view = memoryview(buf)
        at = 0
        try:
            while size - at >= RECORD_HEADER:
                sec, frac, incl, orig = unpack(buf, at)
                start = at + RECORD_HEADER
                if size - start < incl:
                    break
                count += 1
                out.append(Record(count, sec + frac * scale, orig, bytes(view[start : start + incl])))
                at = start + incl
        finally:
            view.release()
        self.count = count
        del buf[:at]
        return out

    def _header(self, head: bytes) -> None:
        for endian in ("<", ">"):
            (magic,) = struct.unpack(endian + "I", head[:4])
            if magic in (MAGIC_US, MAGIC_NS):
                self._fmt = endian + "IIII"
                self._unpack = struct.Struct(self._fmt).unpack_from
                self._scale = 1e-6 if magic == MAGIC_US else 1e-9
                _v1, _v2, _tz, _sig, self.snaplen, self.linktype = struct.unpack(endian + "HHiIII", head[4:])
                return
        raise PcapError("not a pcap stream (bad magic)")


def read_file(path: str) -> list[Record]:
    reader = StreamReader()
    with open(path, "rb") as fh:
        return reader.feed(fh.read())


class Writer:
    """A pcap file written frame by frame (microsecond timestamps, Ethernet)."""

    def __init__(self, fh: BinaryIO, snaplen: int = 262144) -> None:
        self.fh = fh
        self.count = 0
        fh.write(struct.pack("<IHHiIII", MAGIC_US, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, rec: Record) -> None:
        sec = int(rec.time)
        usec = min(999_999, int(round((rec.time - sec) * 1e6)))
        self.fh.write(struct.pack("<IIII", sec, usec, len(rec.data), rec.wire_len))
        self.fh.write(rec.data)
        self.count += 1

    def flush(self) -> None:
        self.fh.flush()


def write_file(path: str, records: Iterator[Record] | list[Record], snaplen: int = 262144) -> int:
    with open(path, "wb") as fh:
        w = Writer(fh, snaplen)
        for rec in records:
            w.write(rec)
        return w.count
