"""One `key=value` mechanism for every command of both CLIs: a command that reads a config takes
its keys as dotted overrides anywhere after the command's name (before or after its options and
other arguments), the CLI kit collects them in order, and the config loader reads them."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from data_tools import cli as data_cli
from kani_adapt.cli import main as kani_cli
from kani_adapt.core.cli_kit import OVERRIDES_HELP

CLIS = {"kani-adapt": kani_cli, "data-tools": data_cli}
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "demo.yaml"


def commands(build_parser) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command (and sub-command) of a CLI by its path of names, with its parser."""
    found = {}

    def walk(parser, path):
        found[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*path, name))
    walk(build_parser(), ())
    return found


def every_command():
    return [(cli, path, parser) for cli, module in CLIS.items()
            for path, parser in commands(module.build_parser).items()]


def taking_overrides():
    return [(cli, path, parser) for cli, path, parser in every_command()
            if getattr(parser, "takes_overrides", False)]


def ids(cases):
    return [" ".join((cli, *path)) for cli, path, _ in cases]


def test_every_command_that_reads_a_config_takes_overrides():
    reads_config = {(cli, path) for cli, path, parser in every_command()
                    if {a.dest for a in parser._actions} & {"config", "recipe"}}
    takes = {(cli, path) for cli, path, _ in taking_overrides()}
    assert reads_config - takes == set()
    expected = {("kani-adapt", ("train",)), ("kani-adapt", ("codec", "train")),
                ("kani-adapt", ("eval",)), ("kani-adapt", ("run",)), ("kani-adapt", ("check",)),
                ("kani-adapt", ("demo",)), ("data-tools", ("prepare",)),
                ("data-tools", ("check",)), ("data-tools", ("embed",)),
                ("data-tools", ("contribute", "validate")),
                ("data-tools", ("contribute", "package"))}
    assert expected <= takes


def filled(parser) -> tuple[list[list[str]], dict[str, str]]:
    """Arguments that satisfy ``parser`` in groups (each positional, each required option with
    its value, and one optional option whose value itself looks like an override), and the
    value each destination must get."""
    groups, expected = [], {}
    for action in parser._actions:
        if action.dest in ("help", "overrides") or isinstance(action, argparse._SubParsersAction):
            continue
        if not action.option_strings:
            groups.append([f"{action.dest}-value"])
        elif action.required:
            groups.append([action.option_strings[-1], f"{action.dest}-value"])
        elif not any("=" in v for v in expected.values()) and type(action) is argparse._StoreAction \
                and action.type in (None, Path) and not action.choices:
            groups.append([action.option_strings[-1], "looks=like.an.override"])
        else:
            continue
        expected[action.dest] = groups[-1][-1]
    return groups, expected


@pytest.mark.parametrize("cli, path, parser", taking_overrides(), ids=ids(taking_overrides()))
def test_overrides_are_collected_before_between_and_after_the_other_arguments(cli, path, parser):
    groups, expected = filled(parser)
    given = [f"a{i}.key=v{i}" for i in range(len(groups) + 1)]
    argv = [*path]
    for override, group in zip(given, [*groups, []]):
        argv += [override, *group]  # one before every argument, one at the end
    args = CLIS[cli].build_parser().parse_args(argv)
    assert args.overrides == given
    assert {dest: str(getattr(args, dest)) for dest in expected} == expected


def normalised_help(parser) -> str:
    return " ".join(parser.format_help().split())


@pytest.mark.parametrize("cli, path, parser", every_command(), ids=ids(every_command()))
def test_help_says_where_overrides_go_once(cli, path, parser):
    phrase = " ".join(OVERRIDES_HELP.split())
    expected = 1 if getattr(parser, "takes_overrides", False) else 0
    assert normalised_help(parser).count(phrase) == expected


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("configs")
    (folder / "data.yaml").write_text("work: work\n")
    (folder / "codec.yaml").write_text("max_steps: 3\n")
    (folder / "prefer.yaml").write_text("run_dir: rounds\npolicy: sft/merged\ndataset: data/hf\n")
    (folder / "contributed").mkdir()
    return {"data": folder / "data.yaml", "codec": folder / "codec.yaml", "prefer": folder / "prefer.yaml",
            "dir": folder / "contributed", "out": folder / "out"}


def base_argv(cli: str, path: tuple[str, ...], c: dict[str, Path]) -> list[str]:
    """A command line of each command that reaches its config loader."""
    if cli == "data-tools":
        if path[0] == "contribute":
            return [*path, str(c["dir"]), *(["--out", str(c["out"])] if path[1] == "package" else [])]
        return [*path, str(c["data"])]
    return {("train",): ["train"], ("codec", "train"): ["codec", "train", str(c["codec"])],
            ("eval",): ["eval", "some/checkpoint", "--set", "eval.jsonl"],
            ("run",): ["run", str(RECIPE)], ("check",): ["check", str(RECIPE)],
            ("demo",): ["demo", "--out", str(c["out"])], ("plan",): ["plan", str(RECIPE)],
            ("prefer",): ["prefer", str(c["prefer"])]}[path]


@pytest.mark.parametrize("cli, path, parser", taking_overrides(), ids=ids(taking_overrides()))
@pytest.mark.parametrize("where", ["first", "last"])
def test_an_override_anywhere_reaches_the_commands_config_loader(cli, path, parser, where, configs,
                                                                 capsys):
    argv = base_argv(cli, path, configs)
    bad = "zz_not_a_key=1"
    argv = [*path, bad, *argv[len(path):]] if where == "first" else [*argv, bad]
    assert CLIS[cli].main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "unknown key 'zz_not_a_key'" in err, err  # said by the loader, not by argparse


def test_an_argument_that_is_no_override_is_refused_by_the_loader_naming_it(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("mode: lora\n")
    assert kani_cli.main(["train", str(tmp_path / "config.yaml"), "stray"]) == 2
    assert "override 'stray' must look like key=value" in capsys.readouterr().err


def test_an_option_value_shaped_like_an_override_stays_the_options():
    args = kani_cli.build_parser().parse_args(
        ["eval", "ckpt", "--set", "a=b.jsonl", "samples=2", "--out=x=y", "--comp", "c=d"])
    assert (str(args.eval_set), str(args.out), args.compare) == ("a=b.jsonl", "x=y", ["c=d"])
    assert args.overrides == ["samples=2"]


def test_after_a_double_dash_nothing_is_an_override(capsys):
    args = kani_cli.build_parser().parse_args(["train", "mode=lora", "--", "odd=name.yaml"])
    assert args.overrides == ["mode=lora"] and str(args.config) == "odd=name.yaml"


def test_a_resumed_codec_run_refuses_a_config_file_beside_it(tmp_path, capsys):
    assert kani_cli.main(["codec", "train", "max_steps=9", "--resume", str(tmp_path),
                          str(tmp_path / "c.yaml")]) == 2
    assert "not both" in capsys.readouterr().err


def test_the_override_pattern_is_a_dotted_key_then_equals():
    from kani_adapt.core.cli_kit import OVERRIDE

    for token in ("lr=1", "optim.lr=1e-4", "eval.scorers.languages.de_hessian=de", "a=", "x-y.z=[1]"):
        assert OVERRIDE.match(token), token
    for token in ("runs/a=b.yaml", "=1", "1x=2", "-o=1", "path.yaml", ".a=1"):
        assert not OVERRIDE.match(token), token
    assert re.sub(r"\s+", " ", OVERRIDES_HELP) == OVERRIDES_HELP  # one line, wrapped by argparse
