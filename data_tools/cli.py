"""`data-tools`: the data preparation stages.

The stages (ingest, segment, align, filter, embed, tokenize, write) are added one module each;
until a stage exists this command says so instead of pretending to run it.
"""
from __future__ import annotations

import sys

from kani_adapt.cli.common import Parser, run_cli

DESCRIPTION = """\
Turn community recordings into KaniTTS2 training data, one resumable stage at a time.
No stage is available in this version yet: ingest, segment, align, filter, embed,
tokenize and write are planned.
"""


def build_parser() -> Parser:
    parser = Parser(prog="data-tools", description=DESCRIPTION)
    parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
