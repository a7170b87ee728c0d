"""The planner's tiny world: a recipe of seven espeak-ng voices (Scottish English variants),
twelve sentences each, prepared by the real data stages (tiny NeMo codec, tiny speaker
embedder), trained in full on a tiny random generator; enough clips for five nested hours
subsets of its five training voices (two are held out for eval) and a voices axis at a quarter
of the hours."""
from __future__ import annotations

from pathlib import Path

VOICES = ("en-gb-scotland", "en-gb-scotland+f3", "en-gb-scotland+m4", "en-gb-scotland+m3",
          "en-gb-scotland+f4", "en-gb-scotland+f2", "en-gb-scotland+m2")
SENTENCES = (
    "Are you coming down the road later on?", "It is a lovely day for a walk by the river.",
    "We are going to the shops before they close.", "Mind how you go now, the pavement is icy.",
    "The bus to the city centre leaves at nine.", "I will see you at the match on Saturday.",
    "Put the kettle on and we will have a cup of tea.", "The ferry was late because of the wind.",
    "She bought a new coat in the market.", "There is a light on in the kitchen window.",
    "My brother works at the hospital on the hill.", "Bring your umbrella, it is going to rain.")
# The plan the tests run: five hours fractions, the voices axis at a quarter of the hours.
PLAN = ["plan.min_minutes=0.05", "plan.min_steps=2", "plan.resamples=100"]


def recipe_text(steps: int = 32) -> str:
    voices = "\n".join(f"    - {{voice: {v}, speaker: v{k}, tag: en_scotland}}"
                       for k, v in enumerate(VOICES))
    sentences = "\n".join(f"      - {s}" for s in SENTENCES)
    return f"""name: plan_world
tags: {{en_scotland: English with a Scottish accent}}
codec: tiny
speaker_embedder: tiny
device: cpu
synth:
  voices:
{voices}
  sentences:
    en_scotland:
{sentences}
data:
  ingest:
    sources:
      - {{path: "${{work_dir}}/recordings/en_scotland", name: sc, tag: en_scotland}}
  segment: {{min_seconds: 1.0}}
  filter: {{min_seconds: 1.0, min_snr_db: 5.0}}
  tokenize: {{batch_seconds: 30, max_batch_size: 8}}
codec_check: {{enabled: false}}
generator:
  mode: full
  model: {{init: tiny}}
  optim: {{lr: 0.005, warmup_steps: 4, weight_decay: 0.0}}
  data: {{token_budget: 1024, val_speakers: 2, num_workers: 0}}
  trainer: {{max_steps: {steps}, precision: 32-true, val_every: {steps}, ckpt_every: {steps}, log_every: 8}}
  sampling: {{max_frames: 16}}
export: {{merged: true, adapter: false, dtype: fp32}}
eval:
  dataset: {{per_speaker: 2}}
  sampling: {{max_frames: 16}}
  resamples: 50
  short_probes: false
  write_wavs: false
  scorers: {{dnsmos: false}}
"""


def write_recipe(folder: Path, steps: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan_world.yaml"
    path.write_text(recipe_text(steps) + f"work_dir: {folder / 'work'}\n", encoding="utf-8")
    return path
