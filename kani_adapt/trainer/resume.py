"""Resume without unpickling: training checkpoints are read with ``torch.load(weights_only=True)``.

Lightning's own loader unpickles a checkpoint with ``weights_only=False``, so a crafted
``last.ckpt`` in a shared or downloaded run folder would run code on resume. Both trainers hand
Lightning a :class:`SafeCheckpointIO` instead, which refuses anything that needs more than plain
tensors, numbers, strings and containers. :func:`pick_checkpoint` chooses the newest intact
checkpoint of a run (``last.ckpt`` first, then ``step-*.ckpt`` from the highest step down), says
on stderr which one it took and why it passed over the others, and keeps the loaded state so
the file is read once.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from kani_adapt.core import atomic, model_files
from kani_adapt.core.errors import CheckpointError

LAST = "last.ckpt"
_STEP = re.compile(r"step-(\d+)\.ckpt$")
UNPICKLED_KEYS = ("hyper_parameters", "hparams_name", "hparams_type", "datamodule_hyper_parameters",
                  "datamodule_hparams_name", "datamodule_hparams_type")


def load_state(path: str | Path) -> dict:
    """A Lightning checkpoint as plain data; anything else is a one-line CheckpointError."""
    state = model_files.torch_load(path)
    if not isinstance(state, dict) or "state_dict" not in state or "global_step" not in state:
        raise CheckpointError(f"{path}: not a training checkpoint (no state_dict / global_step)")
    return state


def candidates(folder: Path) -> list[Path]:
    """``last.ckpt``, then the step checkpoints from the highest step down."""
    steps = sorted((p for p in folder.glob("step-*.ckpt") if _STEP.search(p.name)),
                   key=lambda p: int(_STEP.search(p.name).group(1)), reverse=True)
    last = folder / LAST
    return ([last] if last.exists() or last.is_symlink() else []) + steps


def pick_checkpoint(folder: Path, purpose: str = "resume") -> tuple[Path | None, dict | None]:
    """The newest intact checkpoint in ``folder`` and its state; (None, None) when there is none.

    Checkpoints that exist but are all unusable are an error: starting over would silently
    discard the run's progress.
    """
    problems = []
    for path in candidates(Path(folder)):
        try:
            state = load_state(path)
        except CheckpointError as err:
            problems.append(str(err))
            continue
        for problem in problems:
            print(f"{purpose}: skipping {problem}", file=sys.stderr)
        verb = "continuing from" if purpose == "resume" else "reading"
        print(f"{purpose}: {verb} {path} (step {state['global_step']})", file=sys.stderr)
        return path, state
    if problems:
        raise CheckpointError(f"no intact checkpoint to resume from in {folder}: {problems[0]}"
                              + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return None, None


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O whose loads never unpickle (``weights_only=True``).

    ``preloaded`` maps a path (as a string) to the state :func:`pick_checkpoint` already read,
    so resuming reads the file once and Lightning restores exactly what was checked.
    """

    def __init__(self, preloaded: dict[str, dict] | None = None):
        super().__init__()
        # The caller's dict itself: popping the state here frees it once Lightning has it.
        self.preloaded = preloaded if preloaded is not None else {}

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        # Written whole or not at all: a kill mid-save leaves the previous file intact.
        import io

        import torch

        # Hyper-parameters are objects (NeMo: a DictConfig) that only unpickling restores;
        # the run's config.yaml records them, so checkpoints stay plain tensors.
        checkpoint = {k: v for k, v in checkpoint.items() if k not in UNPICKLED_KEYS}
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic.write_bytes(path, buffer.getbuffer())

    def load_checkpoint(self, path, map_location=None) -> dict:
        state = self.preloaded.pop(str(path), None)
        return state if state is not None else load_state(path)


def safe_fsdp_strategy(**kwargs):
    """Lightning's FSDP strategy, whose full-checkpoint loader unpickles, made to check first."""
    from lightning.pytorch.strategies import FSDPStrategy

    class SafeFSDPStrategy(FSDPStrategy):
        def load_checkpoint(self, checkpoint_path):
            if Path(checkpoint_path).is_file():
                load_state(checkpoint_path)  # raises before Lightning's own unpickler sees it
            return super().load_checkpoint(checkpoint_path)

    return SafeFSDPStrategy(**kwargs)
