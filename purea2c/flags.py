"""Command-line flags generated from `Config`'s fields, and the typed check of a field's
value read from JSON (a run's ``config.json``).

Each field gets one flag (``--pi-learning-rate``; ``--clear-buffer`` / ``--no-clear-buffer``
for bools; ``--hidden-sizes 64 64`` for tuples) whose help is the field's ``doc``. Its type
comes from the field's default, else its annotation. Unset flags stay ``None`` so a preset's
values are kept.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import textwrap
from typing import Any, Callable, NamedTuple

from purea2c.config import Config

# A number a flag may take as its value, sign included: argparse's own pattern ('-1', '-.5')
# misses '-1e-3' and '-inf' and reads them as unknown options ("expected one argument").
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|infinity|nan)$",
                             re.IGNORECASE)


class FlagKind(NamedTuple):
    parse: Callable[[str], Any]  # one command-line token -> value
    is_bool: bool
    is_tuple: bool
    metavar: str  # BOOL, INT, FLOAT, STR or VALUE (of the elements, for tuples)
    optional: bool  # None is a valid value


def wrap(text: str) -> str:
    """Paragraphs filled to 88 columns (argparse keeps them as they are)."""
    return "\n\n".join(textwrap.fill(p, width=88, break_on_hyphens=False)
                       for p in text.split("\n\n"))


def _parse_literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _with_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_or_none(text: str) -> Any:
        return None if text.lower() == "none" else parse(text)
    return parse_or_none


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


def parse_keyword(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> ``(NAME, VALUE)``, the value read as a Python literal when it is one
    (``episode_length=1000`` -> 1000, ``backend=spring`` -> 'spring')."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, _parse_literal(value)


def flag_kind(field: dataclasses.Field) -> FlagKind:
    """How a command-line value of this Config field is parsed: from the type of its default
    value, else from its annotation (``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``,
    optionally ``| None``); ``env_kwargs`` takes ``NAME=VALUE`` pairs."""
    if field.name == "env_kwargs":
        return FlagKind(parse_keyword, False, True, "NAME=VALUE", False)
    default = field_default(field)
    annotation = field.type if isinstance(field.type, str) else str(field.type)
    optional = "None" in annotation

    def scalar(value: Any, text: str) -> tuple[Callable[[str], Any], str]:
        if isinstance(value, bool) or (value is None and text == "bool"):
            return parse_bool, "BOOL"
        if isinstance(value, int) or (value is None and text == "int"):
            return int, "INT"
        if isinstance(value, float) or (value is None and text == "float"):
            return float, "FLOAT"
        if isinstance(value, str) or (value is None and text == "str"):
            return str, "STR"
        return _parse_literal, "VALUE"

    if isinstance(default, bool) or (default is None and annotation.split("|")[0].strip()
                                      == "bool"):
        return FlagKind(parse_bool, True, False, "BOOL", optional)
    if isinstance(default, tuple) or annotation.startswith("tuple"):
        element = default[0] if isinstance(default, tuple) and default else None
        inner = annotation[annotation.find("[") + 1:].split(",")[0].strip() \
            if "[" in annotation else ""
        parse, metavar = scalar(element, inner)
        return FlagKind(parse, False, True, metavar, optional)
    base = annotation.split("|")[0].strip()
    parse, metavar = scalar(default, base)
    if optional:
        parse = _with_none(parse)
    return FlagKind(parse, False, False, metavar, optional)


_JSON_TYPES = {"BOOL": ("a bool", (bool,)), "INT": ("an int", (int,)),
               "FLOAT": ("a number", (int, float)), "STR": ("a string", (str,))}


def _scalar_ok(value: Any, metavar: str) -> bool:
    if metavar == "VALUE":
        return True
    if isinstance(value, bool) and metavar != "BOOL":
        return False
    return isinstance(value, _JSON_TYPES[metavar][1])


def json_field_value(name: str, value: Any) -> Any:
    """``value`` of Config field ``name`` as read from JSON, checked against the field's type
    (a list for a tuple field, an int for an int field, ...) and converted (lists to tuples,
    ints of float fields to floats). Raises ``ValueError`` naming the field and its type."""
    kind = flag_kind(fields()[name])
    if value is None and kind.optional:
        return None
    if name == "env_kwargs":  # [[name, value], ...]: Config checks the pairs
        if not isinstance(value, list):
            raise ValueError(f"field {name} must be a list of [name, value] pairs, got "
                             f"{_json_text(value)}")
        return value
    if kind.is_tuple:
        what = f"a list of {_JSON_TYPES.get(kind.metavar, ('values',))[0].split()[-1]}s"
        if not isinstance(value, list) or not all(_scalar_ok(v, kind.metavar) for v in value):
            raise ValueError(f"field {name} must be {what}, got {_json_text(value)}")
        return tuple(float(v) if kind.metavar == "FLOAT" else v for v in value)
    if not _scalar_ok(value, kind.metavar) or (value is None and kind.metavar != "VALUE"):
        what = _JSON_TYPES.get(kind.metavar, ("a value",))[0]
        raise ValueError(f"field {name} must be {what}"
                         f"{' or null' if kind.optional else ''}, got {_json_text(value)}")
    return float(value) if kind.metavar == "FLOAT" else value


def _json_text(value: Any) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def is_traced(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("pytree_node", True))


def _format_default(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) if value else "(empty)"
    return str(value)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `Config` field (``--pi-learning-rate``; ``--clear-buffer`` /
    ``--no-clear-buffer`` for bools; ``--hidden-sizes 64 64`` for tuples), with the field's
    documentation as help. Unset flags stay ``None`` so a preset's values are kept."""
    group = parser.add_argument_group(
        "Config fields", wrap(
        "Each flag sets one field of purea2c.Config; fields left unset take the preset's "
        "value, else the default shown. 'static' fields fix the compiled program's shapes "
        "and code paths; 'traced' hyperparameters are program inputs (vmappable in the "
        "Python API)."))
    for field in dataclasses.fields(Config):
        kind = flag_kind(field)
        flag = "--" + field.name.replace("_", "-")
        doc = field.metadata.get("doc", "").strip()
        role = "traced" if is_traced(field) else "static"
        help_text = f"{doc} [default: {_format_default(field_default(field))}; {role}]"
        help_text = help_text.replace("%", "%%")
        dest = f"config__{field.name}"
        if kind.is_bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        elif kind.is_tuple:
            group.add_argument(flag, dest=dest, type=kind.parse, nargs="*", default=None,
                               metavar=kind.metavar, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=kind.parse, default=None,
                               metavar=kind.metavar, help=help_text)
        if "_" in field.name:  # also accept the Python spelling, --pi_learning_rate
            alias = "--" + field.name
            if kind.is_bool:
                group.add_argument(alias, dest=dest, action=argparse.BooleanOptionalAction,
                                   default=None, help=argparse.SUPPRESS)
            else:
                group.add_argument(alias, dest=dest, type=kind.parse,
                                   nargs="*" if kind.is_tuple else None, default=None,
                                   help=argparse.SUPPRESS)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields given on the command line, ``{name: value}``."""
    out = {}
    for field in dataclasses.fields(Config):
        value = getattr(args, f"config__{field.name}", None)
        if value is None:
            continue
        out[field.name] = tuple(value) if isinstance(value, list) else value
    return out


def make_config(preset: str | None, overrides: dict[str, Any]) -> Config:
    """The config a ``train`` command line describes. Without ``preset``, the preset named
    after the environment is used when there is one (tuned settings), else the defaults."""
    if preset is None:
        env = overrides.get("env", field_default(fields()["env"]))
        if isinstance(env, str) and env in Config.preset_names():
            preset = env
    if preset is None:
        return Config(**overrides)
    return Config.preset(preset, **overrides)
