"""A recipe's work_dir is relative to the recipe's folder, as its other paths are."""
from kani_adapt.recipes.schema import load_recipe


def test_work_dir_is_relative_to_the_recipe_not_the_shell(tmp_path, monkeypatch):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "r.yaml").write_text("work_dir: out\ndataset: d\ngenerator:\n  model: {init: tiny}\n")
    monkeypatch.chdir(tmp_path)
    assert load_recipe(folder / "r.yaml").work_dir == str(folder / "out")
    (folder / "r.yaml").write_text("dataset: d\ngenerator:\n  model: {init: tiny}\n")
    assert load_recipe(folder / "r.yaml").work_dir == str(tmp_path / "runs" / "r")  # default
