"""The CLI kit both command lines share (``kani-adapt`` and ``data-tools``): a parser whose
errors are one line, the help formatter, ``--verbose`` and ``--device``, and the project's
exception boundary.

Expected failures (a project error, the operating system refusing a file: no space left,
read-only file system, permission denied, symlink loop, file not found..., or memory running
out, in Python or in torch's CPU and CUDA allocators) print one line on stderr and exit with
code 2. ``--verbose`` (a global flag of both CLIs) adds the traceback. A stop signal (SIGTERM,
SIGINT, SIGUSR1) ends a command with one line and exit code 128 + the signal number
(``kani_adapt.stopping``).
"""
from __future__ import annotations

import argparse
import re
import sys
import traceback

from kani_adapt import console, devices
from kani_adapt.errors import KaniAdaptError, PreflightError, describe_os_error
from kani_adapt.stopping import Stopped, raise_on_signals

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


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (and exit code 2) instead of usage."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="print the full traceback of an error")


def add_device(parser: argparse.ArgumentParser, what: str, default: str | None = "auto",
               note: str = "auto: a GPU when there is one, else the CPU") -> None:
    """The ``--device`` of every command, with the values every config's ``device`` takes."""
    parser.add_argument("--device", type=devices.check, default=default, metavar="DEVICE",
                        help=f"where {what} runs: {devices.CHOICES} ({note})")


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
