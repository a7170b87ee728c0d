"""Where the tokenize stage gets its codec: the project's codec registry.

``CODEC_FACTORY`` (default: the registry's, NeMo NanoCodec) may be replaced here for the data
tools alone; :func:`load_codec` is :func:`kani_adapt.codec.registry.load_codec` with it.
"""
from __future__ import annotations

from kani_adapt.codec import registry
from kani_adapt.codec.protocol import Codec

CODEC_FACTORY: registry.Factory = registry.nanocodec


def load_codec(spec: str, device: str = "cpu") -> Codec:
    return registry.load_codec(spec, device, factory=CODEC_FACTORY)
