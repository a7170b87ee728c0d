"""Stage outliers: clips whose speaker embedding lies far from their speaker's centroid (a
mislabelled speaker, or another voice in the clip) are rejected as ``speaker_outlier``.

Reads the embeddings the embed stage logged; the decision is ``consistency.speaker_outliers``
(robust statistics of each speaker's own cosines, plus an optional absolute floor).
"""
from __future__ import annotations

from data_tools.speech import consistency
from data_tools.stages.embed import load_embeddings
from data_tools.records import reject_utt
from data_tools.registry import Kept
from data_tools.runner import BaseStage

NAME = "outliers"


class Outliers(BaseStage):
    name = section = NAME
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
