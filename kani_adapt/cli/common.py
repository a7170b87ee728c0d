"""Shared CLI plumbing: one-line errors with exit code 2, and the project exception boundary."""
from __future__ import annotations

import argparse
import sys

from kani_adapt.errors import KaniAdaptError

USAGE_ERROR = 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (and exit code 2) instead of usage."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def run_guarded(func, args) -> int:
    """Run a command; a user error becomes one line on stderr and exit code 2."""
    try:
        return int(func(args) or 0)
    except KaniAdaptError as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE_ERROR


def run_cli(parser: Parser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run the chosen command; no command prints the help (exit 2)."""
    from kani_adapt import console

    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE_ERROR
    console.setup(verbose=bool(getattr(args, "verbose", False)))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return USAGE_ERROR
    return run_guarded(args.func, args)
