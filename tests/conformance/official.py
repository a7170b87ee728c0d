"""The official runtime's modules (kani-tts-2 0.0.5, installed --no-deps for tests only).

Loaded file by file: the package's ``__init__`` imports NeMo and the whole inference stack,
while ``model.py`` and ``speaker_embedder.py`` need only torch and transformers.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _package_dir() -> Path:
    spec = importlib.util.find_spec("kani_tts")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the official runtime is missing: pip install --no-deps "
                           "kani-tts-2==0.0.5 (scripts/bootstrap.sh does)")
    return Path(list(spec.submodule_search_locations)[0])


def load(module: str):
    """``load("model")`` or ``load("speaker_embedder")``: the official module object."""
    name = f"official_kani_tts_{module}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _package_dir() / f"{module}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def runtime(checkpoint, codec_nemo, max_new_tokens: int = 400):
    """The official runtime's ``KaniModel`` and ``NemoAudioPlayer`` (``kani_tts.core``) on a local
    checkpoint and codec. The player's one hub call, ``AudioCodecModel.from_pretrained``, is
    pointed at NeMo's own ``restore_from`` of the local ``.nemo``; nothing else is replaced."""
    import kani_tts.core as core
    from nemo.collections.tts.models import AudioCodecModel

    config = core.TTSConfig(device_map="cpu", nanocodec_model=str(codec_nemo),
                            max_new_tokens=max_new_tokens)
    original = AudioCodecModel.from_pretrained
    AudioCodecModel.from_pretrained = classmethod(lambda cls, name, **kw: cls.restore_from(name))
    try:
        player = core.NemoAudioPlayer(config)
    finally:
        AudioCodecModel.from_pretrained = original
    return core.KaniModel(config, str(checkpoint), player), player


def runtime_codes(kani, player, text: str, tag: str | None, speaker_emb=None):
    """(frames, 4) codes the official runtime generates, effectively greedy: its own prompt
    (``get_input_ids`` with the tag), its ``generate`` (always sampling: temperature 1e-4, top-p 1,
    no repetition penalty) with ``speaker_emb``, read back by ``get_nano_codes``."""
    import torch

    input_ids, mask = kani.get_input_ids(text, tag)
    spk = None if speaker_emb is None else torch.as_tensor(speaker_emb, dtype=torch.float32)[None]
    torch.manual_seed(0)
    out = kani.model_request(input_ids, mask, speaker_emb=spk, temperature=1e-4, top_p=1.0,
                             repetition_penalty=1.0)
    codes, _ = player.get_nano_codes(out.flatten())
    return codes[0].T.numpy()
