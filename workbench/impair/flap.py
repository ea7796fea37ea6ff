"""The link flapper: takes a link down and up again, `--count` times (0: until stopped).

    python3 flap.py --mark RUN_DIR/impair/flap-KEY.pid --link NAME [--period S] [--count N]

Each cycle is `ip link set NAME down`, half a period, `ip link set NAME up`, half a
period. Standard library only, started by containet as a child in the link's
namespace; `--mark` (its pidfile under the run directory) is its mark. SIGTERM, or
the last cycle, ends it with the link up.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="flap")
    p.add_argument("--mark", required=True)
    p.add_argument("--link", required=True)
    p.add_argument("--period", type=float, default=1.0)
    p.add_argument("--count", type=int, default=0)
    args = p.parse_args(argv)
    stop = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    with open(args.mark, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    half = args.period / 2
    done = 0
    try:
        while not stop and (args.count == 0 or done < args.count):
            for state in ("down", "up"):
                res = subprocess.run(["ip", "link", "set", args.link, state], check=False, timeout=10)
                if res.returncode != 0:  # the link is gone (its container or namespace): done
                    return 1
                end = time.monotonic() + half
                while not stop and time.monotonic() < end:
                    time.sleep(min(0.02, max(0.0, end - time.monotonic())))
            done += 1
    finally:
        subprocess.run(["ip", "link", "set", args.link, "up"], check=False, timeout=10)
        try:
            os.unlink(args.mark)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
