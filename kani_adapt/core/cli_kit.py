"""The CLI kit both command lines share (``kani-adapt`` and ``data-tools``): a parser whose
errors are one line, the help formatter, ``--verbose`` and ``--device``, ``key=value`` config
overrides, and the project's exception boundary.

Overrides (:func:`add_overrides`): a command that reads a config takes dotted ``key=value``
settings anywhere after its name, before or after its options and other arguments; the parser
collects them in order into ``args.overrides`` (an option's own value, ``--text a=b``, stays
the option's), and the config loader parses them (:func:`kani_adapt.config.load.read_yaml`).

Expected failures (a project error, the operating system refusing a file: no space left,
read-only file system, permission denied, symlink loop, file not found..., or memory running
out, in Python or in torch's CPU and CUDA allocators) print one line on stderr and exit with
code 2. ``--verbose`` (a global flag of both CLIs) adds the traceback. A stop signal (SIGTERM,
SIGINT, SIGUSR1) ends a command with one line and exit code 128 + the signal number
(``kani_adapt.core.stopping``).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import traceback
import types
import typing

from kani_adapt.core import console, devices
from kani_adapt.core.errors import KaniAdaptError, PreflightError, describe_os_error
from kani_adapt.core.stopping import Stopped, raise_on_signals

USAGE_ERROR = 2
# How torch says that an allocation failed (CPU allocator, CUDA caching allocator, MPS).
_OUT_OF_MEMORY = re.compile(r"can't allocate memory|out of memory|OutOfMemory|"
                            r"not enough memory|failed to allocate", re.IGNORECASE)


class UsageError(Exception):
    pass


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written; shows a default only where there is one worth reading
    (not on required arguments, flags, or options whose help already states it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or action.required
                or "default" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


# What a config override looks like on a command line: a dotted key, then "=" (optim.lr=1e-4).
OVERRIDE = re.compile(r"[A-Za-z_][\w-]*(?:\.[\w-]+)*=")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (and exit code 2) instead of usage, and
    collects the ``key=value`` overrides of a command that takes them (:func:`add_overrides`)."""

    takes_overrides = False

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def parse_known_args(self, args=None, namespace=None):
        if not self.takes_overrides:
            return super().parse_known_args(args, namespace)
        rest, found = self._split_overrides(list(sys.argv[1:] if args is None else args))
        ns, extras = super().parse_known_args(rest, namespace)
        # Anything else argparse put in the overrides slot is passed on: the loader refuses it
        # as not key=value, naming it.
        ns.overrides = [*found, *(ns.overrides or [])]
        return ns, extras

    def _split_overrides(self, args: list[str]) -> tuple[list[str], list[str]]:
        """(the arguments for argparse, the overrides among them, in order)."""
        rest, found, i = [], [], 0
        while i < len(args):
            token = args[i]
            if token == "--":  # everything after it is a plain argument
                return rest + args[i:], found
            taken = self._values_taken(token, args[i + 1:])
            if not taken and OVERRIDE.match(token):
                found.append(token)
            else:
                rest += args[i:i + 1 + taken]
            i += 1 + taken
        return rest, found

    def _values_taken(self, token: str, after: list[str]) -> int:
        """How many of the arguments ``after`` the option ``token`` takes as its value(s) (0 for
        a token that is not an option, or carries its value: ``--out=x``)."""
        if not token.startswith("-") or "=" in token:
            return 0
        actions = self._option_string_actions
        action = actions.get(token)
        if action is None and token.startswith("--"):  # argparse accepts unique prefixes
            matches = {a for name, a in actions.items() if name.startswith(token)}
            action = matches.pop() if len(matches) == 1 else None
        nargs = getattr(action, "nargs", 0)  # not an option of this command: 0
        if nargs is None or isinstance(nargs, int):
            return min(1 if nargs is None else nargs, len(after))
        if nargs == argparse.OPTIONAL:
            return int(bool(after) and not after[0].startswith("-"))
        return next((n for n, a in enumerate(after) if a.startswith("-")), len(after))  # * and +


def add_overrides(parser: Parser, example: str) -> None:
    """Declare that a command reads a config and takes ``key=value`` overrides of it anywhere on
    its command line; they arrive as ``args.overrides`` (a list, in the order given)."""
    parser.takes_overrides = True
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", default=[],
                        help=f"{OVERRIDES_HELP}, e.g. {example}")


OVERRIDES_HELP = ("config settings as dotted key=value, anywhere after the command (before or "
                  "after its options and other arguments)")


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="print the full traceback of an error")


def add_device(parser: argparse.ArgumentParser, what: str, default: str | None = "auto",
               note: str = "auto: a GPU when there is one, else the CPU") -> None:
    """The ``--device`` of every command, with the values every config's ``device`` takes."""
    parser.add_argument("--device", type=devices.check, default=default, metavar="DEVICE",
                        help=f"where {what} runs: {devices.CHOICES} ({note})")


def add_fields(parser: argparse.ArgumentParser, cls, title: str, description: str,
               note=lambda name, default: f"default: {default}") -> None:
    """One option per field of the dataclass ``cls``, in a group of the help: ``--top-p`` for
    ``top_p``, of the field's type (a bool: ``--x`` / ``--no-x``; a Literal: its choices; a
    list: several values), its help the field's ``metadata["help"]``, its range (``RANGES``) and
    ``note(name, default)``. Every option defaults to None (not given): the caller layers what
    was given over its other sources, and the config loader checks the values."""
    group = parser.add_argument_group(title, description)
    hints = typing.get_type_hints(cls)
    ranges = {key: spec for klass in reversed(cls.__mro__)  # a subclass adds to its bases'
              for key, spec in vars(klass).get("RANGES", {}).items()}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        text = "; ".join(part for part in (f.metadata.get("help", ""),
                                           ranges.get(f.name) and f"range {ranges[f.name]}",
                                           note(f.name, default)) if part)
        flag, kind = "--" + f.name.replace("_", "-"), _plain(hints[f.name])
        options = {"dest": f.name, "default": None, "help": text}
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(kind) is typing.Literal:
            group.add_argument(flag, choices=typing.get_args(kind), **options)
        elif typing.get_origin(kind) in (list, tuple):
            item = _plain((typing.get_args(kind) or (str,))[0])
            group.add_argument(flag, nargs="+", type=item, metavar=f.name.upper(), **options)
        else:
            group.add_argument(flag, type=kind, metavar=f.name.upper(), **options)


def _plain(tp):
    """The type an option parses for a field of type ``tp`` (``Optional[int]``: int)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def one_line(err: BaseException) -> str | None:
    """The one-line message of an expected error; None for a bug (it keeps its traceback)."""
    if isinstance(err, PreflightError):  # one line per problem
        return "\nerror: ".join(" ".join(p.split()) for p in err.problems)
    if isinstance(err, KaniAdaptError):
        return " ".join(str(err).split())
    if isinstance(err, OSError) and err.errno is not None:
        return describe_os_error(err)
    if isinstance(err, MemoryError):
        return "out of memory" + (f": {_first_line(err)}" if str(err) else "")
    if isinstance(err, RuntimeError) and _OUT_OF_MEMORY.search(str(err)):
        return f"out of memory: {_first_line(err)}; use smaller batches or sizes, or a machine " \
               "with more memory"
    return None


def _first_line(err: BaseException) -> str:
    text = " ".join((str(err).strip().splitlines() or [""])[0].split())
    return text[:200] + ("..." if len(text) > 200 else "")


def run_guarded(func, args) -> int:
    """Run a command; an expected error becomes one line on stderr and exit code 2."""
    try:
        with raise_on_signals():
            return int(func(args) or 0)
    except Stopped as stop:
        print(str(stop), file=sys.stderr)
        return stop.exit_code
    except (KaniAdaptError, OSError, MemoryError, RuntimeError) as err:
        message = one_line(err)
        if message is None:
            raise
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"error: {console.shown(message, keep=chr(10))}", file=sys.stderr)
        return USAGE_ERROR


def run_cli(parser: Parser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run the chosen command; no command prints the help (exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # --verbose is global: accepted before or after the command name.
    end = argv.index("--") if "--" in argv else len(argv)
    verbose = "--verbose" in argv[:end]
    argv = [a for a in argv[:end] if a != "--verbose"] + argv[end:]
    try:
        args = parser.parse_args(argv)
        args.verbose = verbose
    except UsageError as err:
        print(f"error: {console.shown(err)}", file=sys.stderr)
        return USAGE_ERROR
    console.setup(verbose=verbose)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return USAGE_ERROR
    return run_guarded(args.func, args)
