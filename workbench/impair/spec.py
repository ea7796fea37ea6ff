"""What an impairment asks for: delay, jitter, loss, duplication, reordering, rate.

Values are netem's: milliseconds, percent, Mbit/s; 0 means "none" (a flag set back
to 0 removes that part). A `Spec` is checked before anything changes, so bad
input is one line and nothing is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import BadInput

MAX_DELAY_MS = 10_000.0
MAX_RATE_MBIT = 100_000.0
FLAGS = ("delay", "jitter", "loss", "duplicate", "reorder", "rate")


@dataclass(frozen=True)
class Spec:
    delay: float = 0.0  # ms, toward the target
    jitter: float = 0.0  # ms, uniform +- around delay
    loss: float = 0.0  # percent of frames toward the target dropped
    duplicate: float = 0.0  # percent sent twice
    reorder: float = 0.0  # percent that skip the delay queue
    rate: float = 0.0  # Mbit/s cap (both ways for a container), 0: none

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    @property
    def needs_delay_line(self) -> bool:
        """What netem does that the kernel's other qdiscs cannot: delay, jitter, dup, reorder."""
        return bool(self.delay or self.jitter or self.duplicate or self.reorder)

    def merged(self, changes: dict[str, float | None]) -> Spec:
        """This spec with the flags given (None: keep) changed; checked."""
        new = replace(self, **{k: float(v) for k, v in changes.items() if v is not None})
        return check(new)

    def describe(self) -> str:
        if self.empty:
            return "none"
        bits = []
        if self.delay or self.jitter:
            bits.append(f"delay {self.delay:g} ms" + (f" ±{self.jitter:g} ms" if self.jitter else ""))
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if value:
                bits.append(f"{name} {value:g}%")
        if self.rate:
            bits.append(f"rate {self.rate:g} Mbit/s")
        return ", ".join(bits)

    def netem_words(self) -> list[str]:
        """The arguments of `tc qdisc ... netem` for this spec (without rate)."""
        words: list[str] = []
        if self.delay or self.jitter:
            words += ["delay", f"{self.delay:g}ms"] + ([f"{self.jitter:g}ms"] if self.jitter else [])
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if value:
                words += [name, f"{value:g}%"]
        return words


def check_flag(name: str, value: float) -> float:
    """One flag alone: a number in its range."""
    if name not in FLAGS:
        raise BadInput(f"unknown impairment {name!r} (have: {', '.join(FLAGS)})")
    if value != value or value < 0:  # NaN or negative
        raise BadInput(f"--{name} must be 0 or more, not {value:g}")
    if name in ("loss", "duplicate", "reorder") and value > 100:
        raise BadInput(f"--{name} is a percentage: 0 to 100, not {value:g}")
    if name in ("delay", "jitter") and value > MAX_DELAY_MS:
        raise BadInput(f"--{name} {value:g} ms is more than {MAX_DELAY_MS:g} ms")
    if name == "rate" and value > MAX_RATE_MBIT:
        raise BadInput(f"--rate {value:g} Mbit/s is beyond any link here (max {MAX_RATE_MBIT:g})")
    return value


def check(spec: Spec) -> Spec:
    for f in fields(spec):
        check_flag(f.name, getattr(spec, f.name))
    if spec.jitter > spec.delay:
        raise BadInput(f"--jitter {spec.jitter:g} ms is more than --delay {spec.delay:g} ms")
    if spec.reorder and not spec.delay:
        raise BadInput("--reorder needs a --delay: reordered frames are the ones that skip it")
    return spec


def from_dict(data: dict[str, float]) -> Spec:
    return Spec(**{k: float(data.get(k, 0.0)) for k in FLAGS})
