"""Whether a value fits a config field's annotation, said the way people read it.

OmegaConf checks types too, but its errors read ``reference_type=TrainConfig`` and lose the
position of list items; checking first lets the message read ``train.epochs=abc: expected an
integer``. Annotations are the dataclasses' strings (``from __future__ import annotations``).
Conversions OmegaConf makes on merge are accepted: ``"3"`` for an int, ``"1e-3"`` for a float
(YAML 1.1 reads that as text), a number for a string.
"""
from __future__ import annotations

from typing import Any

WORDS = {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string", "list": "a list",
         "dict": "a mapping"}


def split_optional(annotation: str) -> tuple[str, bool]:
    base, _, rest = annotation.partition(" | ")
    return (base, True) if rest == "None" else (annotation, False)


def describe(annotation: str) -> str:
    base, optional = split_optional(annotation)
    words = WORDS.get(base.split("[", 1)[0], "a mapping")
    return f"{words} or null" if optional else words


def type_error(key: str, value: Any, annotation: str) -> str | None:
    """``None`` when ``value`` fits ``annotation``, else the message for the first misfit (list
    items and mapping values included)."""
    base, optional = split_optional(annotation)
    if value is None:
        return None if optional else f"{key}=null: expected {describe(annotation)}"
    outer, _, inner = base.partition("[")
    inner = inner.removesuffix("]")
    if outer == "list" and isinstance(value, list):
        return next((e for i, v in enumerate(value) if (e := type_error(f"{key}[{i}]", v, inner))), None)
    if outer == "dict" and isinstance(value, dict):
        item = inner.partition(", ")[2]
        return next((e for k, v in value.items() if (e := type_error(f"{key}.{k}", v, item))), None)
    return None if fits_scalar(value, outer) else f"{key}={show(value)}: expected {describe(annotation)}"


def fits_scalar(value: Any, name: str) -> bool:
    if name == "Any":
        return True
    if isinstance(value, bool):
        return name == "bool"
    if name == "int":
        return isinstance(value, int) or isinstance(value, str) and parses(int, value)
    if name == "float":
        return isinstance(value, (int, float)) or isinstance(value, str) and parses(float, value)
    if name == "str":
        return isinstance(value, (str, int, float))
    return False


def parses(convert: type, text: str) -> bool:
    try:
        convert(text)
    except ValueError:
        return False
    return True


def show(value: Any) -> str:
    """A value as it would be typed on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)
