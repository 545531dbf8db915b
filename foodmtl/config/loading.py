"""Loading a config: dataclass defaults <- YAML <- ``key=value`` overrides, checked.

An experiment YAML may name a base file with ``_base_: other.yaml`` (relative to
itself); keys merge depth-first. Unknown keys are rejected with the closest
valid names, malformed YAML with its line number, bad values and names before training.
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from foodmtl.config import schema as sections
from foodmtl.config.check import resolve_names
from foodmtl.config.schema import Config, validate
from foodmtl.config.types import type_error
from foodmtl.errors import ConfigError
from foodmtl.utils.output import atomic_write


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML at ``path`` (with its ``_base_`` chain), then overrides."""
    merged: dict[str, Any] = {}
    if path is not None:
        merged = read_yaml_chain(Path(path))
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(merged, key, value)
    return from_dict(merged)


def from_dict(values: dict[str, Any]) -> Config:
    """Validate keys (with suggestions) and types, then build the dataclass tree."""
    check_keys(values, Config, prefix="")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), values)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:  # check_keys caught what it knows; OmegaConf's first line otherwise
        raise ConfigError(f"{exc.full_key}={exc.value}: {str(exc).splitlines()[0]}") from None
    validate(cfg)
    return resolve_names(cfg)


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: Path) -> None:
    """Atomic: a full disk raises OutputError naming ``path`` and leaves no partial file."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    atomic_write(path, lambda f: f.write(text.encode()))


def read_yaml_chain(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"_base_ cycle through {path}")
    data = read_yaml(path)
    base = data.pop("_base_", None)
    if base is None:
        return data
    parent = read_yaml_chain(path.parent / base, seen + (path.resolve(),))
    return deep_merge(parent, data)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(f"malformed YAML in {path} at {where}: {exc.problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def changed(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose value differs, with (before, after)."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(before) | set(after), key=str):
        old, new, name = before.get(key), after.get(key), f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            out.update(changed(old, new, name + "."))
        elif old != new:
            out[name] = (old, new)
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value). A text field keeps the text as typed (``run=0123`` stays
    "0123", not YAML's 83); other values are YAML. A value YAML cannot read is an error, never
    silently text, and so is a YAML tag (``!!python/...``)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{item}' is not key=value (e.g. train.epochs=3)")
    if raw.lstrip().startswith("!"):
        raise ConfigError(f"override '{item}': YAML tags are not allowed; quote a text value")
    annotation = field_annotation(key)
    if not raw:
        return key, None
    if annotation in ("str", "str | None") and raw[0] not in "'\"" and raw not in ("null", "~"):
        return key, raw
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"override '{item}' cannot be read: {problem}") from None


def set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: '{part}' is a value, not a section")
        target = node
    target[leaf] = value


def field_annotation(key: str) -> str | None:
    """The annotation of the dotted ``key`` in Config; None inside free-form mappings or if unknown."""
    schema: type | None = Config
    annotation = None
    for part in key.split("."):
        fields = {f.name: f.type for f in dataclasses.fields(schema)} if schema else {}
        if part not in fields:
            return None
        annotation = fields[part]
        schema = _dataclass_type(annotation)
    return annotation


def check_keys(values: dict[str, Any], schema: type, prefix: str) -> None:
    """Reject keys that are not fields of ``schema`` (suggesting close names) and values of the wrong type."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in values.items():
        if key not in fields:
            valid = [prefix + name for name in fields]
            close = difflib.get_close_matches(prefix + key, valid, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(valid)}"
            raise ConfigError(f"unknown config key '{prefix}{key}'; {hint}")
        sub = fields[key].type
        nested = _dataclass_type(sub)
        if nested is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{prefix}{key}' is a section; give it a mapping")
            check_keys(value, nested, prefix + key + ".")
        item = _dataclass_type(sub.removeprefix("list[").removesuffix("]")) if isinstance(sub, str) \
            and sub.startswith("list[") else None
        if nested is None and (item is None or not isinstance(value, list)):
            error = type_error(prefix + key, value, sub)
            if error:
                raise ConfigError(error)
        if item is not None and isinstance(value, list):
            for i, entry in enumerate(value):
                if not isinstance(entry, dict):
                    raise ConfigError(f"{prefix}{key}[{i}] must be a mapping")
                check_keys(entry, item, f"{prefix}{key}[{i}].")


def _dataclass_type(annotation: Any) -> type | None:
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    return getattr(sections, name) if name in sections.SECTIONS else None
