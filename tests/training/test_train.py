import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kani_adapt import tokens
from kani_adapt.cli.main import main
from kani_adapt.core.errors import ConfigError
from kani_adapt.models.generator.batch import collate
from kani_adapt.models.generator.checkpoint import load_checkpoint, read_layout, read_sampling
from kani_adapt.models.generator.generate import generate
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training.lora import load_adapter
from tests.helpers import example_batch
from tests.helpers import cpu_overrides

REPO = Path(__file__).resolve().parents[2]


def run_cli(args, timeout=600):
    """The real command in its own process (as a user or a cluster launcher runs it)."""
    return subprocess.Popen([sys.executable, "-m", "kani_adapt.cli.main", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def final_state(run_dir: Path) -> dict:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                      weights_only=True)
    return ckpt["state_dict"]


def logits_of(model, tok):
    batch = collate(example_batch(tok), torch.randn(2, 128, generator=torch.Generator().manual_seed(0)))
    batch.pop("labels")
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.slow
def test_lora_run_exports_merged_and_unmerged_that_agree(tmp_path, synth_data, base_ckpt):
    run_dir = tmp_path / "run"
    args = cpu_overrides(run_dir, synth_data, **{"model.init": base_ckpt, "mode": "lora",
                                                 "lora.train_rope_scales": "true",
                                                 "data.repeat_short_texts": "true",
                                                 "data.repeat_below": 200,
                                                 "data.repeat_target": 200})
    assert main(["train", *args]) == 0
    assert (run_dir / "tb").is_dir() and any((run_dir / "tb").iterdir())
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 4
    assert main(["export", str(run_dir), "--out", str(tmp_path / "adapter")]) == 0
    assert main(["export", str(run_dir), "--out", str(tmp_path / "merged"), "--merge",
                 "--dtype", "fp32"]) == 0
    card = (tmp_path / "adapter" / "README.md").read_text()
    # the prompt layout training used goes with the run and both exports, and the card says it
    layouts = [read_layout(folder) for folder in (run_dir, tmp_path / "adapter", tmp_path / "merged")]
    assert layouts == [tokens.TextLayout(below=200, target=200, most=8)] * 3
    assert json.loads((run_dir / "data_stats.json").read_text())["repeated_rows"] > 0
    assert "| short texts | repeated: a text of fewer than 200 text tokens" in card
    assert load_adapter(load_checkpoint(str(base_ckpt)), tmp_path / "adapter").text_layout == layouts[0]
    assert "license: unspecified" in card and "de, en_glasgow" in card
    # the listening results of an eval reach the card at export
    assert main(["export", str(run_dir), "--out", str(tmp_path / "carded"), "--listening",
                 str(tmp_path / "missing.json")]) == 2
    (tmp_path / "listening.json").write_text(json.dumps({
        "listeners": 2, "judgements": 0, "excluded": [], "ab": {}, "cmos": {}, "mushra": {},
        "accent": {}, "intelligibility": {}, "bradley_terry": {}, "tags": {}}))
    assert main(["export", str(run_dir), "--out", str(tmp_path / "carded"), "--listening",
                 str(tmp_path / "listening.json")]) == 0
    assert "## Listening test\n\n2 listeners" in (tmp_path / "carded" / "README.md").read_text()

    loaded = load_checkpoint(str(tmp_path / "merged"))
    merged, tok = loaded.model, loaded.tokenizer
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert read_sampling(tmp_path / "merged") == read_sampling(base_ckpt) != {}  # values used
    assert config["language_settings"]["language_tags_list"] == ["de", "en_glasgow"]
    base = load_checkpoint(str(base_ckpt)).model
    unmerged = load_adapter(load_checkpoint(str(base_ckpt)), tmp_path / "adapter").model.eval()
    torch.testing.assert_close(logits_of(merged, tok), logits_of(unmerged, tok),
                               atol=1e-4, rtol=1e-4)
    assert (logits_of(merged, tok) - logits_of(base, tok)).abs().max() > 1e-3
    assert merged.alphas() != base.alphas()  # RoPE scales trained beside the adapter
    prompt = tokens.prompt_ids(encode_text(tok, "Guten Morgen", "de"))
    row = generate(merged, [prompt], torch.randn(1, 128), SamplingConfig(max_frames=3, seed=0))[0]
    assert row.codes.shape[1] == 4 and len(row.codes) > 0


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path, synth_data, base_ckpt):
    common = {"model.init": base_ckpt, "trainer.max_steps": 8, "trainer.ckpt_every": 2,
              "trainer.val_every": 4, "lora.dropout": 0.3,  # dropout: the RNG must be restored
              # a seeded choice of rows repeated and of rows left bare: the same after resuming
              "data.repeat_short_texts": "true", "data.repeat_below": 45, "data.repeat_target": 90,
              "data.text_dropout": 0.2}  # (the tiny tokenizer gives 32-47 tokens per text)
    straight = tmp_path / "straight"
    assert main(["train", *cpu_overrides(straight, synth_data, **common)]) == 0

    broken = tmp_path / "broken"
    args = ["train", *cpu_overrides(broken, synth_data, **common)]
    proc = run_cli(args)
    deadline = time.time() + 300
    target = broken / "checkpoints" / "step-0000004.ckpt"
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert target.exists(), proc.communicate()[0][-2000:] if proc.poll() is not None else "timeout"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (broken / "metrics.json").exists()  # really interrupted before the end
    assert main(args[:]) == 0  # the same command resumes

    a, b = final_state(straight), final_state(broken)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


@pytest.mark.slow
def test_two_process_ddp_trains_and_exports(tmp_path, synth_data, base_ckpt):
    """A smoke run of the strategy docs/training.md advertises (identical weights across ranks is
    what DDP itself guarantees; which batches each rank sees is ours, tested below)."""
    run_dir = tmp_path / "ddp"
    args = ["train", *cpu_overrides(run_dir, synth_data, **{
        "model.init": base_ckpt, "trainer.gpus_per_node": 2, "trainer.strategy": "ddp",
        "trainer.max_steps": 3, "trainer.val_every": 3, "trainer.ckpt_every": 3})]
    env = {**os.environ, "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    proc = subprocess.run([sys.executable, "-m", "kani_adapt.cli.main", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 3
    assert not list(run_dir.glob("param_digest*"))  # no test bookkeeping in run folders
    trained = final_state(run_dir)
    lora_b = [v for k, v in trained.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # training did happen


def test_ranks_see_disjoint_shares_of_the_same_step_indexed_batches():
    from kani_adapt.training.batching import StepBatchSampler

    def batch_fn(flat: int) -> list[int]:
        return [flat * 10, flat * 10 + 1]

    single = list(StepBatchSampler(batch_fn, total=6))
    ranks = [list(StepBatchSampler(batch_fn, total=3, rank=r, world=2)) for r in (0, 1)]
    seen = [b for step in zip(*ranks) for b in step]  # step order, rank order within a step
    assert seen == single  # two ranks together see exactly what one process sees, once
    resumed = list(StepBatchSampler(batch_fn, total=3, start=lambda: 1, rank=1, world=2))
    assert resumed == ranks[1][1:]  # a resumed rank continues with its own next batch


def test_rerun_with_another_config_is_refused(tmp_path, synth_data):
    run_dir = tmp_path / "run"
    args = cpu_overrides(run_dir, synth_data, **{"trainer.max_steps": 1, "trainer.val_every": 1})
    assert main(["train", *args]) == 0
    with pytest.raises(ConfigError, match="lora.r"):
        from kani_adapt.config.load import load_config
        from kani_adapt.training.config import TrainConfig
        from kani_adapt.training.run import prepare_run_dir

        prepare_run_dir(load_config(TrainConfig, None, args + ["lora.r=4"]))
