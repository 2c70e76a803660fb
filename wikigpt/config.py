"""Typed, strict access to params.yaml.

Each stage owns one section and describes it with a dataclass next to the code that uses it
(e.g. `wikigpt.data.extract.ExtractConfig`). `load_section("extract", ExtractConfig)` returns an
instance, and rejects unknown keys, missing keys and wrongly typed values with a message that
names the key, so a typo in `dvc exp run -S train.lr=...` fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from wikigpt.errors import WikigptError

T = TypeVar("T")

PARAMS_FILE = Path("params.yaml")


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise WikigptError(f"{path}: params file not found (run from the repository root)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise WikigptError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise WikigptError(f"{path}: expected a mapping of sections at top level")
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; return it (ints are accepted for floats)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arm in get_args(tp):
            try:
                return _coerce(value, arm, key)
            except WikigptError as e:
                errors.append(str(e))
        raise WikigptError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise WikigptError(f"{key}: expected null, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise WikigptError(f"{key}: expected one of {list(get_args(tp))}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise WikigptError(f"{key}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise WikigptError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise WikigptError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise WikigptError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise WikigptError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise WikigptError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise WikigptError(f"{key}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise WikigptError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type[T], data: Any, section: str) -> T:
    """Build dataclass `cls` from `data`, strictly. `section` prefixes key names in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WikigptError(f"params.yaml: '{section}' must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise WikigptError(
            f"params.yaml: unknown key '{section}.{unknown[0]}' (known keys in '{section}': {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{section}.{name}"
        if name not in data:
            no_default = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if no_default:
                raise WikigptError(f"params.yaml: missing key '{key}'")
            continue
        try:
            kwargs[name] = _coerce(data[name], hints[name], key)
        except WikigptError as e:
            raise WikigptError(f"params.yaml: {e}") from None
    return cls(**kwargs)


def load_section(name: str, cls: type[T], params_path: str | Path = PARAMS_FILE) -> T:
    """Read section `name` of params.yaml into dataclass `cls` (strict)."""
    params = read_params(params_path)
    if name not in params:
        raise WikigptError(f"{params_path}: missing section '{name}'")
    return from_dict(cls, params[name], name)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Settings that never change a result. No stage declares this section as a DVC param, so
    changing them reruns nothing. Output must be identical whatever these are set to."""

    extract_workers: int = 2  # processes for the extract stage (output identical for any count)
    threads: int = 2  # torch / tokenizer threads
    log_interval: int = 10  # steps between training log lines
    wandb: Literal["disabled", "offline", "online"] = "offline"
    wandb_project: str = "wikigpt"
    progress: bool = True  # tqdm bars
    # torch threads while generating token by token on CPU (eval QA/samples): one-token steps of a
    # small model are too small to split, and extra threads only add sync cost (>50x under load).
    decode_threads: int = 1


def load_runtime(params_path: str | Path = PARAMS_FILE) -> RuntimeConfig:
    params = read_params(params_path)
    return from_dict(RuntimeConfig, params.get("runtime", {}), "runtime")

