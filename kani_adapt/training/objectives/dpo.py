"""``objective: dpo``: length-normalised, reference-anchored DPO over preference pairs.

For a pair (chosen ``w``, rejected ``l``) of the same prompt and voice, with ``pi`` the
per-frame trajectory log-likelihood of :mod:`kani_adapt.training.trajectory` (end-of-speech
decisions included) under the model being trained and ``ref`` the same quantity under the
policy that sampled the pair (read from the pairs file, computed when the pairs were built)::

    loss = -log sigmoid( beta * [ (pi(w) - ref(w)) - (pi(l) - ref(l)) ] )

averaged over pairs, weighted by the file's pair weights (``dpo.weights``). Batches hold the
chosen rows first, then the rejected ones (2B rows of prompt + audio tokens), planned by the
token budget like the supervised objective's. Logged (``train/`` and ``val/``): ``loss``,
``accuracy`` (share of pairs whose anchored margin is positive), ``margin`` (pi(w) - pi(l)),
``chosen_ratio`` and ``rejected_ratio`` (pi - ref of each side: the implicit rewards),
``stop_chosen`` and ``stop_rejected`` (end-of-speech terms per frame). When the rejected ratio
falls below ``-COLLAPSE`` nats per frame while the chosen ratio stays within ``FLAT`` of that
fall, a warning line says the run is pushing the rejected side down without raising the chosen
one (reward hacking, gepard-train MODEL_GUIDE 12.5), and ``train/hacking`` is 1.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from kani_adapt import tokens
from kani_adapt.training import trajectory

log = logging.getLogger("kani_adapt.train")
COLLAPSE = 1.0  # rejected log-ratio (nats per frame) below -COLLAPSE ...
FLAT = 0.1  # ... while |chosen log-ratio| stays under FLAT x |rejected log-ratio|
FIGURES = ("loss", "accuracy", "margin", "chosen_ratio", "rejected_ratio", "stop_chosen",
           "stop_rejected")


class Preference:
    name = "dpo"
    help = "DPO on preference pairs (kani-adapt prefer), end of speech in the likelihood"

    def data(self, cfg, tokenizer, token_budget=None):
        from kani_adapt.training.pairs_data import PairsData

        return PairsData(cfg, tokenizer, token_budget)

    def meter(self) -> "PreferenceMeter":
        return PreferenceMeter()

    def training_loss(self, module, batch) -> torch.Tensor:
        loss, figures = pair_loss(module, batch)
        module.meter.add(figures)
        return loss

    def losses(self, module, batch) -> dict[str, torch.Tensor]:
        return pair_loss(module, batch)[1]

    def weight(self, batch) -> int:
        return int(batch["weight"].shape[0])

    def probe_batch(self, module, budget: int, longest: int) -> dict[str, torch.Tensor]:
        """Pairs of the longest training length filling ``budget`` (each pair costs two rows)."""
        length = max(16, min(longest, budget) // 2)
        pairs = max(1, budget // (2 * length))
        prompt = tokens.prompt_ids([tokens.BOS, 300, 301, 302])
        frames = max(0, (length - len(prompt)) // tokens.TOKENS_PER_FRAME)
        gen = torch.Generator().manual_seed(0)
        rows = [trajectory.Rollout(prompt, torch.randint(0, tokens.CODEBOOK_SIZE, (frames, 4),
                                                         generator=gen).numpy(), False,
                                   torch.randn(128, generator=gen).numpy()
                                   if module.cfg.data.use_speaker_emb else None)
                for _ in range(2 * pairs)]
        batch = trajectory.batch(rows)
        batch["ref"] = torch.zeros(2 * pairs)
        batch["weight"] = torch.ones(pairs)
        return {k: v.to(module.device) for k, v in batch.items()}


def pair_loss(module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The batch's DPO loss and its figures (all on the device, no host sync)."""
    cfg = module.cfg.dpo
    traj = trajectory.logprobs(module.kani, batch, floor=cfg.stop_floor)
    pi = traj.combined()
    ratio = pi - batch["ref"].to(pi)
    n = len(pi) // 2
    chosen, rejected = ratio[:n], ratio[n:]
    logits = cfg.beta * (chosen - rejected)
    weight = batch["weight"].to(pi) if cfg.weights else torch.ones_like(chosen)
    loss = (weight * -F.logsigmoid(logits)).sum() / weight.sum().clamp(min=1e-8)
    stop = traj.stop_lp.detach() / traj.frames.clamp(min=1)
    figures = {"loss": loss, "accuracy": (logits.detach() > 0).float().mean(),
               "margin": (pi[:n] - pi[n:]).detach().mean(), "chosen_ratio": chosen.detach().mean(),
               "rejected_ratio": rejected.detach().mean(), "stop_chosen": stop[:n].mean(),
               "stop_rejected": stop[n:].mean()}
    return loss, figures


def hacking(chosen_ratio: float, rejected_ratio: float) -> bool:
    """The rejected side collapses while the chosen one stays flat."""
    return rejected_ratio < -COLLAPSE and abs(chosen_ratio) < FLAT * abs(rejected_ratio)


class PreferenceMeter:
    """The figures summed on the device between log intervals, read with one sync."""

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.steps = 0

    def add(self, figures: dict[str, torch.Tensor]) -> None:
        row = torch.stack([figures[k].detach().float() for k in FIGURES])
        self.total = row if self.total is None else self.total + row
        self.steps += 1

    def reset(self) -> None:
        self.total, self.steps = None, 0

    def flush(self) -> dict[str, float]:
        if self.total is None:
            return {}
        values = (self.total / self.steps).tolist()
        self.reset()
        out = dict(zip(FIGURES, values))
        out["hacking"] = float(hacking(out["chosen_ratio"], out["rejected_ratio"]))
        if out["hacking"]:
            log.warning("dpo: the rejected side's log-ratio is %.3f per frame while the chosen "
                        "side's is %.3f: the run pushes rejected rollouts down without raising "
                        "chosen ones (reward hacking); check the reward and the pairs",
                        out["rejected_ratio"], out["chosen_ratio"])
        return out


OBJECTIVE = Preference()
