"""Which discriminators codec fine-tuning trains beside the decoder.

``discriminators: auto`` (the default) sizes them to the codec and the device. NeMo's
discriminators have fixed widths whatever the codec: the multi-period one (``mpd``) holds 41 M
parameters, the multi-resolution STFT one (``mrd``) 1.4 M. Beside the tiny codec (a decoder of
0.02 M parameters) one forward and backward pass of both over a batch of four one-second clips
took 113 s on a 2-core CPU (``mrd`` alone 71 s, ``mpd`` alone 54 s). So ``auto`` takes:

- on a CPU (or Apple's ``mps``): none. The decoder still learns from the reconstruction losses
  (mel and STFT), as the tiny codec itself is fitted;
- on a GPU, a full-size codec (a decoder of ``FULL_WIDTH`` channels or more; NanoCodec has 864):
  ``mpd`` and ``mrd``, NeMo's recipe, or the codec's own trained discriminators where its file
  stores them;
- on a GPU, a smaller codec: ``mrd`` alone, whose size is nearer the decoder's.

A list (``[mpd, mrd]``, ``[]``) is taken as written; with a codec file that stores discriminators,
any non-empty list keeps the stored ones. The run's config.yaml records the list chosen, so a
resumed run trains the same parts.
"""
from __future__ import annotations

from dataclasses import dataclass

AUTO = "auto"
FULL_WIDTH = 256  # decoder channels from which NeMo's full recipe is in proportion
RECIPE = ("mpd", "mrd")
PARAMETERS = {"mpd": "41 M", "mrd": "1.4 M"}


@dataclass(frozen=True)
class Choice:
    kinds: tuple[str, ...]
    line: str  # what was chosen and why, for the console


def choose(requested, decoder_channels: int, stored: bool, device: str) -> Choice:
    """The discriminators for a codec whose decoder has ``decoder_channels`` (``stored``: its file
    holds trained ones) on ``device`` (resolved: cpu, cuda, cuda:N, mps)."""
    if requested != AUTO:
        kinds = tuple(requested)
        own = " (the codec's own, stored in its file)" if stored and kinds else ""
        return Choice(kinds, f"codec fine-tuning: discriminators {_named(kinds)}{own}, as set")
    if not device.startswith("cuda"):
        return Choice((), (
            f"codec fine-tuning: discriminators none (auto: on {device} a step with NeMo's "
            f"discriminators ({_sizes(RECIPE)} parameters) takes minutes; the decoder learns from "
            "the mel and STFT losses; discriminators: [mpd, mrd] trains with them anyway)"))
    if stored:
        return Choice(RECIPE, "codec fine-tuning: discriminators: the codec's own, stored in its "
                              f"file (auto: on {device})")
    if decoder_channels >= FULL_WIDTH:
        return Choice(RECIPE, f"codec fine-tuning: discriminators mpd, mrd (auto: NeMo's recipe "
                              f"for a decoder of {decoder_channels} channels on {device})")
    return Choice(("mrd",), (
        f"codec fine-tuning: discriminators mrd (auto: a decoder of {decoder_channels} channels is "
        f"small beside mpd's {PARAMETERS['mpd']} parameters; discriminators: [mpd, mrd] adds it)"))


def _named(kinds: tuple[str, ...]) -> str:
    return ", ".join(kinds) if kinds else "none"


def _sizes(kinds: tuple[str, ...]) -> str:
    return " + ".join(f"{k} {PARAMETERS[k]}" for k in kinds)
