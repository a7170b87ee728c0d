"""The README's main job for now: a tiny generator trained, exported and used, all on CPU.

Training here is a few plain PyTorch steps on synthetic codes; it shows the contract end to end
(token layout, speaker slot, export, reload, cached generation), not speech quality.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kani_adapt import tokens
from kani_adapt.models.generator import checkpoint
from kani_adapt.models.generator.batch import collate
from kani_adapt.models.generator.generate import SamplingConfig, generate
from kani_adapt.models.generator.tokenizer import encode_text

SENTENCES = [
    ("de", "Guten Morgen, wie geht es dir heute?"),
    ("de", "Das Wetter in Frankfurt ist schön."),
    ("en_glasgow", "Are you coming down the road later?"),
    ("en_glasgow", "It is a braw day for a walk."),
]


def synthetic_codes(text: str, rng: np.random.Generator) -> np.ndarray:
    """Codes that depend on the text (so there is something to learn), one frame per char."""
    base = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    frames = np.stack([(base * (c + 3) + c * 1000) % tokens.CODEBOOK_SIZE for c in range(4)], 1)
    jitter = rng.integers(0, 2, size=frames.shape)
    return (frames + jitter) % tokens.CODEBOOK_SIZE


def run_demo(out: Path, steps: int = 30, seed: int = 0) -> dict:
    start = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base, tokenizer = checkpoint.build_base("tiny", seed=seed)
    model = checkpoint.convert_base(base, tokenizer, seed=seed)
    speakers = torch.nn.functional.normalize(torch.randn(2, 128, generator=torch.Generator().manual_seed(seed)), dim=-1)
    examples = [
        tokens.build_example(encode_text(tokenizer, text, tag), synthetic_codes(text, rng))
        for tag, text in SENTENCES
    ]
    batch = collate(examples, speakers[[0, 0, 1, 1]])
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in model.named_parameters() if "alpha_weight" not in n],
         "lr": 3e-3, "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if "alpha_weight" in n],
         "lr": 4.5e-3, "weight_decay": 0.0},  # official: RoPE scales at lr x 1.5, no decay
    ])
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="train", unit="step"):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    export = checkpoint.save_checkpoint(model, tokenizer, out / "export", dtype="bf16")
    loaded, loaded_tok = checkpoint.load_checkpoint(str(export))
    tag, text = SENTENCES[0]
    prompt = tokens.prompt_ids(encode_text(loaded_tok, text, tag))
    row = generate(loaded, [prompt], speakers[:1],
                   SamplingConfig(temperature=0.7, max_new_frames=60, seed=seed))[0]
    np.save(out / "codes.npy", row.codes.astype(np.int32))
    summary = {
        "export": str(export),
        "codes": f"{out / 'codes.npy'} ({len(row.codes)} frames)",
        "loss": f"{losses[0]:.3f} -> {losses[-1]:.3f} over {steps} steps",
        "rope_alphas": {k: round(v, 4) for k, v in loaded.alphas().items()},
        "wall_seconds": round(time.time() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
