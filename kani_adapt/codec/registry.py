"""The one place every caller gets a codec from: a config value in, a ``Codec`` out.

``CODEC_FACTORY`` turns a codec reference (a size such as ``tiny``, a ``.nemo`` file or a hub id)
and a device into an object implementing :class:`kani_adapt.codec.protocol.Codec`; by default
the NeMo NanoCodec of :mod:`kani_adapt.codec.nanocodec`. Another codec implementation is one
factory assigned here, and so is a test's double (``tests/helpers.py: substitute_codec``): the
data tools' tokenize stage, training, evaluation, the codec check and ``generate`` all load
through :func:`load_codec`. NeMo is imported only when a codec is loaded.
"""
from __future__ import annotations

from typing import Callable

from kani_adapt.codec.protocol import Codec
from kani_adapt.core.errors import ConfigError

Factory = Callable[[str, str], Codec]


def nanocodec(spec: str, device: str) -> Codec:
    from kani_adapt.codec.nanocodec import load_codec as load_nanocodec

    codec = load_nanocodec(spec)
    codec.model.to(device)
    return codec


CODEC_FACTORY: Factory = nanocodec


def load_codec(spec: str, device: str = "cpu", factory: Factory | None = None) -> Codec:
    """The codec ``spec`` names, on ``device``, checked against the protocol."""
    codec = (factory or CODEC_FACTORY)(spec, device)
    if not isinstance(codec, Codec):
        raise ConfigError(f"codec {spec!r} did not give an object with the Codec protocol")
    return codec


def check_reference(key: str, spec: str) -> list:
    """Preflight findings for the codec ``spec`` names (:func:`kani_adapt.core.preflight.codec`):
    NanoCodec's rules apply where NanoCodec is the factory; another factory knows its own names."""
    from kani_adapt.core import preflight

    if CODEC_FACTORY is not nanocodec:
        return []
    from kani_adapt.codec.nanocodec import SIZES

    return preflight.codec(key, spec, tuple(SIZES))
