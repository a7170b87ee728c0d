"""Dependencies point one way: each layer imports only the layers listed before it (and itself),
and no module reaches itself again through its imports.

Read from the source (every import, also those inside functions), so an upward import or a cycle
fails here before it tangles. docs/architecture.md says what each layer holds.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kani_adapt", "data_tools")
# The contracts: the few top-level modules of kani_adapt every layer above them shares (token
# ids and positions, the tokenized dataset, audio I/O, batching by length). Everything else
# lives in a wing.
CONTRACTS = ("audio", "batching", "dataset", "tokens")
# data_tools' own top level: the CLI, the data config, the stage registry and its runner, the
# whole pipeline and its preflight, records between stages, the Curator adapter, the official
# pretraining format. Stages (and their kit), inputs, speech decisions, reports, engines and the
# contribution gate are wings.
DATA_TOOLS_TOP = ("cli", "config", "curator", "official_dataset", "preflight", "prepare", "records",
                  "registry", "runner")
# Bottom to top. A module belongs to the layer of the longest prefix it starts with; a name
# followed by "=" matches only itself (a package's face, not what lives under it).
LAYERS = [
    # errors, atomic writes, locks, stop signals, console, devices, seeds, hub ids, model files,
    # espeak-ng and the tiny-model cache, the CLI kit, the preflight kit
    ("infrastructure", ["kani_adapt.core"]),
    # the one config loader, wiring, shared sections (devices, seeds, LoRA, optimiser, sampling)
    ("configuration", ["kani_adapt.config"]),
    # the text frontend and tokenizer fertility; the package's face re-exports normalize
    ("text", ["kani_adapt.text", "kani_adapt="]),
    ("contracts", [f"kani_adapt.{name}" for name in CONTRACTS]),
    # every HTML page and the pictures in them
    ("pages", ["kani_adapt.pages"]),
    # the Lightning trainer both trainers build, safe resume
    ("lightning plumbing", ["kani_adapt.trainer"]),
    # one module per published model (generator, speaker embedder, codec behind its protocol)
    ("models", ["kani_adapt.models", "kani_adapt.codec"]),
    ("scorers", ["kani_adapt.scorers"]),
    ("evaluation", ["kani_adapt.eval"]),
    # listening tests over eval folders; training's export puts their results in the card
    ("listening", ["kani_adapt.listen"]),
    # generator and codec training; the eval callback scores speech during training
    ("training", ["kani_adapt.training"]),
    # preference rounds: rollouts, rewards, pairs, DPO runs and their eval
    ("preference", ["kani_adapt.preference"]),
    # data_tools, bottom to top; its stages use models and scorers, never training or evaluation.
    # Records between stages, the work folder's layout, the official pretraining format
    ("data records", ["data_tools=", "data_tools.records", "data_tools.official_dataset"]),
    # what a stage is built from: the protocol, its declarations, BaseStage, the run's context
    ("stage kit", ["data_tools.stages=", "data_tools.stages.kit"]),
    # what users hand in, read without trusting it
    ("data inputs", ["data_tools.inputs"]),
    # pure decisions over speech
    ("speech", ["data_tools.speech"]),
    # the dataset report, its page and pictures, throughput: read from what the stages logged
    ("data report", ["data_tools.report"]),
    # one module per stage, each with its config section
    ("data stages", ["data_tools.stages"]),
    # where a stage's work runs: this process or Ray (handed a stage; never the registry)
    ("data engines", ["data_tools.engines"]),
    # the one list of stages, the data config composed from it, the one runner
    ("stage registry", ["data_tools.registry", "data_tools.config", "data_tools.runner"]),
    # whole runs: the preflight, prepare, the Curator adapter
    ("data pipeline", ["data_tools.preflight", "data_tools.prepare", "data_tools.curator"]),
    # the contribution gate: the filter's and aligner's checks over a contributed folder
    ("contribution gate", ["data_tools.contribute"]),
    ("recipes", ["kani_adapt.recipes"]),
    # data-budget pilots and learning curves: they read a recipe, prepare its data through the
    # recipe runner, train and evaluate with its sections (so above the recipes, below the CLI)
    ("planning", ["kani_adapt.planning"]),
    # thin commands over every layer, recipes included; their kit is in the infrastructure
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
            exact = prefix.endswith("=")
            prefix = prefix.rstrip("=")
            if (module == prefix or (not exact and module.startswith(prefix + "."))) \
                    and len(prefix) > length:
                best, length = name, len(prefix)
    return best


def upward(path: Path, name: str | None = None) -> list[str]:
    """What the module at ``path`` imports from a layer above its own."""
    own = RANK[layer_of(name or module_name(path))]
    return sorted(m for m in imports(path)
                  if (layer := layer_of(m)) is not None and RANK[layer] > own)


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def module_graph() -> dict[str, set[str]]:
    """Module -> the modules of this project it imports (``from pkg import name`` counts as an
    import of ``pkg.name`` where that is a module, else of ``pkg``)."""
    known = {module_name(p) for p in sources()}
    graph = {}
    for path in sources():
        me = module_name(path)
        targets = set()
        for m in imports(path):
            while m and m not in known:
                m = m.rpartition(".")[0]
            if m and m != me and not me.startswith(m + "."):  # a package's own face is no cycle
                targets.add(m)
        graph[me] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def test_the_top_levels_hold_only_what_is_listed():
    flat = {p.stem for p in (ROOT / "kani_adapt").glob("*.py")} - {"__init__"}
    assert flat == set(CONTRACTS), (f"{sorted(flat ^ set(CONTRACTS))}: a top-level module of "
                                    "kani_adapt is a contract (list it) or moves into its wing")
    flat = {p.stem for p in (ROOT / "data_tools").glob("*.py")} - {"__init__"}
    assert flat == set(DATA_TOOLS_TOP), (f"{sorted(flat ^ set(DATA_TOOLS_TOP))}: a stage goes in "
                                         "data_tools/stages/, a helper in its wing")
    assert len(CONTRACTS) <= 10 and len(DATA_TOOLS_TOP) <= 10


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for init in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc.lower(), (f"{init.relative_to(ROOT)}: its docstring says what lives "
                                         "here and what it may import")


def test_every_module_belongs_to_a_layer():
    assert not [module_name(p) for p in sources() if layer_of(module_name(p)) is None]


@pytest.mark.parametrize("path", sources(), ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path):
    found = upward(path)
    assert not found, (f"{module_name(path)} ({layer_of(module_name(path))}) imports "
                       f"{found} from above its layer; move the shared piece down")


def test_no_module_reaches_itself_through_its_imports():
    found = cycles(module_graph())
    assert not found, f"import cycles (late imports count): {found}"


def test_the_cycle_check_sees_a_cycle_and_passes_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_check_sees_an_upward_import_and_lets_lower_and_own_layer_imports_pass(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("from kani_adapt.core import atomic, errors\n"
                   "from kani_adapt.config.load import load_config\n"
                   "from kani_adapt.eval.config import EvalConfig\nimport kani_adapt.training.fit\n"
                   "def f():\n    from kani_adapt.training.data import GeneratorData\n"
                   "    import data_tools.runner\n    import numpy\n")
    assert upward(src, "kani_adapt.eval.x") == [
        "data_tools.runner", "kani_adapt.training.data", "kani_adapt.training.data.GeneratorData",
        "kani_adapt.training.fit"]
    assert upward(src, "kani_adapt.cli.x") == []  # the top layer may use everything
    assert upward(src, "kani_adapt.tokens") != []  # and the contracts nothing above them
    # the infrastructure may not use the configuration, nor the text wing
    assert upward(src, "kani_adapt.core.errors") == sorted(
        ["kani_adapt.config.load", "kani_adapt.config.load.load_config", "data_tools.runner",
         "kani_adapt.eval.config", "kani_adapt.eval.config.EvalConfig", "kani_adapt.training.data",
         "kani_adapt.training.data.GeneratorData", "kani_adapt.training.fit"])


def test_the_longest_prefix_decides_the_layer():
    assert layer_of("data_tools.cli") == "cli" and layer_of("data_tools.stages.write") == "data stages"
    assert layer_of("data_tools.stages.kit") == layer_of("data_tools.stages") == "stage kit"
    assert {layer_of(m) for m in ("data_tools.engines", "data_tools.engines.ray",
                                  "data_tools.engines.work")} == {"data engines"}
    assert layer_of("data_tools.report.throughput") == "data report"
    assert layer_of("data_tools.newthing") is None and layer_of("data_tools") == "data records"
    assert RANK["data records"] < RANK["stage kit"] < RANK["data stages"] < RANK["data engines"] \
        < RANK["stage registry"] < RANK["data pipeline"] < RANK["contribution gate"] < RANK["recipes"]
    assert layer_of("kani_adapt.training.codec.train") == "training"
    assert layer_of("kani_adapt.codec.registry") == "models"
    assert layer_of("kani_adapt.dataset") == "contracts" and layer_of("numpy") is None
    assert layer_of("kani_adapt.core.atomic") == "infrastructure"
    assert layer_of("kani_adapt") == "text" and layer_of("kani_adapt.newthing") is None
    assert RANK["infrastructure"] < RANK["configuration"] < RANK["text"] < RANK["contracts"] \
        < RANK["pages"] < RANK["models"]
    assert layer_of("kani_adapt.listen.server") == "listening" and RANK["listening"] == RANK["evaluation"] + 1
    assert layer_of("kani_adapt.planning.curves") == "planning"
    assert RANK["recipes"] + 1 == RANK["planning"] == RANK["cli"] - 1
