"""Dependencies point one way: the core stands alone, and only recipes (and CLIs) reach into the
data tools. Read from the source, so a new upward import fails here before it tangles."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kani_adapt"
# The core: errors, config loading and the shared schema pieces, atomic writes, audio I/O, the
# path-or-hub-id resolver, devices, seeds/RNG state, console, plots, safe checkpoint reading.
CORE = ("atomic", "audio", "batching", "common_config", "config", "console", "defaults",
        "devices", "errors", "hub", "locks", "model_files", "plots", "resume", "rng", "stopping",
        "tokens")
# Layers that may use the data tools: they wire stages together or are the command line.
MAY_USE_DATA_TOOLS = ("kani_adapt.recipes", "kani_adapt.cli")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_every_core_module_exists_and_is_listed():
    flat = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert flat == set(CORE), (f"{sorted(flat ^ set(CORE))}: a top-level module is core (list it "
                               "in CORE) or moves into the layer it belongs to")


def upward(path: Path) -> list[str]:
    """What ``path`` imports from this project outside the core."""
    found = []
    for name in sorted(imports(path)):
        top, _, rest = name.partition(".")
        if top == "data_tools" or (top == "kani_adapt" and rest and rest.split(".")[0] not in CORE):
            found.append(name)
    return found


@pytest.mark.parametrize("name", CORE)
def test_a_core_module_imports_only_the_core(name):
    found = upward(PACKAGE / f"{name}.py")
    assert not found, f"kani_adapt/{name}.py imports {found} from above the core"


def test_only_recipes_and_the_cli_reach_into_the_data_tools():
    offenders = [module_name(p) for p in PACKAGE.rglob("*.py")
                 if any(m.split(".")[0] == "data_tools" for m in imports(p))
                 and not module_name(p).startswith(MAY_USE_DATA_TOOLS)]
    assert not offenders, f"these import data_tools (a layer above them): {offenders}"


def test_the_check_sees_an_upward_import_and_lets_core_imports_pass(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from kani_adapt import atomic, errors\nfrom kani_adapt.config import load_config\n"
                   "from kani_adapt.training.config import TrainConfig\nimport data_tools.runner\n")
    assert upward(bad) == ["data_tools.runner", "kani_adapt.training.config",
                           "kani_adapt.training.config.TrainConfig"]
