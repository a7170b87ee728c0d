"""The FSDP strategy docs/training.md advertises runs: two processes, a few steps (needs two GPUs:
Lightning 2.4 refuses FSDP on CPU)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cpu_overrides

REPO = Path(__file__).resolve().parents[2]


def fsdp_run(tmp_path, synth_data, base_ckpt, device: str):
    run_dir = tmp_path / "fsdp"
    args = ["train", *cpu_overrides(run_dir, synth_data, **{
        "model.init": base_ckpt, "trainer.gpus_per_node": 2, "trainer.strategy": "fsdp",
        "trainer.device": device, "trainer.max_steps": 2, "trainer.val_every": 2,
        "trainer.ckpt_every": 2, "data.num_workers": 0})]
    env = {**os.environ, "MASTER_PORT": str(28500 + os.getpid() % 1000)}
    proc = subprocess.run([sys.executable, "-m", "kani_adapt.cli.main", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["steps"] == 2 and summary["metrics"]["train/loss"] > 0
    assert (run_dir / "checkpoints" / "last.ckpt").exists()


@pytest.mark.gpu
@pytest.mark.slow
def test_two_process_fsdp_trains(tmp_path, synth_data, base_ckpt):
    # Lightning 2.4 refuses FSDP on CPU ("requires a GPU accelerator"), so this needs CUDA.
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    fsdp_run(tmp_path, synth_data, base_ckpt, "cuda")
