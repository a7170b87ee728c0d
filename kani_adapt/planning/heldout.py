"""The held-out loss of a checkpoint, per held-out speaker: the training objective's validation
loss on rows of speakers no pilot trained on, laid out exactly as training lays out its
validation rows (the dataset's text frontend, the run's prompt layout, its repeat-dropping and
loss positions). It falls as a pilot learns what generalises to new voices, and it speaks in a
world without ASR, where the eval's CER cannot."""
from __future__ import annotations

import dataclasses

from kani_adapt import dataset


def rows_of(table, speakers: list[str], limit: int) -> list[int]:
    """Up to ``limit`` rows of ``speakers``, taken in turn from each (row order within each)."""
    names = dataset.speakers(table)
    queues = [[i for i, n in enumerate(names) if n == s] for s in speakers]
    out: list[int] = []
    while len(out) < limit and any(queues):
        for queue in queues:
            if queue and len(out) < limit:
                out.append(queue.pop(0))
    return out


def speaker_losses(checkpoint: str, cfg, source: str, speakers: list[str], limit: int,
                   device: str) -> dict[str, list[float]]:
    """speaker -> [loss summed over scored tokens, scored tokens] of ``checkpoint`` (a merged
    export or a base) on held-out rows of ``source`` (``cfg``: the pilot's training config)."""
    import torch

    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.training.data import collate_items, repeat_texts, tokenize_table
    from kani_adapt.training.module import GeneratorModule

    generator = load_checkpoint(checkpoint)
    table = dataset.read(source)
    rows = rows_of(table, speakers, limit)
    d = dataclasses.replace(cfg.data, text_dropout=0.0)
    part = tokenize_table(table, rows, generator.tokenizer, d, source)
    repeat_texts(part, d.text_layout(), 0.0, cfg.trainer.seed)  # as validation lays rows out
    # the checkpoint holds every weight (a LoRA is merged in): score it as it is
    plain = dataclasses.replace(cfg, mode="full", optim=dataclasses.replace(cfg.optim, freeze=[]),
                                model=dataclasses.replace(cfg.model, gradient_checkpointing=False),
                                trainer=dataclasses.replace(cfg.trainer, compile=False))
    module = GeneratorModule(plain, generator.model).to(device).eval()
    out: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(len(part)):
            item = part[i]
            batch = {k: v.to(device) for k, v in collate_items([item]).items()}
            loss = float(module.objective.losses(module, batch)["loss"])
            weight = float(module.objective.weight(batch))
            sums = out.setdefault(item.speaker, [0.0, 0.0])
            sums[0] += loss * weight
            sums[1] += weight
    return out
