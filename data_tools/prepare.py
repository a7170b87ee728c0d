"""``data-tools prepare``: every stage of the registry in order over one data config.

Before any work the preflight (``data_tools/preflight.py``) checks the inputs, the models, the
devices and the languages, decides ``transcribe.enabled: auto`` from what the recordings need
and fetches the models the run will load. Each stage is resumable, so re-running ``prepare``
after an interruption (or after adding recordings) redoes only what is missing. Stages a config
turns off are skipped and said so; one the recordings needed ends the run with a summary of the
hours rejected because of it (``strict``: refused before any work instead).
"""
from __future__ import annotations

import logging
from pathlib import Path

from data_tools import engines, preflight, registry
from data_tools.records import read_jsonl
from kani_adapt.core import atomic, locks
from data_tools.config import DataConfig, check_folders
from data_tools.runner import run_stage

log = logging.getLogger("data_tools")
NEEDS = "preflight.json"  # in the work folder: what the recordings needed of the stages


def run(cfg: DataConfig, embedder=None, vad=None, tokenizer=None, asr=None, dnsmos=None,
        strict: bool = False) -> Path:
    """Run all stages; ``embedder``/``vad``/``tokenizer``/``asr``/``dnsmos`` replace the
    configured ones (tests and benchmarks pass small ones; by default they come from the
    config). The codec comes from its registry (kani_adapt.codec.registry), as everywhere."""
    given = {k: v for k, v in (("embedder", embedder), ("vad", vad), ("tokenizer", tokenizer),
                               ("asr", asr), ("dnsmos", dnsmos))
             if v is not None}
    out = None
    check_folders(cfg)
    cfg, needs = preflight.ready(cfg, given, strict)
    # One prepare per work folder, for all its stages; one engine session (a local Ray started
    # once, when a stage first has work for it).
    with locks.hold(Path(cfg.work)), engines.session(cfg):
        atomic.write_json(Path(cfg.work) / NEEDS, needs.to_json())
        for stage in registry.stages():
            if not stage.enabled(cfg):
                log.warning("%s off: %s", stage.name, stage.why_off(cfg))
                continue
            out = run_stage(stage, cfg, given=given).out or out
    loss = preflight.switched_off_losses(cfg, needs, list(read_jsonl(Path(cfg.work) /
                                                                    "rejected.jsonl")))
    for line in preflight.loss_lines(loss, needs.input_hours):
        log.warning(line)
    return out


def losses(work: Path, cfg: DataConfig) -> dict:
    """The hours a stage switched off cost the run in ``work`` (read back from its records)."""
    path = Path(work) / NEEDS
    if not path.exists():
        return {}
    import json

    needs = preflight.Needs.from_json(json.loads(path.read_text()))
    return preflight.switched_off_losses(cfg, needs, list(read_jsonl(Path(work) / "rejected.jsonl")))
