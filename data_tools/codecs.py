"""Where the tokenize stage gets its codec: the single plug-in point for codec implementations.

The stage itself only needs an object that implements ``kani_adapt.codec.protocol.Codec``.
``CODEC_FACTORY`` turns the ``tokenize.codec`` config value into one; the NeMo NanoCodec loader
of ``kani_adapt.codec`` plugs in by replacing ``_no_loader`` below with it (one line).
"""
from __future__ import annotations

from typing import Callable

from kani_adapt.codec.protocol import Codec
from kani_adapt.errors import ConfigError


def _no_loader(spec: str, device: str) -> Codec:
    raise ConfigError(
        f"tokenize.codec={spec!r}: no codec loader is available in this version of kani-adapt "
        "(the NanoCodec module plugs in at data_tools/codecs.py)"
    )


CODEC_FACTORY: Callable[[str, str], Codec] = _no_loader


def load_codec(spec: str, device: str = "cpu") -> Codec:
    codec = CODEC_FACTORY(spec, device)
    if not isinstance(codec, Codec):
        raise ConfigError(f"tokenize.codec={spec!r} did not give an object with the Codec protocol")
    return codec
