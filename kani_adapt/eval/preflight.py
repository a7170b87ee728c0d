"""What ``kani-adapt eval`` (and the eval stage of a recipe) checks before any work: the device,
the codec, the checkpoints and the scorer models (on this machine, fetched, or refused)."""
from __future__ import annotations

from kani_adapt.core import preflight
from kani_adapt.codec.registry import check_reference
from kani_adapt.eval.config import EvalConfig
from kani_adapt.models.generator.sizes import SIZES as GENERATOR_SIZES
from kani_adapt.core.preflight import Finding
from kani_adapt.scorers import registry
from kani_adapt.scorers.config import ScorerConfig


def scorers(key: str, cfg: ScorerConfig) -> list[Finding]:
    """Every model a registered scorer loads (``Scorer.models``), where its key names one."""
    out = []
    for name, what, files in registry.model_keys():
        value = getattr(cfg, name, "")
        named = value.items() if isinstance(value, dict) else [("", value)]  # one per language
        for sub, ref in named:
            out += preflight.model(f"{key}.{name}" + (f".{sub}" if sub else ""), ref, what, files,
                                   sizes=registry.built_here(name))
    return out


def checkpoint(key: str, ref: str, sizes: bool = False) -> list[Finding]:
    """A KaniTTS2 checkpoint (folder or hub id), or (``sizes``) a size built at random."""
    return preflight.model(key, ref, "generator checkpoint", ("config.json",),
                           tuple(GENERATOR_SIZES) if sizes else ())


def eval_findings(cfg: EvalConfig, key: str = "", codec: bool = True) -> list[Finding]:
    pre = f"{key}." if key else ""
    out = preflight.device(f"{pre}device", cfg.device)
    if codec:
        out += check_reference(f"{pre}codec", cfg.codec)
    return out + scorers(f"{pre}scorers", cfg.scorers)
