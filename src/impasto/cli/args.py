"""Flags made from the option declarations (impasto.options), and the parser that answers
a mistyped one with the command's own usage and a guess at what was meant."""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import fields
from typing import Any

from ..errors import OptionError
from ..options import SETUP, Setup, default_of, layer_spec, spec_of

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors name the closest flag or command there is."""

    def error(self, message: str):
        # the message's words first: sys.argv is another program's when main() is called
        words = message.split() + [a for a in sys.argv[1:] if a.startswith("--")]
        flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        commands = [
            c for a in self._actions if a.choices and not a.option_strings for c in a.choices
        ]
        for word in words:
            word = word.strip("'\",:").split("=")[0]
            # a flag for what looks like one, a command for any other word: the message's
            # own words ("levels are relu1_1 ...") are not mistyped flags
            known = flags if word.startswith("-") else commands
            if word in known:
                continue
            close = difflib.get_close_matches(word, known, n=1, cutoff=0.75)
            if close:
                message += f" (did you mean {close[0]}?)"
                break
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class Help(argparse.RawDescriptionHelpFormatter):
    """Help with room for the flags."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return layer_spec(value)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _reader(name: str, spec, parse):
    """argparse's `type`: the text parsed, then checked against the declaration, so a
    bad value is refused naming its flag before any work starts."""

    def read(text: str):
        try:
            value = parse(text)
            spec.check(name, value)
        except (ValueError, OverflowError, OptionError) as e:
            text = str(e)
            if text.startswith(f"{name} must"):  # the flag names it already
                text = text.removeprefix(f"{name} ")
            raise argparse.ArgumentTypeError(text) from None
        return value

    read.__name__ = name  # argparse names the type in its messages
    return read


def add_options(parser: argparse.ArgumentParser, cls: type, only: tuple = ()) -> None:
    """A flag for each declared field of dataclass `cls` (or of `only` those), with its
    help, default, choices and bounds. Flags not given leave their field out of the
    namespace (argparse.SUPPRESS), so a preset's values or a method's defaults stand."""
    for f in fields(cls):
        spec = spec_of(f)
        if spec is None or (only and f.name not in only):
            continue
        default = default_of(f)
        flag = spec.flag or "--" + f.name.replace("_", "-")
        text = spec.help
        if default not in (None, False, (), []) and not spec.negate:
            text += f" (default: {_shown(default)})"
        common = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
        if isinstance(default, bool):
            if spec.negate:
                common["help"] = f"do not {text[0].lower()}{text[1:]}"
                parser.add_argument(spec.negate, action="store_false", **common)
            else:
                parser.add_argument(flag, *spec.aliases, action="store_true", **common)
            continue
        parse = spec.parse or (type(default) if isinstance(default, (int, float)) else str)
        metavar = spec.metavar or {int: "N", float: "X"}.get(parse, "VALUE")
        kind = {"type": _reader(f.name, spec, parse), "metavar": metavar}
        if spec.choices:
            names = "|".join(map(str, spec.choices))
            kind = {"type": parse, "choices": spec.choices, "metavar": "{" + names + "}"}
        if spec.const is not None:
            kind["nargs"], kind["const"] = "?", spec.const
        if spec.repeat:
            kind["action"] = "append"
        parser.add_argument(flag, *spec.aliases, required=spec.required, **kind, **common)


def add_setup(parser: argparse.ArgumentParser, method: str) -> None:
    """The flags of what `method` loads (device, weights, model, ...)."""
    add_options(parser, Setup, only=SETUP[method])


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` set on the command line."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def chosen(args: argparse.Namespace, cls: type) -> Any:
    """An instance of options dataclass `cls`: the fields given, the rest its defaults."""
    return cls(**given(args, cls))
