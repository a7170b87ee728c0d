"""Counting the operations that make the host wait for the device (shared by tests)."""
from __future__ import annotations

import traceback
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
# Reading a value (item, bool, int, float all end in _local_scalar_dense) or producing a shape
# that depends on values (nonzero, masked_select, boolean-mask indexing).
READS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
         aten.unique_consecutive.default, aten._unique2.default}


class HostSyncCounter(TorchDispatchMode):
    """Counts synchronising operations run inside ``with HostSyncCounter() as c:``; also
    ``Tensor.tolist``/``numpy``, which read values without passing the dispatcher."""

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()
        self.sites: Counter = Counter()  # file:line outside torch that asked, for messages
        self._patched = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in READS:
            self._count(str(func))
        elif func is aten.index.Tensor and any(
                i is not None and i.dtype == torch.bool for i in args[1]):
            self._count("boolean-mask indexing")
        return func(*args, **kwargs)

    def _count(self, what: str) -> None:
        self.counts[what] += 1
        frames = [f for f in traceback.extract_stack()[:-2] if "/torch/" not in f.filename]
        if frames:
            self.sites[f"{frames[-1].filename}:{frames[-1].lineno} ({what})"] += 1

    def __enter__(self):
        for name in ("tolist", "numpy"):
            original = getattr(torch.Tensor, name)
            self._patched[name] = original

            def counted(tensor, *a, _name=name, _original=original, **kw):
                self._count(f"Tensor.{_name}")
                return _original(tensor, *a, **kw)

            setattr(torch.Tensor, name, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._patched.items():
            setattr(torch.Tensor, name, original)
        return super().__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
