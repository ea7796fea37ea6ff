"""The delay line: a userspace relay between two links, for kernels without tc netem.

    python3 relay.py --mark RUN_DIR/impair/NAME.pid --near PORT --far LINK
                     [--delay MS] [--jitter MS] [--duplicate PCT] [--reorder PCT]

It forwards every frame that arrives on one link out of the other, through two
AF_PACKET sockets with virtio-net headers (so TSO/GSO frames and checksums that
are left to the NIC pass as they are). Frames arriving on `--far` (toward the
impaired side, which hangs on `--near`) wait in a heap of (due time, frame):
`delay` ± uniform `jitter`; with probability `reorder` a frame skips the queue
(netem's reorder), with probability `duplicate` it is sent twice. Frames from
`--near` go on at once: like netem on one link, only one direction is impaired.

Standard library only, started by containet as a child process in the
namespace of the two links; `--mark` (the pidfile, under containet's run
directory) is its mark: `containet clean` stops the processes whose command line
names this file and the run directory. SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
BUF = 65536 + 64
BATCH = 64
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def open_link(name: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    try:
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        pass  # older kernels: outgoing frames are skipped by their packet type below
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((name, ETH_P_ALL))
    s.setblocking(False)
    return s


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="relay")
    p.add_argument("--mark", required=True, help="pidfile under containet's run directory")
    p.add_argument("--near", required=True, help="the link toward the impaired side")
    p.add_argument("--far", required=True, help="the link toward the rest of the network")
    p.add_argument("--delay", type=float, default=0.0, help="ms")
    p.add_argument("--jitter", type=float, default=0.0, help="ms")
    p.add_argument("--duplicate", type=float, default=0.0, help="percent")
    p.add_argument("--reorder", type=float, default=0.0, help="percent")
    return p.parse_args(argv)


def arrival(ancdata: list[tuple[int, int, bytes]], wall_to_mono: float) -> float:
    """When the kernel received the frame (SO_TIMESTAMPNS), on the monotonic clock; now
    when it did not say. Scheduling from arrival, not from when this process got to read
    it, keeps a busy machine's read latency out of the delay."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9 - wall_to_mono
    return time.monotonic()


def realtime() -> None:
    """Run at a low real-time priority: on a loaded machine a delay line woken late
    adds its lateness to every frame. It sleeps in select() between frames, and the
    kernel's RT throttling keeps a share of each CPU for everyone else."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        pass  # not allowed here: best effort at normal priority


def run(args: argparse.Namespace) -> None:
    near, far = open_link(args.near), open_link(args.far)
    delay, jitter = args.delay / 1000.0, args.jitter / 1000.0
    dup, reorder = args.duplicate / 100.0, args.reorder / 100.0
    heap: list[tuple[float, int, bytes]] = []
    seq = 0
    rnd = random.Random()
    stop = False
    realtime()

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    fds = [near, far]
    while not stop:
        now = time.monotonic()
        timeout = None if not heap else max(0.0, heap[0][0] - now)
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        wall_to_mono = time.time() - time.monotonic()
        for sock in ready:
            for _ in range(BATCH):
                try:
                    data, anc, _flags, addr = sock.recvmsg(BUF, 64)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                if sock is near:
                    _send(far, data)
                    continue
                copies = 2 if dup and rnd.random() < dup else 1
                at = arrival(anc, wall_to_mono)
                for _c in range(copies):
                    if reorder and rnd.random() < reorder or not (delay or jitter):
                        _send(near, data)
                        continue
                    wait = delay + (rnd.uniform(-jitter, jitter) if jitter else 0.0)
                    seq += 1
                    heapq.heappush(heap, (at + max(0.0, wait), seq, data))
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            _send(near, heapq.heappop(heap)[2])


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.send(data)
    except OSError:
        pass  # a full queue or a frame the link refuses: dropped, as on a wire


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with open(args.mark, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    try:
        run(args)
    finally:
        try:
            os.unlink(args.mark)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
