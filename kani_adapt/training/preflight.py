"""What ``kani-adapt train`` (and the train stage of a recipe) checks before any work: the
device, the base model, the datasets (they open and hold the columns training reads), the codec
and the scorer models of the validation scoring."""
from __future__ import annotations

from kani_adapt import dataset
from kani_adapt.core import preflight
from kani_adapt.codec.registry import check_reference
from kani_adapt.eval.preflight import checkpoint, scorers
from kani_adapt.core.preflight import Finding
from kani_adapt.training.config import TrainConfig


def train_findings(cfg: TrainConfig, key: str = "", data_made_later: bool = False,
                   codec: bool = True) -> list[Finding]:
    """``data_made_later``: the training set is written by an earlier stage (a recipe's prepare)."""
    pre = f"{key}." if key else ""
    out = preflight.device(f"{pre}trainer.device", cfg.trainer.device)
    out += checkpoint(f"{pre}model.init", cfg.model.init, sizes=True)
    if not data_made_later:
        out += dataset.check_table(f"{pre}data.train", cfg.data.train)
    if cfg.data.replay:
        out += dataset.check_table(f"{pre}data.replay", cfg.data.replay)
    if codec and cfg.codec:
        out += check_reference(f"{pre}codec", cfg.codec)
    if cfg.eval.prompts or cfg.eval.base_prompts:
        out += scorers(f"{pre}eval.scorers", cfg.eval.scorers)
    return out
