"""``data-tools prepare``: every stage in order over one data config.

Each stage is resumable, so re-running ``prepare`` after an interruption (or after adding
recordings) redoes only what is missing. Alignment runs where MFA is installed
(``align.enabled: auto``); without it the pipeline goes on with alignment off and says so.
"""
from __future__ import annotations

import logging
from pathlib import Path

from data_tools import align, embed, ingest, mfa, segment, tokenize, write
from data_tools import filter as filter_stage
from data_tools.config import DataConfig

log = logging.getLogger("data_tools")


def alignment_on(cfg: DataConfig) -> bool:
    """auto: only where MFA is installed; on: required (the align stage names the install)."""
    if cfg.align.enabled == "off":
        return False
    if cfg.align.enabled == "on":
        return True
    return mfa.find_mfa(cfg.align.mfa_command) is not None


def run(cfg: DataConfig, codec=None, embedder=None, vad=None, tokenizer=None) -> Path:
    """Run all stages; ``codec``/``embedder``/``vad``/``tokenizer`` replace the configured ones
    (tests and benchmarks pass small ones; by default they come from the config)."""
    from data_tools.codecs import load_codec

    work, budget = Path(cfg.work), cfg.max_rejected_fraction
    utts = ingest.run(cfg.ingest, work, budget)
    utts = segment.run(cfg.segment, work, utts, vad=vad, max_rejected_fraction=budget)
    aligned = alignment_on(cfg)
    if aligned:
        utts = align.run(cfg.align, work, utts, budget)
    elif cfg.align.enabled == "auto":
        log.warning("alignment off: Montreal Forced Aligner not installed (%s)", mfa.INSTALL_HINT)
    utts = filter_stage.run(cfg.filter, work, utts, budget, tokenizer=tokenizer)
    utts = embed.run(cfg.embed, work, utts, model=embedder, max_rejected_fraction=budget)
    codec = codec if codec is not None else load_codec(cfg.tokenize.codec, cfg.tokenize.device)
    utts = tokenize.run(cfg.tokenize, work, utts, codec, max_rejected_fraction=budget)
    return write.run(cfg.write, work, utts, extras={
        "alignment": "on" if aligned else "off", "codec": cfg.tokenize.codec,
        "codec_class": type(codec).__name__})


