"""Low-rank adapters for the codec decoder's convolutions (Conv1d and ConvTranspose1d).

The adapter is a parametrization of the conv's ``weight``: W' = W + (alpha / rank) * B @ A, per
group. Because the conv keeps running its own functional call, stride, padding, dilation, groups
and the transposed layout are respected by construction (PEFT 0.21's Conv1d LoRA drops dilation and
has no ConvTranspose1d). B starts at zero, so a fresh adapter leaves the output unchanged.
Merging folds W' into the conv's weight-norm parametrization and removes the adapter.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from kani_adapt.core.errors import CheckpointError


class ConvLoRA(nn.Module):
    """Delta for a conv weight [d0, d1, k] whose d0 axis is split into ``groups`` blocks.

    Conv1d weights are [out, in/groups, k] and ConvTranspose1d weights [in, out/groups, k]; in
    both, group j owns rows j*d0/groups ... (j+1)*d0/groups, so one low-rank factor pair per
    group keeps the delta inside the conv's group structure (and therefore mergeable).
    """

    def __init__(self, shape: torch.Size, groups: int, rank: int, alpha: float):
        super().__init__()
        d0, d1, k = shape
        self.groups, self.rows = groups, d0 // groups
        self.rank = max(1, min(rank, self.rows, d1 * k))
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(groups, self.rank, d1 * k))
        self.lora_B = nn.Parameter(torch.zeros(groups, self.rows, self.rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        """[groups, rows, d1 * k]: the same memory layout as the conv weight [d0, d1, k]."""
        return self.scale * torch.bmm(self.lora_B, self.lora_A)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta().reshape(weight.shape)


def _targets(decoder: nn.Module, transposed: bool):
    kinds = (nn.Conv1d, nn.ConvTranspose1d) if transposed else (nn.Conv1d,)
    return [(name, m) for name, m in decoder.named_modules() if isinstance(m, kinds)]


def add_adapters(decoder: nn.Module, rank: int, alpha: float, transposed: bool = True) -> list[str]:
    """Freeze ``decoder`` and put a trainable adapter on every conv; returns the conv names."""
    decoder.requires_grad_(False)
    names = []
    for name, conv in _targets(decoder, transposed):
        adapter = ConvLoRA(conv.weight.shape, conv.groups, rank, alpha)
        adapter.to(conv.weight.device)
        parametrize.register_parametrization(conv, "weight", adapter)
        names.append(name)
    if not names:
        raise CheckpointError("the decoder has no Conv1d/ConvTranspose1d layers to adapt")
    return names


def adapters(decoder: nn.Module) -> dict[str, ConvLoRA]:
    found = {}
    for name, module in decoder.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations.weight:
                if isinstance(p, ConvLoRA):
                    found[name] = p
    return found


def adapter_state(decoder: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, adapter in adapters(decoder).items():
        out[f"{name}.lora_A"] = adapter.lora_A.detach().cpu().contiguous()
        out[f"{name}.lora_B"] = adapter.lora_B.detach().cpu().contiguous()
    return out


def save_adapter(decoder: nn.Module, path: Path, rank: int, alpha: float, transposed: bool) -> Path:
    """A small safetensors file: the A/B factors plus rank/alpha/transposed as metadata."""
    from safetensors.torch import save_file

    from kani_adapt.core.atomic import write_file

    path = Path(path)
    meta = {"rank": str(rank), "alpha": str(alpha), "transposed": json.dumps(transposed)}
    state = adapter_state(decoder)
    return write_file(path, lambda tmp: save_file(state, str(tmp), metadata=meta))


def load_adapter(decoder: nn.Module, path: Path) -> dict:
    """Add adapters to ``decoder`` as described in the file and load their factors strictly."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    try:
        options = {"rank": int(meta["rank"]), "alpha": float(meta["alpha"]),
                   "transposed": json.loads(meta["transposed"])}
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: not a codec adapter file (metadata {meta})") from err
    add_adapters(decoder, **options)
    expected = adapter_state(decoder)
    if set(expected) != set(tensors):
        raise CheckpointError(f"{path}: adapter keys do not match this decoder "
                              f"({len(set(expected) - set(tensors))} missing, "
                              f"{len(set(tensors) - set(expected))} unexpected)")
    with torch.no_grad():
        for name, adapter in adapters(decoder).items():
            for part in ("lora_A", "lora_B"):
                value = tensors[f"{name}.{part}"]
                if value.shape != getattr(adapter, part).shape:
                    raise CheckpointError(f"{path}: {name}.{part} has shape {tuple(value.shape)}, "
                                          f"expected {tuple(getattr(adapter, part).shape)}")
                getattr(adapter, part).copy_(value)
    return options


def merge_adapters(decoder: nn.Module) -> int:
    """Fold every adapter into its conv; weight-normed convs get fresh g/v for the merged weight."""
    merged = 0
    for name, module in list(decoder.named_modules()):
        if name not in adapters(decoder):
            continue
        plist = module.parametrizations.weight
        had_weight_norm = any(type(p).__name__ == "_WeightNorm" for p in plist)
        # Keeps the current (adapted) weight as a plain parameter.
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        if had_weight_norm:
            # weight_norm initialises g = ||w|| and v = w, which reproduces w.
            nn.utils.parametrizations.weight_norm(module)
        merged += 1
    return merged
