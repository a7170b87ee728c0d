"""`kani-adapt train` and `kani-adapt export`."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.cli_kit import Formatter, add_overrides


def add_train(sub) -> None:
    p = sub.add_parser(
        "train", formatter_class=Formatter,
        help="continue-pretrain or LoRA-finetune a generator (Lightning)",
        description=(
            "Train a KaniTTS2 generator on a tokenized dataset.\n\n"
            "CONFIG is a YAML file of the training schema (kani_adapt/training/config.py);\n"
            "KEY=VALUE settings use the same dotted names (none, a CONFIG, or both).\n"
            "Re-running the same command resumes exactly from run_dir/checkpoints/last.ckpt\n"
            "(model, optimizer, scheduler, data position, RNG); trainer.max_steps may grow.\n\n"
            "Where: trainer.device=auto (default: a GPU when there is one), cpu, cuda or cuda:N.\n"
            "Several GPUs: trainer.gpus_per_node=8 trainer.strategy=ddp (or fsdp).\n"
            "Several nodes: trainer.num_nodes=N, launched once per node (torchrun, SLURM).\n"
            "Forgetting: eval.base_prompts=8 eval.stop_on_forgetting=cer scores held-out rows of\n"
            "data.replay at each validation and stops once the base language gets worse."
        ),
    )
    p.add_argument("config", type=Path, nargs="?", help="YAML config (optional)")
    add_overrides(p, "optim.lr=1e-4 mode=lora")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig

    cfg = load_config(TrainConfig, args.config, args.overrides)  # before torch is imported
    from kani_adapt.core import preflight
    from kani_adapt.training.fit import train
    from kani_adapt.training.preflight import train_findings

    preflight.refuse(train_findings(cfg))  # device, base, datasets, codec: before any work
    summary = train(cfg)
    print(f"trained {summary['steps']} steps; run directory {summary['run_dir']}")
    stop = summary.get("stopped_early")
    if stop:
        print(f"stopped early at step {stop['step']}: base-language {stop['metric']} "
              f"{stop['before']:.4f} -> {stop['now']:.4f} (tolerance {stop['tolerance']:g}); "
              "see stopped.json")
    return 0


def add_export(sub) -> None:
    p = sub.add_parser(
        "export", formatter_class=Formatter,
        help="export a training run: PEFT adapter + card, or a merged official checkpoint",
        description=(
            "Export the last checkpoint of RUN_DIR (reads nothing outside it).\n\n"
            "LoRA runs: without --merge, a PEFT adapter folder with an adapter card\n"
            "(README.md); with --merge, a full checkpoint in the official KaniTTS2 layout\n"
            "that the official runtime loads unchanged. Continue-pretraining runs always\n"
            "export a full checkpoint.\n\n"
            "--listening EVAL_DIR/listening.json (written by `kani-adapt listen EVAL_DIR\n"
            "--results`) adds the listening test's results to the adapter card."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    p.add_argument("--merge", action="store_true", help="fold LoRA into the weights")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--listening", type=Path, metavar="LISTENING_JSON",
                   help="listening-test results for the adapter card")
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    from kani_adapt.training.export import export_run

    out, kind = export_run(args.run_dir, args.out, merge=args.merge, dtype=args.dtype,
                           listening=args.listening)
    print(f"wrote {kind} to {out}")
    if kind == "PEFT adapter":  # what the card says about serving it unmerged
        from kani_adapt.training.export import serving_lines

        for line in serving_lines(out):
            print(f"  {line}")
    return 0
