"""``data-tools prepare``: every stage of the registry in order over one data config.

Each stage is resumable, so re-running ``prepare`` after an interruption (or after adding
recordings) redoes only what is missing. Stages a config turns off are skipped and said so:
alignment runs where MFA is installed (``align.enabled: auto``).
"""
from __future__ import annotations

import logging
from pathlib import Path

from data_tools import engines, registry
from kani_adapt import locks
from data_tools.config import DataConfig, check_folders
from data_tools.runner import run_stage

log = logging.getLogger("data_tools")


def run(cfg: DataConfig, embedder=None, vad=None, tokenizer=None, asr=None, dnsmos=None) -> Path:
    """Run all stages; ``embedder``/``vad``/``tokenizer``/``asr``/``dnsmos`` replace the
    configured ones (tests and benchmarks pass small ones; by default they come from the
    config). The codec comes from its registry (kani_adapt.codec.registry), as everywhere."""
    given = {k: v for k, v in (("embedder", embedder), ("vad", vad), ("tokenizer", tokenizer),
                               ("asr", asr), ("dnsmos", dnsmos))
             if v is not None}
    out = None
    check_folders(cfg)
    # One prepare per work folder, for all its stages; one engine session (a local Ray started
    # once, when a stage first has work for it).
    with locks.hold(Path(cfg.work)), engines.session(cfg):
        for stage in registry.stages():
            if not stage.enabled(cfg):
                log.warning("%s off: %s", stage.name, stage.why_off(cfg))
                continue
            out = run_stage(stage, cfg, given=given).out or out
    return out

