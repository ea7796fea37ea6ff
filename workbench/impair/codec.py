"""Intents as JSON records and back (for the run directory's records)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

_KINDS: dict[str, type] = {}


def register(cls: type) -> type:
    _KINDS[cls.__name__] = cls
    return cls


def encode(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        out["__kind__"] = type(obj).__name__
        return out
    if isinstance(obj, tuple | list):
        return [encode(x) for x in obj]
    return obj


def decode(data: Any, hint: Any = None) -> Any:
    if isinstance(data, dict) and "__kind__" in data:
        cls = _KINDS[data["__kind__"]]
        hints = typing.get_type_hints(cls)
        kwargs = {
            f.name: decode(data[f.name], hints.get(f.name)) for f in dataclasses.fields(cls) if f.name in data
        }
        return cls(**kwargs)
    if isinstance(data, list):
        args = typing.get_args(hint)
        inner = args[0] if args else None
        return tuple(decode(x, inner) for x in data)
    return data
