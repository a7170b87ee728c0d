"""Where the tokenize stage gets its codec: the single plug-in point for codec implementations.

The stage itself only needs an object that implements ``kani_adapt.codec.protocol.Codec``.
``CODEC_FACTORY`` turns the ``tokenize.codec`` config value (a size such as ``tiny``, a ``.nemo``
file or a hub id) into one; by default that is the NeMo NanoCodec of ``kani_adapt.codec``.
"""
from __future__ import annotations

from typing import Callable

from kani_adapt.codec.protocol import Codec
from kani_adapt.errors import ConfigError


def _nanocodec(spec: str, device: str) -> Codec:
    from kani_adapt.codec.nanocodec import load_codec as load_nanocodec

    codec = load_nanocodec(spec)
    codec.model.to(device)
    return codec


CODEC_FACTORY: Callable[[str, str], Codec] = _nanocodec


def load_codec(spec: str, device: str = "cpu") -> Codec:
    codec = CODEC_FACTORY(spec, device)
    if not isinstance(codec, Codec):
        raise ConfigError(f"tokenize.codec={spec!r} did not give an object with the Codec protocol")
    return codec
