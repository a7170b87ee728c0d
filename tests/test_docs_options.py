"""The documentation names only options that exist, and every page of it can be found.

Where names are read: inline code (backticks) of README.md, recipes/README.md and docs/*.md;
the command lines (``kani-adapt ...``, ``data-tools ...``) of their code blocks; the opening
comment of every recipe under recipes/ (plain prose, no backticks there).

What counts as an option, by rule (no list of exceptions):
- a lowercase dotted name (``data.repeat_short_texts``, ``tags.<tag>.language``; ``<...>`` is a
  placeholder for any key of a mapping), or a name given a value (``mode=lora``,
  ``trainer.gpus_per_node=8``: the key=value override every command takes);
- whose first part is a top-level key of a schema below (a first part that is not, but is
  close to such a key (difflib, 0.8) is reported as a misspelling).
Not options: flags (``--merge``), package pins (``ray==2.60.0``), names with capitals, calls or brackets (``registry.ORDER``,
``torch.load(...)``), paths and hub ids (a ``/``), file names (a dotted name ending in a file
suffix: ``config.yaml``, ``eval.md``), module paths (``kani_adapt.text.frontend``: no schema
has a top-level key ``kani_adapt``), numbers and versions.

Which schema: a name is looked up from the root of each schema a user writes keys for: the
recipe (``kani-adapt run``/``check``), and the configs the recipe embeds as sections, each of
which a command also reads alone: training (``kani-adapt train``; ``generator`` in a recipe),
data (``data-tools``; ``data``), eval (``kani-adapt eval``; ``eval``), codec fine-tuning
(``kani-adapt codec train``; ``codec_finetune``), and the contribution gate's thresholds
(``data-tools contribute --config``). So ``data.train`` (training) and
``generator.data.train`` (recipe) both resolve, ``data.min_snr_db`` resolves nowhere.
Former names a schema still accepts (``RENAMED``) do not count: the docs name today's keys.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path

import pytest

from data_tools.config import DataConfig
from data_tools.contribute.config import ContributeConfig
from kani_adapt.recipes.schema import Recipe
from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.training.config import TrainConfig
from kani_adapt.eval.config import EvalConfig
from kani_adapt.preference.config import PreferConfig

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = {"recipe": Recipe, "training": TrainConfig, "data": DataConfig, "eval": EvalConfig,
           "codec training": CodecTrainConfig, "contribute": ContributeConfig,
           "preference": PreferConfig}
ROOT_KEYS = {f.name for schema in SCHEMAS.values() for f in dataclasses.fields(schema)}
# What a dotted name ending in one of these is: a file, not a key.
FILE_SUFFIXES = {"yaml", "yml", "json", "jsonl", "md", "py", "sh", "txt", "lab", "tsv", "csv",
                 "wav", "flac", "ogg", "mp3", "npy", "html", "png", "parquet", "safetensors",
                 "ckpt", "nemo", "lock", "sqlite", "pem", "onnx", "toml", "zip", "tar", "gz"}
KEY = re.compile(r"^[a-z_<][a-z0-9_<>]*(\.[a-z0-9_<>]+)*$")
COMMAND = re.compile(r"(^|\s)(kani-adapt|data-tools)\s")
FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```[ \t]*$", re.S | re.M)


# ---- reading the documents -------------------------------------------------------------------

def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "recipes" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def recipe_files() -> list[Path]:
    return sorted((ROOT / "recipes").rglob("*.yaml"))


def recipe_header(text: str) -> str:
    """The comment lines a recipe opens with (until its first line of YAML)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#") and line.strip():
            break
        lines.append(line.lstrip("# "))
    return "\n".join(lines)


def code_blocks(text: str) -> tuple[str, list[str]]:
    """(the prose, the lines of its code blocks: fenced, or indented four spaces after a blank
    line), continuation backslashes joined."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    prose = FENCE.sub("", text)
    indented = re.findall(r"(?:(?<=\n\n)|^)((?: {4}.*\n?)+)", prose)
    prose = re.sub(r"(?:(?<=\n\n)|^)(?: {4}.*\n?)+", "", prose)
    lines = "\n".join(blocks + indented).replace("\\\n", " ").splitlines()
    return prose, lines


def spans(text: str) -> list[str]:
    """What a Markdown page shows as code: inline spans, and its code blocks' command lines."""
    prose, lines = code_blocks(text)
    return re.findall(r"`([^`]+)`", prose) + [line for line in lines if COMMAND.search(line)]


def names_in(text: str) -> list[str]:
    """The option names a piece of code-like text claims (see the module's rules)."""
    found = []
    for token in text.split():
        token = token.strip("({[\"'").rstrip(",;:)}]\"'.")
        if re.search(r"[=<>!~]=", token):
            continue  # a package pin (torch==2.13.0), not an override
        valued = "=" in token
        key = token.split("=", 1)[0]
        if not KEY.match(key) or not (valued or "." in key):
            continue  # a flag, a path, a call, a name with capitals, a plain word
        if "." in key and key.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue  # a file name
        first = key.split(".")[0]
        if first in ROOT_KEYS or difflib.get_close_matches(first, ROOT_KEYS, n=1, cutoff=0.8):
            found.append(key)
    return found


def documented() -> dict[str, list[str]]:
    """Every option name of the docs and recipe headers, by the file that names it."""
    out = {}
    for page in markdown_pages():
        out[str(page.relative_to(ROOT))] = [n for s in spans(page.read_text(encoding="utf-8"))
                                            for n in names_in(s)]
    for recipe in recipe_files():
        out[str(recipe.relative_to(ROOT))] = names_in(recipe_header(recipe.read_text(encoding="utf-8")))
    return out


# ---- resolving a name against the schemas ------------------------------------------------------

def _unwrap(tp):
    """The dataclass, mapping or list a field type holds (Optional and Union members peeled)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = next((a for a in members if dataclasses.is_dataclass(a)
                   or typing.get_origin(a) in (dict, list)), members[0] if members else tp)
    return tp


def _step(tp, part: str):
    """The type a key part leads to from ``tp`` (None: no such key): a field of a dataclass,
    any key of a mapping (its value type), a field of a list's items."""
    tp = _unwrap(tp)
    if typing.get_origin(tp) is list:
        tp = _unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) is dict:
        return typing.get_args(tp)[1]
    if not dataclasses.is_dataclass(tp) or part not in {f.name for f in dataclasses.fields(tp)}:
        return None
    return typing.get_type_hints(tp)[part]


def _walk(schema: type, parts: list[str]) -> tuple[int, object]:
    """How many parts resolve from ``schema``, and the type reached."""
    tp = schema
    for depth, part in enumerate(parts):
        nxt = _step(tp, part)
        if nxt is None:
            return depth, tp
        tp = nxt
    return len(parts), tp


def resolves(schema: type, dotted: str) -> bool:
    parts = dotted.split(".")
    return _walk(schema, parts)[0] == len(parts)


def schema_of(dotted: str) -> list[str]:
    return [name for name, schema in SCHEMAS.items() if resolves(schema, dotted)]


def hint(dotted: str) -> str:
    """The nearest real key (from the schemas that resolve most of the name), for the message."""
    parts = dotted.split(".")
    for depth, tp in sorted((_walk(schema, parts) for schema in SCHEMAS.values()),
                            key=lambda walked: -walked[0]):
        tp = _unwrap(tp)
        fields = [f.name for f in dataclasses.fields(tp)] if dataclasses.is_dataclass(tp) else []
        if close := difflib.get_close_matches(parts[depth], fields, n=1):
            return ".".join([*parts[:depth], close[0], *parts[depth + 1:]])
    return ""


def unknown(names_by_file: dict[str, list[str]]) -> list[str]:
    problems = []
    for where, names in names_by_file.items():
        for name in sorted(set(names)):
            if not schema_of(name):
                near = hint(name)
                problems.append(f"{where}: `{name}` is no option" + (f" (did you mean `{near}`?)"
                                                                      if near else ""))
    return problems


# ---- the tests ---------------------------------------------------------------------------------

def test_every_option_the_docs_and_recipe_headers_name_exists_in_a_schema():
    names = documented()
    problems = unknown(names)
    assert not problems, "\n".join(problems)


def test_the_docs_are_read_for_options_at_all():
    """The check above has something to check: the names the front door and the pages hold."""
    names = documented()
    every = {n for found in names.values() for n in found}
    assert len(every) >= 60, sorted(every)
    for name in ("data.repeat_short_texts", "sampling.cfg_scale", "lora.targets",
                 "ray.allow_unauthenticated", "eval.scorers.asr", "tags.<tag>.language"):
        assert name in every, name
    assert all(names[str(r.relative_to(ROOT))] for r in recipe_files() if "demo" not in r.parts)


FAKE_PAGE = """# A page with mistakes

Set `data.repeat_shrot_texts: true` and `sampling.cfg_scael`; `sampeling.cfg_frames` too.

    kani-adapt train my.yaml trainer.gpus_per_nodes=8 \\
        data.token_budget=auto

```bash
data-tools prepare data.yaml filter.min_snr=10
```
"""
FAKE_RECIPE = """# Run: kani-adapt run this.yaml; Step 0: filter.tokenizr below writes fertility.json
# (generator.data.max_byte_fallbak).
name: fake
"""
CLEAN = """Not options: `kani_adapt.text.frontend`, `config.yaml`, `eval.md`, `--cfg-scale S`,
`registry.ORDER`, `torch.load(weights_only=True)`, `nineninesix/kani-tts-2-en`, `0.0.5`,
`pages.text`, `KANI_SCREENSHOTS=DIR`, `datasets==4.8.5`, `data_tools/stages/<stage>.py`. Options:
`generator.data.repeat_short_texts`, `tags.<tag>.accent_label`, `tags.sw.language`,
`data.ingest.sources`, `scorers.asr=openai/whisper-large-v3`, `mode=lora`, `filter.min_snr_db`,
`codec_finetune.mode`, `data.train`, `filter.dnsmos: true`.
"""


@pytest.mark.parametrize("text, wrong", [
    (FAKE_PAGE, {"data.repeat_shrot_texts", "sampling.cfg_scael", "sampeling.cfg_frames",
                 "trainer.gpus_per_nodes", "filter.min_snr"}),
])
def test_misspelled_options_in_a_page_are_found_with_a_hint(text, wrong):
    names = {n for s in spans(text) for n in names_in(s)}
    problems = unknown({"fake.md": sorted(names)})
    assert {p.split("`")[1] for p in problems} == wrong
    assert "did you mean `data.repeat_short_texts`?" in "\n".join(problems)
    assert "did you mean `trainer.gpus_per_node`?" in "\n".join(problems)
    assert "data.token_budget" in names  # a continuation line of a command is read too


def test_misspelled_options_in_a_recipe_header_are_found():
    problems = unknown({"fake.yaml": names_in(recipe_header(FAKE_RECIPE))})
    assert {p.split("`")[1] for p in problems} == {"filter.tokenizr", "generator.data.max_byte_fallbak"}


def test_files_modules_flags_and_ids_are_not_taken_for_options():
    names = {n for s in spans(CLEAN) for n in names_in(s)}
    assert not unknown({"clean.md": sorted(names)})
    assert names == {"generator.data.repeat_short_texts", "tags.<tag>.accent_label",
                     "tags.sw.language", "data.ingest.sources", "scorers.asr", "mode",
                     "filter.min_snr_db", "codec_finetune.mode", "data.train", "filter.dnsmos"}


def test_former_names_a_schema_still_accepts_do_not_count():
    assert not schema_of("trainer.devices")  # TrainerConfig.RENAMED: now gpus_per_node
    assert not schema_of("eval.scorers.languages")  # now tags.<tag>.language


# ---- the map of docs/ ------------------------------------------------------------------------

def readme_map() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Documentation\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "README.md has no '## Documentation' section (the map of docs/)"
    return match.group(1)


def test_every_page_in_docs_is_on_the_readmes_map():
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)(?:#[^)]*)?\)", readme_map()))
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set(), "pages missing from README's map (## Documentation)"
    assert linked - pages == set(), "the map links pages that do not exist"


def anchors(page: Path) -> set[str]:
    """The anchors a Markdown page's headings get (GitHub's way: lower case, punctuation
    dropped, spaces to hyphens)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("page", [p.relative_to(ROOT) for p in markdown_pages()], ids=str)
def test_every_relative_link_of_the_docs_reaches_a_file_and_its_heading(page):
    text = FENCE.sub("", (ROOT / page).read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        file = (ROOT / page).parent.joinpath(path) if path else ROOT / page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page}: links to nothing: {broken}"


PROJECT_DIRS = ("kani_adapt", "data_tools", "tests", "benchmarks", "recipes", "scripts", "docs")


def project_paths(text: str) -> list[str]:
    """Paths into the project's own folders that a page names in code (``data_tools/runner.py``,
    ``kani_adapt/models/{generator,speaker}``), and module paths (``kani_adapt.text.frontend``)
    as paths; a placeholder (``<stage>``) or glob keeps only the folder before it."""
    out = []
    for span in re.findall(r"`([^`\s]+)`", FENCE.sub("", text)):
        path = span.rstrip(".,;:")
        if re.match(r"(kani_adapt|data_tools)(\.[a-z_0-9]+)+$", path):
            path = path.replace(".", "/")
        if path.split("/")[0] not in PROJECT_DIRS or "/" not in path:
            continue
        path = re.split(r"[<*]|\.\.\.", path)[0]
        brace = re.match(r"(.*)\{([^}]*)\}(.*)", path)
        out += [brace[1] + part + brace[3] for part in brace[2].split(",")] if brace else [path]
    return out


def exists(path: str) -> bool:
    """A file or folder, a module (``.py``), or a name a module defines at its top level."""
    target = ROOT / path.rstrip("/")
    if target.exists() or target.with_suffix(".py").exists():
        return True
    module = target.parent.with_suffix(".py")
    return module.is_file() and re.search(rf"^(def |class )?{re.escape(target.name)}\b",
                                          module.read_text(encoding="utf-8"), re.M) is not None


@pytest.mark.parametrize("page", [p.relative_to(ROOT) for p in markdown_pages()], ids=str)
def test_every_project_path_the_docs_name_exists(page):
    missing = [p for p in project_paths((ROOT / page).read_text(encoding="utf-8")) if not exists(p)]
    assert not missing, f"{page}: names what is not in the project: {missing}"
