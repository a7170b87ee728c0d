import json
import subprocess
import sys

import numpy as np
import pytest

from kani_adapt import tokens
from kani_adapt.cli.main import main
from kani_adapt.models.generator.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny"
    assert main(["init", "--size", "tiny", "--out", str(out)]) == 0
    return out


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_init_tiny_writes_a_loadable_bf16_checkpoint(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["torch_dtype"] == "bfloat16" and config["vocab_size"] == 80538
    assert len(load_checkpoint(str(tiny_dir)).tokenizer) == tokens.VOCAB_SIZE


def test_init_from_base_via_cli(tmp_path):
    from kani_adapt.models.generator.checkpoint import build_base

    base, tok = build_base("tiny", seed=1)
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    out = tmp_path / "kani"
    assert main(["init", "--base", str(tmp_path / "base"), "--out", str(out),
                 "--dtype", "fp32", "--audio-step", "0.5"]) == 0
    model = load_checkpoint(str(out)).model
    assert model.audio_step == 0.5
    assert all(abs(a - 1.0) < 1e-6 for a in model.alphas().values())


def test_generate_writes_codes(tiny_dir, tmp_path, capsys):
    spk = tmp_path / "spk.npy"
    np.save(spk, np.random.default_rng(0).standard_normal(128).astype(np.float32))
    out = tmp_path / "codes.npy"
    rc = main(["generate", str(tiny_dir), "--text", "Guten Tag", "--tag", "DE",
               "--speaker-emb", str(spk), "--max-frames", "4", "--seed", "0", "--out", str(out)])
    assert rc == 0
    codes = np.load(out)
    assert codes.ndim == 2 and codes.shape[1] == 4 and 0 < len(codes) <= 4
    assert codes.min() >= 0 and codes.max() < tokens.CODEBOOK_SIZE
    assert "frames" in capsys.readouterr().out


def test_generate_shows_how_it_reads_each_text_and_warns_about_guidance(tiny_dir, tmp_path, capsys):
    out = tmp_path / "codes.npy"
    assert main(["generate", str(tiny_dir), "--text", "Am 3. Mai um 14:30", "--text", "ja",
                 "--tag", "de", "--max-frames", "2", "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "text 1 (tag de, language de) is read as: Am dritten Mai um vierzehn Uhr dreißig" in said.out
    assert "text 2 (tag de, language de) is read as: ja (as written)" in said.out
    assert "guidance" not in said.err
    assert main(["generate", str(tiny_dir), "--text", "ja", "--max-frames", "2", "--cfg-scale", "2",
                 "--cfg-frames", "2", "--out", str(out)]) == 0
    assert "needs a model trained with text dropout (generator.data.text_dropout" in capsys.readouterr().err


def test_generate_several_texts_writes_one_file_each(tiny_dir, tmp_path):
    out = tmp_path / "batch.npy"
    rc = main(["generate", str(tiny_dir), "--text", "eins", "--text", "zwei drei",
               "--max-frames", "2", "--dtype", "bf16", "--out", str(out)])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch_0.npy", "batch_1.npy"]


@pytest.mark.parametrize("argv, fragment", [
    (["init", "--out", "x"], "one of the arguments --size --base is required"),
    (["init", "--size", "huge", "--out", "x"], "invalid choice"),
    (["generate", "missing-dir", "--text", "x", "--out", "c.npy"], "no such generator checkpoint folder"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    assert fragment in one_line_error(capsys)


def test_bad_speaker_embedding_names_the_file(tiny_dir, tmp_path, capsys):
    bad = tmp_path / "spk.npy"
    np.save(bad, np.zeros(64, dtype=np.float32))
    rc = main(["generate", str(tiny_dir), "--text", "x", "--speaker-emb", str(bad),
               "--out", str(tmp_path / "c.npy")])
    assert rc == 2
    assert str(bad) in one_line_error(capsys)


def test_bad_init_options_are_user_errors(tmp_path, capsys):
    assert main(["init", "--size", "tiny", "--out", str(tmp_path / "m"),
                 "--alpha-min", "3"]) == 2
    assert "alpha_min" in one_line_error(capsys)
    assert not (tmp_path / "m").exists()


def test_help_is_fast_and_teaches():
    # --help must not import torch: run it in a fresh interpreter and check the modules.
    code = ("import sys; from kani_adapt.cli.main import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "kani-adapt demo" in out and "init" in out and "generate" in out
    assert out.strip().endswith("NOTORCH")


def test_data_tools_lists_its_stages_without_importing_torch():
    code = ("import sys; from data_tools.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    for stage in ("ingest", "segment", "align", "filter", "embed", "tokenize", "write", "prepare"):
        assert stage in out
    assert out.strip().endswith("NOTORCH")
