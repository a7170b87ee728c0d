"""generate's sampling defaults come from the checkpoint's generation_config.json; saving and
export write the values used."""
import json

import pytest
from transformers import GenerationConfig

from kani_adapt.cli.main import main
from kani_adapt.core.errors import CheckpointError
from kani_adapt.models.generator import checkpoint
from tests.helpers import copy_dir, sampling_handed_on, tiny_generator


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model, tok = tiny_generator(seed=2)
    return checkpoint.save_checkpoint(model, tok, tmp_path_factory.mktemp("s") / "kani",
                                      dtype="fp32", sampling={"temperature": 0.4, "top_p": 0.8,
                                                              "repetition_penalty": 1.3,
                                                              "max_frames": 3})


@pytest.fixture
def used(monkeypatch):
    """The SamplingConfig the generate command passes on."""
    return sampling_handed_on(monkeypatch)


def run(folder, tmp_path, *extra):
    return main(["generate", str(folder), "--text", "hallo", "--seed", "0",
                 "--out", str(tmp_path / "c.npy"), *extra])


def test_checkpoint_values_are_the_defaults(saved, tmp_path, used):
    assert run(saved, tmp_path) == 0
    s = used[0]
    assert (s.temperature, s.top_p, s.repetition_penalty, s.max_frames) == (0.4, 0.8, 1.3, 3)


def test_values_the_user_sets_win_over_the_checkpoint(saved, tmp_path, used):
    assert run(saved, tmp_path, "--temperature", "0", "--max-frames", "2") == 0
    s = used[0]
    assert (s.temperature, s.top_p, s.repetition_penalty, s.max_frames) == (0.0, 0.8, 1.3, 2)


def test_without_values_in_the_file_the_fallbacks_apply(saved, tmp_path, used):
    bare = copy_dir(saved, tmp_path / "bare")
    (bare / "generation_config.json").write_text(json.dumps({"eos_token_id": 64402}))
    assert run(bare, tmp_path, "--max-frames", "2") == 0
    s = used[0]
    assert (s.temperature, s.top_p, s.repetition_penalty) == (0.7, 0.95, 1.1)


def test_do_sample_false_means_greedy(saved, tmp_path):
    greedy = copy_dir(saved, tmp_path / "greedy")
    (greedy / "generation_config.json").write_text(json.dumps(
        {"do_sample": False, "temperature": 0.9, "max_new_tokens": 43}))
    assert checkpoint.read_sampling(greedy) == {"temperature": 0.0, "max_frames": 10}


def test_written_values_read_back_in_transformers_and_survive_a_re_save(saved, tmp_path):
    gen = GenerationConfig.from_pretrained(saved)
    assert gen.do_sample and gen.temperature == 0.4 and gen.top_p == 0.8
    assert gen.repetition_penalty == 1.3 and gen.eos_token_id == 64402
    model, tok = checkpoint.load_checkpoint(str(saved))
    again = checkpoint.save_checkpoint(model, tok, tmp_path / "again", dtype="fp32")
    assert checkpoint.read_sampling(again) == checkpoint.read_sampling(saved) == {
        "temperature": 0.4, "top_p": 0.8, "repetition_penalty": 1.3, "max_frames": 3}


def test_unreadable_generation_config_is_a_checkpoint_error(saved, tmp_path):
    bad = copy_dir(saved, tmp_path / "bad")
    (bad / "generation_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="generation_config.json"):
        checkpoint.read_sampling(bad)


def test_training_run_keeps_the_starting_checkpoints_values_for_export(saved, tmp_path):
    """Export reads run_dir/base, which training writes from the loaded checkpoint."""
    from kani_adapt.training import run

    model, tok = checkpoint.load_checkpoint(str(saved))
    run.save_base(model, tok, tmp_path)
    assert checkpoint.read_sampling(tmp_path / "base") == checkpoint.read_sampling(saved)
