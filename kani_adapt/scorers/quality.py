"""DNSMOS quality: P.808 MOS and P.835 OVRL / SIG / BAK from the ONNX models in ``speechmos``.

The models take 16 kHz audio in [-1, 1]; clips under 9 s are tiled to 9 s, longer ones are
scored in 9 s windows with a 1 s hop and averaged (speechmos' own procedure). Audio louder than
full scale is clipped first. onnxruntime runs on the CPU unless a CUDA provider is installed and
asked for. The first call pays librosa's numba compilation (seconds).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kani_adapt.audio import to_rate
from kani_adapt.scorers import SCORER_RATE


@dataclass(frozen=True)
class Quality:
    p808: float  # P.808 overall MOS
    ovrl: float  # P.835 overall
    sig: float  # P.835 speech signal
    bak: float  # P.835 background (higher = less noise)


class DNSMOS:
    """Holds the two onnxruntime sessions; ``score`` takes any rate and resamples."""

    def __init__(self, device: str = "cpu", threads: int = 0, personalized: bool = False):
        import onnxruntime as ort
        from speechmos import dnsmos as sm

        models = Path(sm.__file__).parent
        primary = models / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        # speechmos' class does the windowing and polynomial mapping; only the sessions are ours,
        # so thread count and provider can be chosen.
        self._model = sm.DNSMOS.__new__(sm.DNSMOS)
        self._model.primary_model_path = str(primary)
        self._model.onnx_sess = ort.InferenceSession(str(primary), options, providers=providers)
        self._model.p808_onnx_sess = ort.InferenceSession(
            str(models / "dnsmos_models" / "model_v8.onnx"), options, providers=providers)
        self.personalized = personalized

    def score_one(self, audio: np.ndarray, rate: int) -> Quality:
        audio = np.clip(to_rate(audio, rate, SCORER_RATE), -1.0, 1.0)
        if audio.size == 0 or not np.any(audio):
            return Quality(float("nan"), float("nan"), float("nan"), float("nan"))
        out = self._model(audio, SCORER_RATE, self.personalized)
        return Quality(p808=float(out["p808_mos"]), ovrl=float(out["ovrl_mos"]),
                       sig=float(out["sig_mos"]), bak=float(out["bak_mos"]))

    def score(self, audios: Sequence[np.ndarray], rate: int) -> list[Quality]:
        # The ONNX graphs have a fixed batch of one 9 s window: a batch is a loop over windows.
        return [self.score_one(a, rate) for a in audios]
