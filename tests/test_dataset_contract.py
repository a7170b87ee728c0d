"""The tokenized dataset is spelled once, in kani_adapt/dataset.py: its column names and folder
layout appear nowhere else in the source, and its readers and writers agree through it."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from kani_adapt import dataset
from kani_adapt.dataset import DatasetLayout

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "kani_adapt" / "dataset.py"
# Names only the dataset uses: spelled nowhere else in the project's code.
OWN = {dataset.ENCODED_LEN, dataset.SPEAKER_EMB_MEAN, dataset.OFFICIAL_SPEAKER_EMB,
       dataset.OFFICIAL_CLIP_EMB, DatasetLayout(Path()).nemo_manifest.name}
CODE_COLUMN = re.compile(r"^nano_layer_\d*$")
# The modules that read or write the dataset. Some column names are also ordinary words (text,
# speaker, tag, a model's speaker_emb input), so these are held to more: no column name or
# layout folder name spelled at all.
READERS_AND_WRITERS = ["data_tools/stages/write.py", "data_tools/official_dataset.py",
                       "kani_adapt/training/synthetic.py", "kani_adapt/training/data.py",
                       "kani_adapt/training/config.py", "kani_adapt/eval/dataset_set.py",
                       "kani_adapt/recipes/stages.py", "kani_adapt/recipes/schema.py"]
LAYOUT_NAMES = {p.name for p in (DatasetLayout(Path()).hf, DatasetLayout(Path()).parquet,
                                 DatasetLayout(Path()).official)}


def strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant, and of the literal parts of f-strings; docstrings
    and comments do not count (they may name a column for the reader)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def spelled(path: Path, names: set[str]) -> list[str]:
    where = path.relative_to(ROOT) if ROOT in path.parents else path.name
    return [f"{where}:{line} {text!r}" for line, text in strings(path)
            if text in names or CODE_COLUMN.match(text)]


def uses_the_dataset_module(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module == "kani_adapt.dataset" or (
                node.module == "kani_adapt" and any(a.name == "dataset" for a in node.names))):
            return True
    return False


def sources() -> list[Path]:
    return sorted(p for folder in ("kani_adapt", "data_tools", "benchmarks")
                  for p in (ROOT / folder).rglob("*.py") if p != HOME)


def test_the_datasets_own_names_are_spelled_only_in_its_module():
    found = [hit for path in sources() for hit in spelled(path, OWN)]
    assert not found, f"use kani_adapt.dataset instead of spelling: {found}"


@pytest.mark.parametrize("rel", READERS_AND_WRITERS)
def test_readers_and_writers_name_columns_and_folders_only_through_the_dataset_module(rel):
    path = ROOT / rel
    assert uses_the_dataset_module(path), f"{rel} no longer uses kani_adapt.dataset"
    found = spelled(path, set(dataset.COLUMNS) | LAYOUT_NAMES | OWN)
    assert not found, f"use kani_adapt.dataset instead of spelling: {found}"


def test_the_scan_finds_literals_and_f_strings_but_not_docstrings(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('"""Reads encoded_len."""\n'
                   'def f(row):\n    """nano_layer_1 too."""\n'
                   '    return row["encoded_len"], [f"nano_layer_{c}" for c in (1, 2)], row["text"]\n')
    found = [hit.split(" ", 1)[1] for hit in spelled(src, OWN)]
    assert found == ["'encoded_len'", "'nano_layer_'"]
    assert "'text'" in " ".join(spelled(src, set(dataset.COLUMNS)))


def test_the_writer_and_the_reader_agree_on_every_column(tmp_path):
    codes = np.arange(12).reshape(3, 4)
    emb, mean = np.ones(128, np.float32), np.full(128, 0.5, np.float32)
    row = dataset.make_row("hallo", "de", codes, "anna", emb, mean, 0.24, "src/a.wav", {"cer": 0.1})
    assert set(row) == set(dataset.COLUMNS) | {"cer"}
    layout = DatasetLayout(tmp_path / "ds")
    layout.root.mkdir()
    dataset.write_tables(dataset.to_table([row], ["cer"]), layout)
    for spec in (layout.hf, layout.parquet):
        table = dataset.read(spec)
        back = table[0]
        assert np.array_equal(dataset.codes(back), codes) and dataset.text(back) == "hallo"
        assert dataset.tag(back) == "de" and dataset.duration(back) == pytest.approx(0.24)
        assert np.allclose(dataset.speaker_embedding(back), emb)
        assert np.allclose(dataset.voice(table, "anna"), mean) and back["cer"] == pytest.approx(0.1)


def test_a_dataset_without_a_required_column_is_refused_by_name(tmp_path):
    from kani_adapt.core.errors import DataError

    row = dataset.make_row("x", "", np.zeros((2, 4)), "a", np.zeros(128), np.zeros(128), 0.1, "s")
    table = dataset.to_table([row]).remove_columns([dataset.ENCODED_LEN])
    table.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DataError, match="missing column"):
        dataset.read(tmp_path / "bad")


def test_without_a_duration_the_frames_give_the_seconds():
    assert dataset.duration({dataset.ENCODED_LEN: 25, dataset.DURATION: None}) == 2.0


def test_the_layout_is_the_one_the_data_tools_write_and_training_reads():
    layout = DatasetLayout.in_work("work")
    assert DatasetLayout.of_table(layout.hf) == layout
    assert layout.nemo_manifest.parent == layout.root == Path("work") / DatasetLayout.FOLDER
