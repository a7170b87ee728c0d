"""One evaluation: references and their codec round trip, then generate, decode and score every
item with every checkpoint. Returns per-utterance rows; ``report`` summarises them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kani_adapt.core import console
from kani_adapt.eval.config import EvalConfig
from kani_adapt.eval.evalset import EvalItem
from kani_adapt.scorers.registry import Clip, Scorers
from kani_adapt.scorers import failures

CODEC_CEILING = "codec_roundtrip"
RECORDING_WAVS = "recording"  # wavs/recording/: the reference files, as the listeners hear them
RECORDINGS_ROW = "recordings"  # the eval set's own recordings: the human anchor


@dataclass
class References:
    audio: dict[str, np.ndarray]  # by reference key, at the codec rate
    speaker_rate: dict[str, float]  # characters per second from transcribed references
    embedding: dict[str, np.ndarray] = field(default_factory=dict)  # KaniTTS2 embedder
    xvector: dict[str, np.ndarray] = field(default_factory=dict)
    roundtrip: dict[str, np.ndarray] = field(default_factory=dict)  # through the codec
    anchors: dict = field(default_factory=dict)


def read_audio(path: Path, rate: int) -> np.ndarray:
    from kani_adapt.audio import read

    return read(path, rate, check_finite=False).audio


def first_by_reference(items: list[EvalItem]) -> dict[str, EvalItem]:
    out: dict[str, EvalItem] = {}
    for item in items:
        if item.reference_key is not None and item.reference_key not in out:
            out[item.reference_key] = item
    return out


def prepared(audio: np.ndarray, rate: int) -> np.ndarray:
    """A reference recording as eval uses it: brought to one loudness and stripped of its
    leading and trailing silence (a file's level and pauses are the microphone's, not the
    speech's; the segment stage trims training clips alike). Everything scored against the
    recordings (the anchor row, the codec round trip, voice similarity and its anchors,
    speaking rates) then hears the speech alone. Generated clips are not trimmed: their
    silence is a failure the scorers count."""
    from kani_adapt.audio import matched, trim_silence

    return trim_silence(matched(audio, rate), rate)


def load_references(items: list[EvalItem], codec, scorers: Scorers) -> References:
    """Reference audio (files, levelled and trimmed by :func:`prepared`, or dataset codes
    decoded), its codec round trip, speaking rates, embeddings and similarity anchors."""
    from kani_adapt.eval.generation import decode, encode
    from kani_adapt.scorers.similarity import anchors

    rate = codec.sample_rate
    firsts = first_by_reference(items)
    files = [k for k, i in firsts.items() if i.reference is not None]
    coded = [k for k, i in firsts.items() if i.reference is None]
    refs = References({k: prepared(read_audio(firsts[k].reference, rate), rate) for k in files}, {})
    refs.audio.update(zip(coded, decode(codec, [firsts[k].codes for k in coded])))
    # A dataset recording exists only as codes: decoding them is already the codec round trip.
    refs.roundtrip = dict(zip(files, decode(codec, encode(codec, [refs.audio[k] for k in files]))))
    refs.roundtrip.update({k: refs.audio[k] for k in coded})
    by_speaker: dict[str, tuple[list[str], list[float]]] = {}
    for key, item in firsts.items():
        if item.reference_text:
            texts, secs = by_speaker.setdefault(item.speaker, ([], []))
            texts.append(item.reference_text)
            secs.append(len(refs.audio[key]) / rate)
    refs.speaker_rate = {s: failures.speaking_rate(t, d) for s, (t, d) in by_speaker.items()}
    paths = sorted(firsts)
    speaker_of = {k: i.speaker for k, i in firsts.items()}
    for name, model, store in (("similarity", scorers.models.get("similarity"), refs.embedding),
                               ("similarity_xvector", scorers.models.get("xvector"), refs.xvector)):
        if model and paths:
            emb = model.embed([refs.audio[p] for p in paths], rate)
            store.update(zip(paths, emb))
            a = anchors(emb, [speaker_of[p] for p in paths])
            refs.anchors[name] = {"ceiling": a.ceiling, "floor": a.floor}
    return refs


def reference_name(item: EvalItem) -> str:
    """The name the item's recording goes by in the report (its file's stem, or the dataset item's
    id: its recording exists as codes only); "" without one."""
    if item.reference is not None:
        return Path(item.reference).stem
    return item.id if item.codes is not None else ""


def other_reference(item: EvalItem, items: list[EvalItem]) -> str | None:
    """A reference clip of the same speaker other than the item's own (the fair comparison);
    the item's own when the speaker has only one."""
    others = sorted({i.reference_key for i in items if i.speaker == item.speaker and i.reference_key
                     and i.reference_key != item.reference_key})
    return others[0] if others else item.reference_key


def conditioning(items: list[EvalItem], refs: References):
    """128-d speaker embedding per item: its .npy file, else its reference through the embedder."""
    from kani_adapt.models.speaker.voice import load_speaker_embedding

    out = []
    for item in items:
        if item.embedding is not None:
            out.append(load_speaker_embedding(item.embedding))
        elif item.vector is not None:
            out.append(np.asarray(item.vector, dtype=np.float32))
        elif item.reference_key in refs.embedding:
            out.append(refs.embedding[item.reference_key].astype(np.float32))
        else:
            out.append(None)
    return out


def voice_of(embedding: np.ndarray | None) -> str:
    """A short fingerprint of the speaker embedding a clip was generated with ("" for none):
    rows of two checkpoints with the same fingerprint spoke with the same voice."""
    import hashlib

    if embedding is None:
        return ""
    return hashlib.sha1(np.ascontiguousarray(embedding, dtype=np.float32).tobytes()).hexdigest()[:12]


def _clip(item, items, refs, audio, codes=None, cap=False) -> Clip:
    sim_ref = other_reference(item, items)
    return Clip(audio=audio, text=item.text, speaker=item.speaker, tag=item.tag, codes=codes,
                hit_length_cap=cap,
                chars_per_second=refs.speaker_rate.get(item.speaker, failures.DEFAULT_CHARS_PER_SECOND),
                reference=refs.embedding.get(sim_ref), reference_xvector=refs.xvector.get(sim_ref))


def codec_ceiling(items, refs, codec, scorers: Scorers) -> list[dict]:
    """Each reference clip's codec round trip, scored against its own transcript."""
    return reference_rows(CODEC_CEILING, refs.roundtrip, items, refs, codec.sample_rate, scorers)


def recordings(items, refs, codec, scorers: Scorers) -> list[dict]:
    """The human anchor: each reference recording itself (read at the codec's rate, levelled
    and trimmed as ``load_references`` prepares it, then the scorers' own 16 kHz preparation,
    as every generated clip) scored against its transcript. A dataset eval set holds its
    recordings as codes only: then this row is their decoding."""
    return reference_rows(RECORDINGS_ROW, refs.audio, items, refs, codec.sample_rate, scorers)


def reference_rows(name: str, audio: dict, items, refs, rate: int, scorers: Scorers) -> list[dict]:
    clips, meta = [], []
    for key, item in first_by_reference(items).items():
        text = item.reference_text or ""
        clip = _clip(item, items, refs, audio[key])
        clip.text = text
        clips.append(clip)
        meta.append(dict(checkpoint=name, item=reference_name(item), reference=reference_name(item),
                         sample=0, speaker=item.speaker, tag=item.tag or "", base=item.base, text=text,
                         frames=len(audio[key]) // round(rate / 12.5)))  # NanoCodec's frames
    rows = scorers.score(clips, rate) if clips else []
    for m, row, clip in zip(meta, rows, clips):
        row.update(m)
        if not clip.text:  # without a transcript there is nothing to compare the ASR with
            for key in ("cer", "wer", "failure", "catastrophic", "char_edits", "ref_chars",
                        "word_edits", "ref_words"):
                row[key] = float("nan")
    return rows


def evaluate_checkpoint(name: str, checkpoint: str, items, refs, codec, scorers: Scorers,
                        cfg: EvalConfig, device: str, speakers: list,
                        on_audio: Callable[[str, np.ndarray], None] | None = None,
                        on_codes: Callable | None = None) -> list[dict]:
    """Generate, decode and score ``items`` with one checkpoint, each item spoken with its
    entry of ``speakers`` (the voices every compared checkpoint is given: ``conditioning``).
    ``on_codes`` gets each clip's :class:`kani_adapt.eval.spoken.Spoken`."""
    from kani_adapt.eval.spoken import Spoken

    from kani_adapt.eval.generation import decode, generate_items

    import logging
    import time

    say = logging.getLogger("kani_adapt.progress").info
    rows = []
    start, n = time.time(), len(items)
    for sample in range(cfg.samples):
        step = f"eval {name}: sample {sample + 1}/{cfg.samples}:"
        of = f"{name} (sample {sample + 1}/{cfg.samples})"
        console.doing(f"generating {n} items with {of}")
        generated = generate_items(checkpoint, items, speakers, cfg, device, seed=cfg.sampling.seed + sample)
        console.doing(f"decoding the speech of {of}")
        say("%s generated %d/%d items (%.0f s)", step, n, n, time.time() - start)
        audios = decode(codec, [g.codes for g in generated])
        say("%s decoded %d/%d (%.0f s)", step, n, n, time.time() - start)
        clips = [_clip(item, items, refs, audio, g.codes, g.hit_length_cap)
                 for item, g, audio in zip(items, generated, audios)]
        console.doing(f"scoring {n} clips of {of}")
        scored = scorers.score(clips, codec.sample_rate)
        per = (time.time() - start) / (sample + 1)
        say("%s scored %d/%d; ETA for this checkpoint %.0f s", step, n, n,
            per * (cfg.samples - sample - 1))
        for item, spk, row, audio, g in zip(items, speakers, scored, audios, generated):
            row.update(checkpoint=name, item=item.id, sample=sample, speaker=item.speaker,
                       tag=item.tag or "", base=item.base, text=item.text, conditioned=spk is not None,
                       voice=voice_of(spk),
                       frames=len(g.codes), reference=reference_name(item),
                       prompt_tokens=g.prompt_tokens, onset_entropy=g.onset_entropy)
            if on_audio:
                on_audio(f"{name}/{item.id}_s{sample}", audio)
            if on_codes:
                on_codes(Spoken(name, item.id, sample, np.asarray(g.codes), bool(g.hit_length_cap), spk))
        rows += scored
    return rows
