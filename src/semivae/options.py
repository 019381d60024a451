"""Options: one dataclass field per option, with its help text, and type checks for values
from any source.

A flag, a config-file key and a Python keyword are the same field, so they are checked the
same way: :func:`check_section` turns ``{"epochs": "ten"}`` for ``[train]`` into the one-line
error ``[train] epochs = 'ten' is not a whole number; ...`` instead of a ``TypeError`` deep
inside training.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, field, fields

from .errors import UserError


def opt(default, help: str, **kw):
    """A dataclass field with its CLI help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def redefault(klass: type, name: str, default):
    """The field ``name`` of ``klass`` with another default (same help): for a subclass that
    wants its own default for an inherited option."""
    f = {f.name: f for f in fields(klass)}[name]
    return opt(default, f.metadata["help"])


def default_of(f: Field):
    return f.default_factory() if f.default is MISSING else f.default


def hints(klass: type) -> dict[str, object]:
    """Field name -> resolved type hint."""
    return typing.get_type_hints(klass)


def optional_base(hint) -> tuple[object, bool]:
    """(X, True) for ``X | None``, (hint, False) otherwise."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_value(value, hint, where: str):
    """``value`` converted to ``hint`` (str, int, float, bool, list[int], list[str],
    dict[str, float], each optionally ``| None``), or a one-line :class:`UserError`."""
    base, nullable = optional_base(hint)
    if value is None:
        if nullable:
            return None
        raise UserError(f"{where} has no value; give one or leave the key out for the default")
    origin, args = typing.get_origin(base), typing.get_args(base)

    def bad(what: str, example: str):
        return UserError(f"{where} = {value!r} is not {what}; give e.g. {where.split()[-1]} = {example}")

    if base is bool:
        if isinstance(value, bool):
            return value
        raise bad("true or false", "true")
    if base is int:
        if _is_int(value):
            return value
        raise bad("a whole number", "10")
    if base is float:
        if _is_int(value) or isinstance(value, float):
            return float(value)
        raise bad("a number", "0.5")
    if base is str:
        if isinstance(value, str):
            return value
        if _is_int(value) or isinstance(value, float):
            return str(value)
        raise bad("a string", '"name"')
    if origin is list:
        item = args[0]
        ok = _is_int if item is int else (lambda v: isinstance(v, str))
        if isinstance(value, (list, tuple)) and all(ok(v) for v in value):
            return list(value)
        what, example = ("whole numbers", "[512, 256]") if item is int else ("names", '["a", "b"]')
        raise bad(f"a list of {what}", example)
    if origin is dict:
        if isinstance(value, dict) and all(isinstance(k, str) and (_is_int(v) or isinstance(v, float))
                                           for k, v in value.items()):
            return {k: float(v) for k, v in value.items()}
        raise bad("a table of name = number", "{ name = 1.0 }")
    raise TypeError(f"unsupported option type {hint!r} for {where}")


def require_table(values, section: str) -> dict:
    """``values`` if it is a table (dict) of options, else a one-line UserError."""
    if not isinstance(values, dict):
        raise UserError(f"[{section}] must be a table of key = value pairs, not {type(values).__name__}; "
                        f"write it as a section, e.g. [{section}] then one key per line")
    return values


def check_section(klass: type, values: dict, section: str, valid: set[str] | None = None) -> dict:
    """Type-check ``values`` against the fields of ``klass``. Unknown keys are an error, named
    against ``valid`` (default: the fields of ``klass``)."""
    require_table(values, section)
    types_ = hints(klass)
    valid = valid or {f.name for f in fields(klass)}
    unknown = set(values) - valid
    if unknown:
        raise UserError(f"unknown config key(s) {sorted(unknown)} in section [{section}]; valid keys: {sorted(valid)}")
    return {k: check_value(v, types_[k], f"[{section}] {k}") for k, v in values.items() if k in types_}


# ------------------------------------------------------------- the same fields as flags


def _int_list(s: str) -> list[int]:
    try:
        return [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of integers, e.g. 512,256") from None


def _name_list(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def _name_values(s: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in s.split(",") if item.strip())}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a list of name=number, e.g. shape=10,scale=5") from None


def flag_kwargs(hint) -> dict:
    """argparse keywords for a field's type hint: lists as ``512,256``, tables as ``a=1,b=2``."""
    base, _ = optional_base(hint)
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(base) is list:
        if typing.get_args(base)[0] is int:
            return {"type": _int_list, "metavar": "N,N,..."}
        return {"type": _name_list, "metavar": "NAME,..."}
    if typing.get_origin(base) is dict:
        return {"type": _name_values, "metavar": "NAME=X,..."}
    return {"type": base}


def shown(v) -> str:
    """A default as a flag would spell it."""
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "none"
    return str(v)
