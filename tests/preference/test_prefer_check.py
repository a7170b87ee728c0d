"""`kani-adapt prefer --check`: each config problem is one line and exit 2, before any compute."""
import pytest

from kani_adapt.cli.main import main
from kani_adapt.training.synthetic import synthetic_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("prefer") / "hf", n_speakers=3, per_speaker=2)


@pytest.mark.parametrize("override, words", [
    ("reward.short=0", "keep the duration penalty two-sided"),
    ("reward.asr=openai/whisper-small.en", "English-only recogniser"),
    ("train.beta=0", "beta"),
    ("train.stop_floor=0.2", "stop_floor"),
    ("sample.speakers_per_text=3", "voice(s) left for training"),
    ("sample.cap_max=10", "cap_max (10) is below cap_min"),
    ("prompts.language=xx", "no built-in set"),
    ("reward.windw_max=3", "windw_max"),
    ("reward.similarity=11", "similarity"),
    ("pairs.human_weight=0", "human_weight"),
])
def test_each_problem_is_one_line_and_exit_2(data, tmp_path, capsys, override, words):
    config = tmp_path / "prefer.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\npolicy: {tmp_path / 'sft'}\ndataset: {data}\n")
    assert main(["prefer", str(config), "--check", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_a_sound_config_is_ready(data, tmp_path, capsys):
    config = tmp_path / "prefer.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\npolicy: {tmp_path / 'sft'}\ndataset: {data}\n")
    assert main(["prefer", str(config), "--check"]) == 0
    assert "ready" in capsys.readouterr().out


def test_several_problems_are_one_line_each(data, tmp_path, capsys):
    config = tmp_path / "prefer.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\npolicy: {tmp_path}\ndataset: {data}\n")
    assert main(["prefer", str(config), "--check", "sample.speakers_per_text=5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no config.json" in err[0] and "voice(s) left" in err[1]


@pytest.mark.parametrize("recipe", ["swahili", "german_hessian"])
def test_the_bundled_recipes_prefer_sections_are_upstreams_off_and_wired_to_the_run(recipe):
    from pathlib import Path

    from kani_adapt.recipes.runner import plan
    from kani_adapt.recipes.schema import load_recipe

    r = load_recipe(Path(__file__).parents[2] / "recipes" / recipe / "lora.yaml")
    cfg = r.prefer
    assert not cfg.enabled and "prefer" not in [s.name for s in plan(r, {})]
    assert cfg.reward.short == 2.0 and cfg.train.lora_targets == "qv" and cfg.rounds == 2
    assert cfg.prompts.language in ("sw", "de") and not cfg.reward.asr.endswith(".en")
    assert cfg.prompts.tag in r.tags  # the rounds speak the recipe's own tag
    work = Path(r.work_dir)
    assert Path(cfg.policy) == work / "export" / "merged" and Path(cfg.run_dir) == work / "prefer"
    assert cfg.dataset == r.generator.data.train and cfg.device == r.device
    on = load_recipe(Path(__file__).parents[2] / "recipes" / recipe / "lora.yaml", ["prefer.enabled=true"])
    stage = plan(on, {})[-1]
    assert stage.name == "prefer" and stage.codec == r.codec  # decodes as the eval does


def test_a_similarity_term_without_voices_in_the_dataset_is_one_line(tmp_path, capsys):
    from kani_adapt import dataset
    from kani_adapt.core.atomic import write_folder
    from kani_adapt.training.synthetic import synthetic_rows

    table = dataset.to_table(synthetic_rows(n_speakers=2, per_speaker=2)).remove_columns(
        [dataset.SPEAKER_EMB, dataset.SPEAKER_EMB_MEAN])
    write_folder(tmp_path / "hf", lambda tmp: table.save_to_disk(str(tmp)))
    capsys.readouterr()  # the datasets library's progress bars
    config = tmp_path / "prefer.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\npolicy: {tmp_path / 'sft'}\ndataset: {tmp_path / 'hf'}\n"
                      "reward: {similarity: 0.5}\n")
    assert main(["prefer", str(config), "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no speaker embeddings" in err[0], err
    assert main(["prefer", str(config), "--check", "reward.similarity=0"]) == 0


def test_kani_adapt_check_checks_a_recipes_prefer_section_where_it_is_on(capsys):
    """The recipe's check runs the prefer section's checks (less what the run makes first) and
    what the section needs of the run: one line each, exit 2; nothing when it is off."""
    from pathlib import Path

    demo = str(Path(__file__).parents[2] / "recipes" / "demo" / "demo.yaml")
    bad = ["prefer.pairs.human=[/nowhere/eval]", "prefer.reward.asr=/nowhere/whisper",
           "export.merged=false", "eval.enabled=false", "sample.texts=[]"]
    assert main(["check", demo, "prefer.enabled=true", *bad]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if "problem:" in line]
    assert len(lines) == 3, lines
    assert "prefer: pairs.human /nowhere/eval: no such folder" in lines[0]
    assert "prefer.reward.asr: /nowhere/whisper" in lines[1] and "set export.merged: true" in lines[2]
    assert main(["check", demo, *bad]) == 0  # off: not checked
    assert "prefer" not in capsys.readouterr().out


def test_the_prefer_stage_samples_from_the_runs_own_export_only(tmp_path, monkeypatch):
    """The stage runs the rounds on the merged export the run wrote (the same folder however
    the path is spelled) and refuses a policy the recipe pointed elsewhere."""
    import dataclasses

    from kani_adapt.config.load import load_config
    from kani_adapt.core.errors import ConfigError
    from kani_adapt.preference import rounds
    from kani_adapt.preference.config import PreferConfig
    from kani_adapt.recipes import stages

    ran = []
    monkeypatch.setattr(rounds, "run_configured", lambda cfg: ran.append(cfg) or {"ship": 1})
    (tmp_path / "work" / "export" / "merged").mkdir(parents=True)
    cfg = load_config(PreferConfig, None, [f"run_dir={tmp_path / 'work' / 'prefer'}",
                                           f"policy={tmp_path / 'work' / 'export' / 'merged'}", "dataset=d"])
    spelled = str(tmp_path / "work" / "export" / ".." / "export" / "merged")
    assert stages.prefer(cfg, spelled) == {"summary": str(tmp_path / "work" / "prefer" / "summary.json"),
                                           "ship": 1} and ran == [cfg]
    with pytest.raises(ConfigError, match="leave prefer.policy out"):
        stages.prefer(dataclasses.replace(cfg, policy=str(tmp_path / "elsewhere")), spelled)
