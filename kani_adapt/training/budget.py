"""`data.token_budget: auto`: the largest token budget whose measured step fits the GPU.

:func:`budget_for` is where ``auto`` is decided: a number goes to the data module as it is;
``auto`` gives a :class:`TokenBudgetProbe`, a callback that measures at fit start (the model on
its device, before the first batch is planned) and that the data module asks for the number.
Probing steps (forward and backward of a batch, weights left unchanged) measure peak memory
above what is already allocated at a probe budget and at half of it; the line through both
gives an estimate, which is then measured itself and shrunk until it fits the free memory with
a margin. The choice is written to the run directory, so a resumed run uses the same batches.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import torch

from lightning.pytorch.callbacks import Callback

from kani_adapt.core import atomic
from kani_adapt.training.config import AUTO, TrainConfig

log = logging.getLogger(__name__)

AUTO_FALLBACK_BUDGET = 8192  # token_budget "auto" without CUDA (nothing to measure)
CHOSEN_FILE = "token_budget.json"
MARGIN = 0.15  # share of free memory left unused (allocator fragmentation, longer batches)
ROUND_TO = 256
PROBE_BUDGET = 4096
MAX_BUDGET = 1 << 20


class DoesNotFit(Exception):
    """A measurement ran out of memory."""


def pick_budget(measure: Callable[[int], int], free_bytes: int, fixed_bytes: int = 0, *,
                probe: int = PROBE_BUDGET, margin: float = MARGIN, floor: int = ROUND_TO,
                cap: int = MAX_BUDGET, tries: int = 4) -> tuple[int, list[tuple[int, int]]]:
    """The largest budget (a multiple of ``ROUND_TO``) whose measured step fits.

    ``measure(budget)`` returns the step's peak bytes above the weights (or raises
    ``DoesNotFit``); ``fixed_bytes`` is what the step does not show but training adds
    (optimiser state). Returns the budget and the (budget, bytes) measurements made.
    """
    usable = free_bytes * (1 - margin) - fixed_bytes
    measured: list[tuple[int, int]] = []

    def fits(budget: int) -> bool:
        try:
            peak = measure(budget)
        except DoesNotFit:
            measured.append((budget, -1))
            return False
        measured.append((budget, peak))
        return peak <= usable

    budget = min(probe, cap)
    while not fits(budget):
        if budget <= floor:
            raise DoesNotFit(f"a step of {floor} tokens does not fit in "
                             f"{free_bytes / 2**30:.1f} GiB free")
        budget = max(floor, _round(budget // 2))
    best, peak = budget, measured[-1][1]
    # A second point at half the tokens separates the per-token cost from what every step
    # needs anyway; the straight line through both gives the estimate, which is then measured.
    half = _round(budget // 2)
    per_token = peak / budget
    if half < budget:
        half_peak = measure(half)
        measured.append((half, half_peak))
        per_token = max((peak - half_peak) / (budget - half), per_token * 0.05)
    estimate = min(cap, _round(budget + (usable - peak) / max(per_token, 1e-9)))
    for _ in range(tries):
        if estimate <= best:
            break
        if fits(estimate):
            best = estimate
            break
        estimate = _round(best + (estimate - best) * 0.7)
    return best, measured


def _round(n: float) -> int:
    return max(ROUND_TO, int(n) // ROUND_TO * ROUND_TO)


def optimizer_state_bytes(module: torch.nn.Module) -> int:
    """AdamW keeps two fp32 moments per trainable parameter (created at the first step)."""
    return sum(8 * p.numel() for p in module.parameters() if p.requires_grad)


def budget_for(cfg: TrainConfig) -> int | "TokenBudgetProbe":
    """What the data module plans batches with: ``data.token_budget``, or for ``auto`` the
    probe (which the run adds to its callbacks)."""
    return TokenBudgetProbe(cfg.run_dir) if cfg.data.token_budget == AUTO else cfg.data.token_budget


class TokenBudgetProbe(Callback):
    """``data.token_budget: auto`` measured at fit start; calling it gives the number."""

    def __init__(self, run_dir: str | Path):
        self.run_dir, self.value = Path(run_dir), None

    def __call__(self) -> int:
        if self.value is None:
            raise RuntimeError("token_budget auto is measured at fit start; batches were planned before")
        return self.value

    def on_fit_start(self, trainer, pl_module) -> None:
        longest = max(trainer.datamodule.train_set.lengths)
        self.value = resolve_auto_budget(pl_module, longest, self.run_dir)


def resolve_auto_budget(module, longest: int, run_dir: Path) -> int:
    """Choose (or reuse) the budget: measured steps on CUDA, the fallback elsewhere; the choice
    is written to the run folder, so a resumed run plans the same batches."""
    saved = Path(run_dir) / CHOSEN_FILE
    if saved.exists():
        budget = int(json.loads(saved.read_text())["token_budget"])
        log.info("token_budget auto: reusing %d from %s (resumed run)", budget, saved)
    elif not torch.cuda.is_available() or module.device.type != "cuda":
        budget = AUTO_FALLBACK_BUDGET
        log.warning("token_budget auto needs CUDA to measure a step; using %d", budget)
    else:
        free, _ = torch.cuda.mem_get_info(module.device)
        fixed = optimizer_state_bytes(module.net)
        budget, measured = pick_budget(lambda b: measure_step(module, b, longest), free, fixed)
        steps = ", ".join(f"{b} tokens: {m / 2**30:.2f} GiB" if m >= 0 else f"{b}: out of memory"
                          for b, m in measured)
        log.warning("token_budget auto: %d tokens per batch (%.1f GiB free, %.0f%% margin, "
                    "optimiser state %.2f GiB; measured %s)", budget, free / 2**30,
                    MARGIN * 100, fixed / 2**30, steps)
    if module.trainer is not None and module.trainer.world_size > 1:
        # Every rank must plan the same batches: take the smallest choice.
        value = torch.tensor(budget, device=module.device)
        budget = int(module.trainer.strategy.reduce(value, reduce_op="min"))
    if module.trainer is None or module.trainer.is_global_zero:
        atomic.write_json(saved, {"token_budget": budget}, indent=None)
    return budget


def probe_batch(budget: int, longest: int, speaker: bool, device) -> dict[str, torch.Tensor]:
    """Rows of the longest training length filling ``budget`` (what batching allows at most)."""
    from kani_adapt import tokens

    length = min(longest, budget)
    rows = max(1, budget // length)
    ids = torch.randint(tokens.AUDIO_TOKENS_START, tokens.VOCAB_SIZE, (rows, length),
                        device=device)
    batch = {"input_ids": ids, "labels": ids.clone(),
             "attention_mask": torch.ones_like(ids)}
    if speaker:
        batch["speaker_emb"] = torch.randn(rows, 128, device=device)
    return batch


def measure_step(module, budget: int, longest: int) -> int:
    """Peak bytes above the current allocation of forward + backward at ``budget`` tokens."""
    device = module.device
    batch = probe_batch(budget, longest, module.cfg.data.use_speaker_emb, device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    try:
        with module.trainer.precision_plugin.forward_context():
            loss = module.training_step(batch, 0)
        loss.backward()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    except torch.cuda.OutOfMemoryError as err:
        raise DoesNotFit(str(err)) from err
    finally:
        module.zero_grad(set_to_none=True)
        module._meter.total = None  # the probe is not a training step
        torch.cuda.empty_cache()
