"""`kani-adapt generate`: codes (and, with a codec, audio) for text with a KaniTTS2 checkpoint."""
from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

from kani_adapt.config import sampling
from kani_adapt.core.cli_kit import Formatter, add_device, add_fields
from kani_adapt.core.errors import ConfigError


DERAIL_THRESHOLD = 0.9


def failed(row, threshold: float) -> bool:
    """A generation to sample again: no end of speech, or a derailed onset."""
    return bool(row.hit_length_cap) or row.onset_entropy > threshold


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate", formatter_class=Formatter,
        help="generate NanoCodec codes for text with a KaniTTS2 checkpoint",
        description=(
            "Generate NanoCodec codes (frames x 4, saved with numpy) for each --text.\n"
            "One --text writes --out; several write OUT_0.npy, OUT_1.npy, ... (one batch).\n"
            "With --codec, each is also decoded to a .wav beside its .npy. Prints how each\n"
            "text is read (the model's text frontend), and why an utterance is sampled again."
        ),
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="KaniTTS2 directory or hub id")
    p.add_argument("--text", action="append", required=True, help="text to speak (repeatable)")
    p.add_argument("--tag", action="append", default=None,
                   help="language/accent tag, e.g. de_hessian (stored lower-case); one for every "
                        "--text, or repeated once per --text in the same order")
    p.add_argument("--speaker-emb", type=Path, metavar="FILE",
                   help=".npy file with a 128-d speaker embedding")
    p.add_argument("--out", type=Path, required=True, help="output .npy file")
    p.add_argument("--retries", type=int, default=0, metavar="N",
                   help="re-sample (next seed) an utterance up to N times when it failed: it hit "
                        "--max-frames, or its onset entropy is above --derail-threshold")
    p.add_argument("--derail-threshold", type=float, default=DERAIL_THRESHOLD,
                   help="onset entropy (mean over the first 50 frames, 1 = a uniform guess) above "
                        "which an utterance counts as derailed; not calibrated on released models")
    add_fields(p, sampling.SamplingConfig, "sampling",
               "Values not given here come from the checkpoint's generation_config.json where\n"
               "it sets them, else from the defaults below.", note=_fallback)
    add_device(p, "the generator (and the codec)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                   help="compute dtype (bf16 for GPUs)")
    p.add_argument("--codec", metavar="CODEC",
                   help="also decode to a .wav beside each .npy with this codec (a size such as "
                        "tiny, a .nemo file or a hub id)")
    p.set_defaults(func=run_generate)


def run_generate(args) -> int:
    import numpy as np
    import torch

    from kani_adapt import tokens
    from kani_adapt.core.atomic import write_audio, write_npy
    from kani_adapt.core.devices import resolve
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.synthesize import synthesize

    from kani_adapt.models.speaker.voice import load_speaker_embedding

    from kani_adapt.core import preflight
    from kani_adapt.codec.registry import check_reference
    from kani_adapt.eval.preflight import checkpoint

    if args.out.suffix != ".npy":
        raise ConfigError(f"--out {args.out}: use a .npy file name")
    tags_of(args.tag, len(args.text))  # a count that does not fit: before any work
    preflight.refuse(preflight.device("--device", args.device) + checkpoint(
        "CHECKPOINT", args.checkpoint) + (check_reference("--codec", args.codec) if args.codec else []))
    speaker = None if args.speaker_emb is None else load_speaker_embedding(args.speaker_emb)
    device, codec = resolve(args.device), None
    if args.codec:
        from kani_adapt.codec.registry import load_codec

        codec = load_codec(args.codec, device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    generator = load_checkpoint(args.checkpoint, dtype=dtype)
    generator.model.to(device)
    tags = tags_of(args.tag, len(args.text))
    chosen = sampling_of(args, generator.sampling)
    print("\n".join(readings(generator.reads_with, args.text, tags)))
    for line in guidance_warning(chosen):
        print(line, file=sys.stderr)
    rows = synthesize(generator, codec, args.text, tags, speaker, chosen)
    rows = _retry(rows, args, chosen, lambda picked, s: synthesize(
        generator, codec, [args.text[i] for i in picked], [tags[i] for i in picked], speaker, s))
    outs = [args.out] if len(rows) == 1 else [
        args.out.with_name(f"{args.out.stem}_{i}.npy") for i in range(len(rows))
    ]
    for row, out in zip(rows, outs):
        codes = row.codes.astype(np.int32)
        write_npy(out, codes)
        cap = " (hit --max-frames: no end of speech)" if row.hit_length_cap else ""
        secs = len(row.codes) / tokens.FRAMES_PER_SECOND
        print(f"wrote {out}: {len(row.codes)} frames, {secs:.2f} s{cap}")
        if row.audio is not None:
            wav = write_audio(out.with_suffix(".wav"), row.audio, row.sample_rate)
            print(f"wrote {wav}: {len(row.audio) / row.sample_rate:.2f} s at {row.sample_rate} Hz")
    return 0


def tags_of(given: list[str] | None, texts: int) -> list[str | None]:
    """One tag per text: none, one for all, or one per --text in order."""
    if not given:
        return [None] * texts
    if len(given) == 1:
        return given * texts
    if len(given) != texts:
        raise ConfigError(f"{len(given)} --tag for {texts} --text: give one --tag for all, or "
                          "one per --text in the same order")
    return list(given)


def _retry(rows, args, chosen, again):
    """Sample failed rows again with the next seeds, up to --retries times each;
    ``again(indices, sampling)`` generates the utterances at those indices."""
    from dataclasses import replace

    base = chosen.seed if chosen.seed is not None else 0
    for attempt in range(1, args.retries + 1):
        bad = [i for i, r in enumerate(rows) if failed(r, args.derail_threshold)]
        if not bad:
            break
        print(f"retry {attempt}/{args.retries}: {len(bad)} utterance(s) failed, sampling again "
              f"with seed {base + attempt}")
        for i in bad:
            print(f"  text {i + 1}: {why_failed(rows[i], args.derail_threshold)}")
        fresh = again(bad, replace(chosen, seed=base + attempt))
        for i, row in zip(bad, fresh):
            rows[i] = row
    return rows


def why_failed(row, threshold: float) -> str:
    """Why a generation is sampled again, in one line."""
    if row.hit_length_cap:
        return "no end of speech before --max-frames (it ran on to the length cap)"
    return (f"derailed onset: entropy {row.onset_entropy:.2f} over its first frames is above "
            f"--derail-threshold {threshold:g}")


def readings(front, texts: list[str], tags: list[str | None]) -> list[str]:
    """How the model reads each text (its text frontend: numbers, dates and symbols spelled
    out), one line each, names shown safely."""
    from kani_adapt.core.console import shown

    lines = []
    for k, (text, tag) in enumerate(zip(texts, tags), start=1):
        read = front.apply(text, tag)
        where = f" (tag {shown(tag)}, language {front.language_for(tag) or 'none'})" if tag else ""
        same = " (as written)" if read == text else ""
        lines.append(f"text {k}{where} is read as: {shown(read)}{same}")
    return lines


def guidance_warning(chosen: sampling.SamplingConfig) -> list[str]:
    """A warning where guidance is asked for: it needs a model trained with text dropout."""
    if chosen.cfg_scale == 1.0:
        return []
    if chosen.cfg_frames == 0:
        return [f"warning: --cfg-scale {chosen.cfg_scale:g} does nothing with --cfg-frames 0 "
                "(guidance covers no frames)"]
    return [f"warning: guidance (--cfg-scale {chosen.cfg_scale:g} over the first "
            f"{chosen.cfg_frames} frames) needs a model trained with text dropout "
            "(generator.data.text_dropout above 0); for any other model, the released KaniTTS2 "
            "among them, the text-less branch it pushes away from means nothing and the onset "
            "can get worse"]


def _fallback(name: str, default) -> str:
    """What a sampling option left out becomes (the help's note)."""
    shown = {None: "none", True: "on", False: "off"}.get(default, default) \
        if isinstance(default, (bool, type(None))) else default
    return (f"default: the checkpoint's, else {shown}" if name in sampling.FROM_CHECKPOINT
            else f"default: {shown}")


def sampling_of(args, from_checkpoint: dict) -> sampling.SamplingConfig:
    """The user's values, else the checkpoint's generation_config.json, else the defaults."""
    given = {f.name: getattr(args, f.name) for f in fields(sampling.SamplingConfig)}
    return sampling.layered(given, from_checkpoint, where="generate")
