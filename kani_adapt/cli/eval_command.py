"""`kani-adapt eval`: generate, decode and score an eval set with one or more checkpoints."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.cli_kit import Formatter, add_overrides
from kani_adapt.core import console

DESCRIPTION = """\
Evaluate a KaniTTS2 checkpoint on an eval set: generate each item (fixed seeds, samples=N
per item), decode with the codec, and score intelligibility (CER/WER through Whisper),
voice (speaker similarity with a same-speaker ceiling and a different-speaker floor),
quality (DNSMOS P.808 and P.835), language/accent and failures (length cap, runaway,
truncation, looping codes, silence, empty transcript). The reference clips are also sent
through the codec alone: that row (codec_roundtrip) is the ceiling the codec allows.

With --compare, every OTHER checkpoint is scored on the same items and seeds, and the
report gives paired differences (CHECKPOINT - OTHER) with intervals, the win rate, and a
forgetting line on the base-language items. Intervals are 95 % bootstrap over speakers.

Eval set: a .jsonl file (one object per line) or a .yaml list; per item:
  text            what to say (required)
  speaker         speaker name (required; items of one speaker are clustered in intervals)
  tag             language/accent tag, e.g. de_hessian: its language (ASR, CER, probes) is
                  the tag's first part, unless the config's tags say otherwise
  reference       audio file of that speaker: conditions the voice when there is no
                  embedding, and anchors similarity (another clip of the speaker is used)
  reference_text  transcript of the reference (codec-ceiling CER, speaker's speaking rate)
  embedding       .npy file with the 128-d speaker embedding
  base            true for base-language replay items (the forgetting line)
  id              item id (default: its position)
Relative paths are relative to the eval-set file. Example line:
  {"text": "Guten Morgen.", "tag": "de_hessian", "speaker": "anna", "reference": "anna_2.wav"}

Or EVAL_SET is a kani-adapt dataset (folder or parquet): its held-out speakers
(dataset.speakers=[a,b], or dataset.from_run=RUN_DIR to take the ones a training run held
out), dataset.per_speaker items each, their recordings (codes decoded) as references, plus
dataset.replay=BASE_DATASET for base-language items (the forgetting line).

Tags: what each tag stands for, once, in --config's tags (or a recipe's):
  tags: {de_hessian: {language: de, description: German with a Hessian accent,
                      accent_label: hessian}, gsw_zurich: {language: gsw, asr_language: de}}
(description: the listening test's accent question, kept in eval.json; asr_language:
Whisper's code where it differs; accent_label: scorers.accent_model's expected label).

Scorers: DNSMOS and failures by default (CPU, nothing to download). CER/WER and language
ID need scorers.asr=openai/whisper-large-v3 (or a folder); similarity needs
scorers.speaker_embedder=FOLDER_OR_ID. Any key of the config can be set as KEY=VALUE:
  kani-adapt eval runs/hessian/export --compare nineninesix/kani-tts-2-en --set eval.jsonl \
      --out reports/eval scorers.asr=openai/whisper-large-v3 samples=2

Writes OUT/eval.md, eval.json, utterances.parquet, wavs/, tensorboard/; prints one verdict
line per checkpoint."""


def add_eval(sub) -> None:
    p = sub.add_parser("eval", formatter_class=Formatter, description=DESCRIPTION,
                       help="score checkpoints on an eval set (CER, similarity, DNSMOS, failures)")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="KaniTTS2 directory or hub id")
    p.add_argument("--compare", action="append", default=[], metavar="OTHER",
                   help="another checkpoint to compare against (repeatable)")
    p.add_argument("--set", dest="eval_set", required=True, type=Path, metavar="EVAL_SET",
                   help="eval set (.jsonl, .yaml, or a dataset folder/.parquet)")
    p.add_argument("--out", type=Path, default=Path("eval"), help="output folder")
    p.add_argument("--config", type=Path, help="YAML with eval settings (or KEY=VALUE alone)")
    add_overrides(p, "samples=2 scorers.asr=ID")
    p.set_defaults(func=run)


def run(args) -> int:
    from kani_adapt.config.load import load_config
    from kani_adapt.eval.config import EvalConfig
    from kani_adapt.eval.evalset import load_eval_set
    from kani_adapt.eval.evaluate import run_eval

    cfg = load_config(EvalConfig, args.config, args.overrides)
    from kani_adapt.core import preflight
    from kani_adapt.eval.preflight import checkpoint, eval_findings

    found = eval_findings(cfg) + checkpoint("CHECKPOINT", str(args.checkpoint))
    for i, other in enumerate(args.compare or []):
        found += checkpoint(f"--compare[{i}]", str(other))
    preflight.refuse(found)  # device, codec, checkpoints, scorer models: before any work
    if args.eval_set.is_dir() or args.eval_set.suffix == ".parquet":
        from kani_adapt.eval.dataset_set import load_dataset_items
        items = load_dataset_items(str(args.eval_set), cfg.dataset)
    else:
        items = load_eval_set(args.eval_set)
    result = run_eval(args.checkpoint, items, cfg, args.out, args.compare, str(args.eval_set))
    for line in result["verdicts"]:
        print(console.shown(line))  # checkpoint and tag names
    print(f"wrote {args.out}/eval.md, eval.json, utterances.parquet")
    return 0
