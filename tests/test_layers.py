"""Dependencies point one way: each layer imports only the layers listed before it (and itself).

Read from the source (every import, also those inside functions), so an upward import fails
here before it tangles. docs/architecture.md says what each layer holds.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kani_adapt", "data_tools")
# The core: the top-level modules of kani_adapt. Errors, the config loader and its shared
# schema pieces, atomic writes, audio I/O, the path-or-hub-id resolver, devices, seeds/RNG
# state, console, plots, HTML pages with players, safe checkpoint reading, the token and
# dataset contracts, sampling settings, the text frontend and tokenizer fertility, the CLI kit,
# the Lightning plumbing both trainers share, the one-writer folder locks and the stop signals,
# the preflight checks' kit, espeak-ng speech and the per-machine cache of what is built from it
# (the tiny models).
CORE = ("atomic", "audio", "batching", "built", "cli_kit", "common_config", "config", "console",
        "dataset", "defaults", "devices", "errors", "espeak", "fertility", "frontend",
        "frontend_langs", "frontend_rules", "hub", "locks", "model_files", "pages", "plots",
        "preflight", "resume", "rng", "sampling", "stopping", "tokens", "trainer", "wiring")
# Bottom to top. A module belongs to the layer of the longest prefix it starts with.
LAYERS = [
    ("core", ["kani_adapt"] + [f"kani_adapt.{name}" for name in CORE]),
    # one module per published model (generator, speaker embedder, codec behind its protocol)
    ("models", ["kani_adapt.models", "kani_adapt.codec"]),
    ("scorers", ["kani_adapt.scorers"]),
    ("evaluation", ["kani_adapt.eval"]),
    # listening tests over eval folders; training's export puts their results in the card
    ("listening", ["kani_adapt.listen"]),
    # generator and codec training; the eval callback scores speech during training
    ("training", ["kani_adapt.training"]),
    # stages use models and scorers, never training or evaluation
    ("data tools", ["data_tools"]),
    ("recipes", ["kani_adapt.recipes"]),
    # thin commands over every layer, recipes included; their kit is in the core
    ("cli", ["kani_adapt.cli", "data_tools.cli"]),
]
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


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


def layer_of(module: str) -> str | None:
    """The layer of a module of this project (None: not one of ours)."""
    best, length = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = name, len(prefix)
    return best


def upward(path: Path, name: str | None = None) -> list[str]:
    """What the module at ``path`` imports from a layer above its own."""
    own = RANK[layer_of(name or module_name(path))]
    return sorted(m for m in imports(path)
                  if (layer := layer_of(m)) is not None and RANK[layer] > own)


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_core_module_exists_and_is_listed():
    flat = {p.stem for p in (ROOT / "kani_adapt").glob("*.py")} - {"__init__"}
    assert flat == set(CORE), (f"{sorted(flat ^ set(CORE))}: a top-level module is core (list it "
                               "in CORE) or moves into the layer it belongs to")


def test_every_module_belongs_to_a_layer():
    assert not [module_name(p) for p in sources() if layer_of(module_name(p)) is None]


@pytest.mark.parametrize("path", sources(), ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path):
    found = upward(path)
    assert not found, (f"{module_name(path)} ({layer_of(module_name(path))}) imports "
                       f"{found} from above its layer; move the shared piece down")


def test_the_check_sees_an_upward_import_and_lets_lower_and_own_layer_imports_pass(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("from kani_adapt import atomic, errors\nfrom kani_adapt.config import load_config\n"
                   "from kani_adapt.eval.config import EvalConfig\nimport kani_adapt.training.fit\n"
                   "def f():\n    from kani_adapt.training.data import GeneratorData\n"
                   "    import data_tools.runner\n    import numpy\n")
    assert upward(src, "kani_adapt.eval.x") == [
        "data_tools.runner", "kani_adapt.training.data", "kani_adapt.training.data.GeneratorData",
        "kani_adapt.training.fit"]
    assert upward(src, "kani_adapt.cli.x") == []  # the top layer may use everything
    assert upward(src, "kani_adapt.tokens") != []  # and the core nothing above it


def test_the_longest_prefix_decides_the_layer():
    assert layer_of("data_tools.cli") == "cli" and layer_of("data_tools.write") == "data tools"
    # the engines and the Curator adapter run stages: data tools, below recipes and the CLIs
    assert {layer_of(m) for m in ("data_tools.engines", "data_tools.engines.ray",
                                  "data_tools.engines.work", "data_tools.curator",
                                  "data_tools.throughput")} == {"data tools"}
    assert layer_of("kani_adapt.training.codec.train") == "training"
    assert layer_of("kani_adapt.codec.registry") == "models"
    assert layer_of("kani_adapt.dataset") == "core" and layer_of("numpy") is None
    assert layer_of("kani_adapt.listen.server") == "listening" and RANK["listening"] == RANK["evaluation"] + 1
