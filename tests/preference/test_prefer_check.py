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
def test_the_bundled_prefer_configs_load_with_upstreams_settings(recipe):
    from pathlib import Path

    from kani_adapt.config.load import load_config
    from kani_adapt.preference.config import PreferConfig

    cfg = load_config(PreferConfig, Path(__file__).parents[2] / "recipes" / recipe / "prefer.yaml")
    assert cfg.reward.short == 2.0 and cfg.train.lora_targets == "qv" and cfg.rounds == 2
    assert cfg.prompts.language in ("sw", "de") and not cfg.reward.asr.endswith(".en")


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
