"""Stage outliers: clips whose speaker embedding lies far from their speaker's centroid (a
mislabelled speaker, or another voice in the clip) are rejected as ``speaker_outlier``.

Reads the embeddings the embed stage logged; the decision is ``consistency.speaker_outliers``
(robust statistics of each speaker's own cosines, plus an optional absolute floor).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from data_tools.records import reject_utt
from data_tools.speech import consistency
from data_tools.stages.embed import load_embeddings
from data_tools.stages.kit import BaseStage, Kept

NAME = "outliers"


@dataclass
class OutliersConfig:
    """Clips far from their speaker's centroid embedding (data_tools/speech/consistency.py)."""
    enabled: bool = True
    outlier_mads: float = 3.5  # below median - k * MAD of the speaker's cosines (robust z 3.5)
    min_spread: float = 0.03  # smallest spread assumed, so near-identical clips are not flagged
    min_cosine: float = -1.0  # absolute floor (-1: off; embedder-dependent, ~0.3-0.5 for ECAPA)
    min_clips: int = 5  # fewer clips: only the floor applies

    RANGES: ClassVar[dict[str, str]] = {  # min_cosine: a cosine, -1 to 1
        "outlier_mads": ">= 0", "min_spread": "[0, 1]", "min_clips": ">= 0"}


class Outliers(BaseStage):
    name = section = NAME
    config = OutliersConfig
    help = "reject clips far from their speaker's centroid embedding (speaker_outlier)"
    inputs, chain = ("embed",), False

    def enabled(self, cfg) -> bool:
        return cfg.outliers.enabled

    def why_off(self, cfg) -> str:
        return "outliers.enabled is off"

    def process_item(self, ctx, utt) -> Kept:
        return Kept([utt])

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        embs = load_embeddings(ctx.work)
        have = [u for u in items if u.id in embs]
        cfg = ctx.cfg.outliers
        found = consistency.speaker_outliers(
            [embs[u.id] for u in have], [u.speaker for u in have],
            consistency.ConsistencyConfig(outlier_mads=cfg.outlier_mads,
                                          min_spread=cfg.min_spread, min_cosine=cfg.min_cosine,
                                          min_clips=cfg.min_clips)) if have else []
        flagged = {have[o.index].id: o for o in found}
        rejected = [reject_utt(u, NAME, o.code, o.detail) for u in have
                    if (o := flagged.get(u.id))]
        return [u for u in items if u.id not in flagged], rejected


STAGE = Outliers()
