"""`--help` of every command stays light: no torch, transformers, NeMo, Lightning, datasets, Ray or Curator."""
import argparse
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "nemo", "lightning", "pytorch_lightning", "datasets", "ray",
         "nemo_curator")

# Runs one CLI's main(argv) in a fresh interpreter and prints the heavy modules it imported.
PROBE = """
import sys
import {module} as cli
try:
    cli.main({argv!r})
except SystemExit:
    pass
print(sorted({{n.split('.')[0] for n in sys.modules}} & set({heavy!r})))
"""


def commands(build_parser) -> list[list[str]]:
    """Every command and sub-command path of a parser, each followed by --help."""
    found = []

    def walk(parser, path):
        found.append(path + ["--help"])
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, path + [name])
    walk(build_parser(), [])
    return found


def heavy_imports(module: str, argv: list[str]) -> list[str]:
    code = PROBE.format(module=module, argv=argv, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal printed by PROBE


def all_help_calls():
    from data_tools import cli as data_cli
    from kani_adapt.cli import main as kani_cli

    return ([("kani_adapt.cli.main", argv) for argv in commands(kani_cli.build_parser)]
            + [("data_tools.cli", argv) for argv in commands(data_cli.build_parser)])


def test_the_probe_sees_a_heavy_import():
    code = PROBE.format(module="json", argv=[], heavy=HEAVY).replace("cli.main", "__import__('torch') and print")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "torch" in out.stdout


@pytest.mark.slow
def test_no_help_imports_a_heavy_library():
    offenders = {" ".join([module.split(".")[0], *argv]): found
                 for module, argv in all_help_calls()
                 if (found := heavy_imports(module, argv))}
    assert offenders == {}
