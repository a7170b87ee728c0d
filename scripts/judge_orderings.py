"""What each judge says about espeak-ng voices: the order in which it puts a small eval's systems.

    python scripts/judge_orderings.py [--target en-gb-scotland] [--base en-us] [--label scotland]
        [--variants=,+m3,+f3] [--sentences 6] [--snr 10] [--values] [--json FILE]

A user's eval shows rows ("systems") side by side; a judge is useful for an accent when it puts
them in the right order. This script makes five such systems from espeak-ng speech (real
lengths, 22,050 Hz, each voice variant a speaker; every clip levelled and trimmed as eval
prepares its recordings):

- ``recordings``: the target accent (``--target``), the held-out clips an eval scores as its anchor;
- ``base-accent``: the same sentences and voice variants in the base accent (``--base``): what
  an un-adapted model would sound like;
- ``degraded``: the recordings through a telephone band (8 kHz and back) with white noise at
  ``--snr`` dB: a codec-damaged target;
- ``noise`` and ``silence``: white noise at speech level, and white noise peaking at -60 dBFS
  (two independent draws), each as long as its recording: what a derailed generator gives.

Every judge runs through the scorer registry's own loading and scoring (``Scorers``, the class
``kani-adapt eval`` scores with) and the eval's derived figures (``eval/protocol.add_derived``:
the accent shift, the relative PER, the rescaled similarity). The accent shift's target centroid
is the other recordings (a clip is never compared with itself); its base centroid comes from
base-accent clips of *other* sentences (``scorers.accent_base``). Nothing is downloaded: the
judges whose published weights live on a model hub are the tests' twins, built here with the
publishers' classes and random weights. Their orderings show what the arithmetic does with
random features, not what the published models would say. The kinds, as printed:

- ``twin``: random weights (accent_id: CommonAccent ECAPA twin; phonemes: wav2vec2 phoneme CTC
  twin; ctc_asr: character CTC twin; asr: tiny Whisper twin);
- ``fitted``: the tiny speaker embedder, trained on this machine on 16 other espeak-ng voices;
- ``real``: DNSMOS (the published ONNX models in the speechmos wheel); failures (fixed rules; its
  empty-transcript check reads the Whisper twin's transcript).

Prints, per figure, the systems best to worst by the registry's direction of that metric
(``a = b``: equal figures) and whether it puts recordings above base-accent above both garbage
systems, and recordings above degraded above both garbage systems. ``ctc_cer`` is not a
registry metric: the character CTC twin's transcript through the project's CER (direction: cer's).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

HERE = Path(__file__).resolve().parents[1]
SYSTEMS = ("recordings", "base-accent", "degraded", "noise", "silence")
GARBAGE = ("noise", "silence")
# judge (registry scorer), kind, the figures shown (registry metrics, and ctc_cer)
JUDGES = (("accent_id", "twin", ("accent_posterior", "accent_shift")),
          ("phonemes", "twin", ("corpus_per", "per_relative")),
          ("ctc_asr", "twin", ("corpus_ctc_wer", "ctc_cer")),
          ("asr", "twin", ("corpus_cer",)),
          ("similarity", "fitted", ("similarity",)),
          ("dnsmos", "real", ("dnsmos_p808", "dnsmos_ovrl")),
          ("failures", "real", ("failure",)))
# figures that are not registry metrics: the registry metric whose direction they share
DIRECTION_OF = {"ctc_cer": "cer"}
EXTRA_CORPUS = {"ctc_cer": ("ctc_char_edits", "ctc_ref_chars")}
SENTENCES = ["Are you coming down the road later on?", "It is a lovely day for a walk by the river.",
             "We are going to the shops before they close.", "Mind how you go now, the pavement is icy.",
             "The bus to the city centre leaves at nine.", "I will see you at the match on Saturday.",
             "There is a wee shop at the end of the street.", "Put the kettle on, I will be home soon."]
# base-accent sentences for the base centroid, none of them scored
CENTROID_SENTENCES = ["The train was late again this morning.", "She bought bread and milk at the corner.",
                      "My brother lives in a flat near the park.", "Could you open the window a little?"]


def higher_is_better(metric: str) -> bool:
    """The registry's direction of ``metric`` (or of the registry metric it stands beside)."""
    from kani_adapt.scorers.registry import higher_is_better as directions

    return directions()[DIRECTION_OF.get(metric, metric)]


def ordering(figures: Mapping[str, float], metric: str) -> list[list[str]]:
    """The systems best to worst by ``metric``'s direction; equal figures share a place, a
    system without a figure (NaN) is left out."""
    measured = {s: v for s, v in figures.items() if v is not None and not math.isnan(v)}
    sign = -1.0 if higher_is_better(metric) else 1.0
    places: list[list[str]] = []
    for system in sorted(measured, key=lambda s: sign * measured[s]):
        if places and math.isclose(measured[system], measured[places[-1][0]], rel_tol=1e-6, abs_tol=1e-9):
            places[-1].append(system)
        else:
            places.append([system])
    return places


def above(places: Sequence[Sequence[str]], chain: Sequence[str]) -> str:
    """"yes" when each system of ``chain`` is strictly above the next and the last above both
    garbage systems; "no" otherwise; "n/a" when one of them has no figure."""
    rank = {s: i for i, group in enumerate(places) for s in group}
    steps = list(chain) + list(GARBAGE)
    if any(s not in rank for s in steps):
        return "n/a"
    ok = all(rank[a] < rank[b] for a, b in zip(chain, chain[1:]))
    return "yes" if ok and all(rank[chain[-1]] < rank[g] for g in GARBAGE) else "no"


def shown(places: Sequence[Sequence[str]]) -> str:
    return " > ".join(" = ".join(group) for group in places) or "not measured"


def figure(df, metric: str) -> dict[str, float]:
    """system -> the figure an eval reports: a corpus rate (all edits over all units) or the
    mean over the clips that have one."""
    from kani_adapt.scorers.registry import corpus_rates

    corpus = {**corpus_rates(), **EXTRA_CORPUS}.get(metric)
    out = {}
    for system in SYSTEMS:
        part = df[df["checkpoint"] == system]
        if corpus is not None:
            edits, units = (part[c].to_numpy(float) for c in corpus)
            keep = np.isfinite(edits) & np.isfinite(units)
            out[system] = float(edits[keep].sum() / units[keep].sum()) if units[keep].sum() else math.nan
        else:
            values = part[metric].to_numpy(float) if metric in part else np.array([])
            out[system] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out


# --- the world ---

def voices(target: str, base: str, variants: Sequence[str], sentences: Sequence[str], snr: float):
    """(system, speaker, sentence index, text, audio at espeak's rate) of every clip, and the
    base-accent centroid clips."""
    from kani_adapt.audio import to_rate
    from kani_adapt.core import espeak
    from kani_adapt.eval.run import prepared
    from tests.scorers.speech import with_noise

    rate, clips, centroid = espeak.SAMPLE_RATE, [], []
    rng = np.random.default_rng(0)
    for k, variant in enumerate(variants):
        speaker = f"voice{variant or '+default'}"
        for i, text in enumerate(sentences):
            rec = prepared(espeak.speak(text, target + variant), rate)
            phone = to_rate(to_rate(rec, rate, 8000), 8000, rate)[:len(rec)]
            rms = float(np.sqrt(np.mean(rec ** 2)))
            white, faint = (rng.standard_normal(len(rec)).astype(np.float32) for _ in range(2))
            clips += [("recordings", speaker, i, text, rec),
                      ("base-accent", speaker, i, text, prepared(espeak.speak(text, base + variant), rate)),
                      ("degraded", speaker, i, text, with_noise(phone, snr, seed=100 * k + i)),
                      ("noise", speaker, i, text, np.clip(rms * white, -1, 1)),
                      ("silence", speaker, i, text, 1e-3 * faint / float(np.abs(faint).max()))]
        centroid += [prepared(espeak.speak(t, base + variant), rate) for t in CENTROID_SENTENCES]
    return clips, centroid


def judges(folder: Path, centroid: Sequence[np.ndarray], language: str) -> dict:
    """ScorerConfig keys of every judge's model: the tests' twins, the tiny embedder, and a
    folder of the base-accent centroid clips."""
    import shutil

    import soundfile as sf

    from kani_adapt.core import espeak
    from tests.scorers.ctc_twins import character_recogniser, phoneme_recogniser
    from tests.scorers.whisper_twin import build_tiny_whisper

    accent = folder / "accent"
    shutil.copytree(HERE / "tests" / "fixtures" / "commonaccent-ecapa-twin", accent)
    base = folder / "base-accent"
    base.mkdir()
    for i, audio in enumerate(centroid):
        sf.write(base / f"{i:03d}.wav", audio, espeak.SAMPLE_RATE)
    return {"accent_classifiers": {language: str(accent)}, "accent_base": {language: str(base)},
            "phoneme_model": str(phoneme_recogniser(folder / "phonemes")),
            "ctc_asr": str(character_recogniser(folder / "ctc")),
            "asr": str(build_tiny_whisper(folder / "whisper")), "speaker_embedder": "tiny"}


def scored(world, models: dict, tag: str, language: str, label: str):
    """Every clip through the registry's scorers and the eval's derived figures: a DataFrame."""
    import pandas as pd

    from kani_adapt.core import espeak
    from kani_adapt.eval import protocol
    from kani_adapt.scorers import failures
    from kani_adapt.scorers.config import ScorerConfig
    from kani_adapt.scorers.registry import Clip, Scorers
    from kani_adapt.scorers.similarity import anchors
    from kani_adapt.scorers.text import error_rates
    from kani_adapt.text.tags import Tag

    rate = espeak.SAMPLE_RATE
    tags = {tag: Tag(language=language, accent_label=label)}
    scorers = Scorers(ScorerConfig(dnsmos_threads=0, **models), "cpu", tags)
    recs = {(s, i): (t, a) for name, s, i, t, a in world if name == "recordings"}
    keys = sorted(recs)
    embedding = dict(zip(keys, scorers.models["similarity"].embed([recs[k][1] for k in keys], rate)))
    n = 1 + max(i for _, i in keys)
    speaking = {s: failures.speaking_rate([recs[k][0] for k in keys if k[0] == s],
                                          [len(recs[k][1]) / rate for k in keys if k[0] == s])
                for s in {s for s, _ in keys}}
    clips = [Clip(audio=a, text=t, speaker=s, tag=tag, chars_per_second=speaking[s],
                  reference=embedding[(s, (i + 1) % n)]) for _, s, i, t, a in world]
    rows = scorers.score(clips, rate)
    for row, (name, s, i, t, _) in zip(rows, world):
        r = error_rates(t, row.get("ctc_text", ""), language)
        row.update(checkpoint=name, speaker=s, item=i, sample=0, tag=tag,
                   ctc_char_edits=float(r.char_edits), ctc_ref_chars=float(r.chars))
    a = anchors(np.stack([embedding[k] for k in keys]), [s for s, _ in keys])
    return protocol.add_derived(pd.DataFrame(rows), {"similarity": {"ceiling": a.ceiling, "floor": a.floor}})


def table(df) -> list[dict]:
    out = []
    for judge, kind, metrics in JUDGES:
        for metric in metrics:
            figures = figure(df, metric)
            places = ordering(figures, metric)
            out.append({"judge": judge, "figure": metric, "kind": kind,
                        "direction": "higher" if higher_is_better(metric) else "lower",
                        "ordering": shown(places), "figures": figures,
                        "recordings > base-accent > garbage": above(places, ("recordings", "base-accent")),
                        "recordings > degraded > garbage": above(places, ("recordings", "degraded"))})
    return out


def printed(rows: list[dict], values: bool) -> str:
    head = ["judge", "figure", "kind", "better", "ordering (best to worst)", "rec > base > garbage",
            "rec > degraded > garbage"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['judge']} | `{r['figure']}` | {r['kind']} | {r['direction']} | {r['ordering']} "
                     f"| {r['recordings > base-accent > garbage']} | {r['recordings > degraded > garbage']} |")
    if values:
        lines += ["", "| figure | " + " | ".join(SYSTEMS) + " |", "|" + "---|" * (len(SYSTEMS) + 1)]
        lines += [f"| `{r['figure']}` | " + " | ".join(f"{r['figures'][s]:.3f}" for s in SYSTEMS) + " |"
                  for r in rows]
    return "\n".join(lines)


def quiet() -> None:
    """No transformers advice or torch deprecation notes between the table's lines."""
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="en-gb-scotland", help="espeak-ng voice of the target accent")
    ap.add_argument("--base", default="en-us", help="espeak-ng voice of the base accent")
    ap.add_argument("--label", default="scotland", help="the accent classifier's label of the target")
    ap.add_argument("--language", default="en", help="the language the sentences are in")
    ap.add_argument("--variants", default=",+m3,+f3",
                    help="espeak-ng voice variants, one speaker each ('' = the plain voice)")
    ap.add_argument("--sentences", type=int, default=6,
                    help=f"sentences per speaker (at most {len(SENTENCES)})")
    ap.add_argument("--snr", type=float, default=10.0, help="the degraded system's noise (dB)")
    ap.add_argument("--values", action="store_true", help="also print each system's figures")
    ap.add_argument("--json", type=Path, help="write the table (with the figures) here")
    args = ap.parse_args(argv)
    if not 2 <= args.sentences <= len(SENTENCES):
        ap.error(f"--sentences: 2 to {len(SENTENCES)} (a recording's centroid needs the others)")
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the tests' twins
    quiet()
    variants = [v.strip() for v in args.variants.split(",")]
    from kani_adapt.core.errors import KaniAdaptError

    start = time.perf_counter()
    tag = f"{args.language}_{args.label}"
    try:
        world, centroid = voices(args.target, args.base, variants, SENTENCES[:args.sentences], args.snr)
        with tempfile.TemporaryDirectory() as tmp:
            df = scored(world, judges(Path(tmp), centroid, args.language), tag, args.language, args.label)
    except KaniAdaptError as err:  # an unknown voice, a label the classifier lacks: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = table(df)
    print(f"{len(world)} clips ({len(variants)} voices x {args.sentences} sentences x {len(SYSTEMS)} systems), "
          f"target {args.target}, base {args.base}, label {args.label}; {time.perf_counter() - start:.0f} s")
    print(printed(rows, args.values))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
