"""`kani-adapt`: build, convert, generate with and demo KaniTTS2 generators."""
from __future__ import annotations

import sys

from kani_adapt.cli import (
    codec_commands, eval_command, generate_command, init_command, listen_command,
    normalize_command, plan_command, prefer_command, recipe_commands, speaker_commands,
    train_commands,
)
from kani_adapt.core.cli_kit import Formatter, Parser, add_verbose, run_cli

DESCRIPTION = """\
kani-adapt adapts the KaniTTS2 text-to-speech model to new languages and accents.

Checkpoints are read and written in the official KaniTTS2 layout (config.json,
model.safetensors, tokenizer files), so the official runtime loads them unchanged.
Models are given as a local directory or a Hugging Face hub id.
"""

EPILOG = """\
examples:
  kani-adapt demo --out runs/demo
  kani-adapt recipes
  kani-adapt run recipes/german_hessian/lora.yaml
  kani-adapt plan recipes/german_hessian/lora.yaml
  kani-adapt init --size tiny --out models/tiny
  kani-adapt init --base LiquidAI/LFM2-350M --out models/kani-from-lfm2
  kani-adapt speaker-emb anna.wav --out voices/anna.npy
  kani-adapt generate models/tiny --text "Guten Tag" --tag de --out codes.npy
  kani-adapt normalize --language de "Am 3. Mai um 14:30"
  kani-adapt train recipe.yaml data.train=data/hessian mode=lora
  kani-adapt export runs/generator --out exports/hessian --merge
  kani-adapt eval runs/hessian/export --compare nineninesix/kani-tts-2-en --set eval.jsonl
  kani-adapt listen runs/hessian/eval --listeners 6
  kani-adapt codec check --codec codec.nemo --manifest data/manifest.json --out reports/codec
"""


def build_parser() -> Parser:
    parser = Parser(prog="kani-adapt", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=Formatter)
    add_verbose(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    init_command.add_init(sub)
    generate_command.add_generate(sub)
    normalize_command.add_normalize(sub)
    speaker_commands.add_speaker_emb(sub)
    train_commands.add_train(sub)
    train_commands.add_export(sub)
    codec_commands.add_codec(sub)
    eval_command.add_eval(sub)
    listen_command.add_listen(sub)
    prefer_command.add_prefer(sub)
    recipe_commands.add_recipe_commands(sub)
    plan_command.add_plan(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
