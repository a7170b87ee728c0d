"""The accent judge: an accent classifier per language (SpeechBrain ``EncoderClassifier`` folders
or hub ids, e.g. ``Jzuluaga/accent-id-commonaccent_ecapa`` for English; read by
:mod:`speechbrain_format` and :mod:`ecapa`), and the accent-embedding shift.

Per clip (``scorers.accent_classifiers: {language: model}``):

- ``accent_posterior``: the classifier's probability of the tag's target label
  (``tags.<tag>.accent_label``). ECAPA classifiers score classes by cosine; the probability is
  the softmax of those cosines times :data:`COSINE_SCALE` (the additive-angular-margin scale of
  SpeechBrain's accent and language-id recipes, under which they were trained);
- ``accent_top``: the top-1 label;
- ``accent_base_cosine``: the cosine of the clip's accent embedding to the centroid of the
  base-accent recordings of its language (``scorers.accent_base: {language: folder of audio}``).

Once every row is in, ``accent_shift`` = cosine to the centroid of the target accent's real
recordings (the eval set's references of the tag; for a reference itself, the others) minus
``accent_base_cosine`` (:func:`shift`): 0 = as close to the base accent as to the target, the
``recordings`` row shows what real target speech gets. Accent and voice are entangled, so the
eval compares base and adapted models speaking with the same voice (the same-voice rows).

A clip whose tag has no classifier for its language, no accent label, or no base recordings
gets NaN figures and ``accent_reason`` "not measured: <why>", never a zero.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from kani_adapt.audio import all_to_rate
from kani_adapt.batching import length_batches
from kani_adapt.core.devices import resolve
from kani_adapt.core.errors import ConfigError, DataError
from kani_adapt.scorers import SCORER_RATE
from kani_adapt.scorers import speechbrain_format as sbf

COSINE_SCALE = 30.0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus")


class AccentID:
    """One SpeechBrain ECAPA accent classifier, rebuilt (:mod:`kani_adapt.scorers.ecapa`)."""

    def __init__(self, fbank, embedder, classifier, labels: list[str], device: str, batch_size: int = 8):
        self.fbank, self.embedder, self.classifier = fbank, embedder, classifier
        self.labels, self.device, self.batch_size = labels, device, batch_size

    @classmethod
    def load(cls, spec: str, device: str = "auto", batch_size: int = 8) -> "AccentID":
        from kani_adapt.core.hub import resolve_folder
        from kani_adapt.scorers import ecapa

        folder = Path(resolve_folder(spec, required=(sbf.HPARAMS,)))
        h = sbf.read_hparams(folder)
        feats = sbf.entry(h, "compute_features", sbf.FBANK, folder).args
        norm = sbf.entry(h, "mean_var_norm", sbf.NORMALISATION, folder).args
        emb = dict(sbf.entry(h, "embedding_model", sbf.ECAPA, folder).args)
        clf = sbf.entry(h, "classifier", sbf.CLASSIFIER, folder).args
        if norm.get("norm_type") != "sentence" or norm.get("std_norm", True) or \
                feats.get("deltas") or feats.get("context") or clf.get("lin_blocks", 0):
            raise sbf_error(folder, "only sentence mean normalisation without variance, plain Fbank "
                                    "features and a classifier without hidden blocks are read")
        sbf.check_sizes({**feats, **emb, **clf}, str(folder / sbf.HPARAMS))
        activation = emb.pop("activation", None)
        act = ecapa.ACTIVATIONS.get(activation.target if isinstance(activation, sbf.Name) else "torch.nn.ReLU")
        if act is None:
            raise sbf_error(folder, f"activation {activation.target} is not one kani-adapt builds")
        known = {"channels", "kernel_sizes", "dilations", "attention_channels", "lin_neurons",
                 "res2net_scale", "se_channels", "global_context"}
        embedder = ecapa.EcapaTdnn(int(emb["input_size"]), activation=act,
                                   **{k: v for k, v in emb.items() if k in known})
        classifier = ecapa.CosineClassifier(int(clf["input_size"]), int(clf["out_neurons"]))
        for module, loadable, default in ((embedder, "embedding_model", "embedding_model.ckpt"),
                                          (classifier, "classifier", "classifier.ckpt")):
            path = sbf.file_of(h, loadable, folder, default)
            try:
                module.load_state_dict(sbf.state_dict(path), strict=True)
            except RuntimeError as err:
                raise sbf_error(folder, f"{path.name} does not match {sbf.HPARAMS} ({str(err)[:160]})")
        labels = sbf.read_labels(sbf.file_of(h, "label_encoder", folder, "label_encoder.txt"))
        if len(labels) != classifier.weight.shape[0]:
            raise sbf_error(folder, f"{len(labels)} labels for {classifier.weight.shape[0]} classes")
        fbank = ecapa.Fbank(n_mels=int(feats.get("n_mels", 40)))
        device = resolve(device)
        return cls(fbank.to(device), embedder.to(device).eval(), classifier.to(device).eval(), labels,
                   device, batch_size)

    def classify(self, audios: Sequence[np.ndarray], rate: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosine scores [N, classes], embeddings [N, D]); clips batched by length and padded,
        as SpeechBrain's ``classify_batch`` takes them (relative lengths mask the padding)."""
        import torch

        from kani_adapt.scorers.ecapa import sentence_mean_normalised

        clips = all_to_rate(audios, rate, SCORER_RATE)
        scores = np.zeros((len(clips), len(self.labels)), np.float32)
        embeddings: list[np.ndarray | None] = [None] * len(clips)
        for batch in length_batches([len(c) for c in clips], self.batch_size):
            longest = max(max(len(clips[i]) for i in batch), 400)
            wav = torch.zeros(len(batch), longest)
            for row, i in enumerate(batch):
                wav[row, :len(clips[i])] = torch.from_numpy(np.asarray(clips[i], np.float32))
            lengths = torch.tensor([max(len(clips[i]), 1) / longest for i in batch])
            with torch.no_grad():
                feats = sentence_mean_normalised(self.fbank(wav.to(self.device)), lengths.to(self.device))
                emb = self.embedder(feats, lengths.to(self.device))
                cos = self.classifier(emb)
            for row, i in enumerate(batch):
                scores[i], embeddings[i] = cos[row].cpu().numpy(), emb[row].cpu().numpy()
        return scores, np.stack(embeddings) if embeddings else np.zeros((0, 0), np.float32)

    def posteriors(self, scores: np.ndarray) -> np.ndarray:
        z = COSINE_SCALE * scores
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def sbf_error(folder: Path, why: str):
    from kani_adapt.core.errors import CheckpointError

    return CheckpointError(f"{folder}: {why}")


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def base_centroid(model: AccentID, folder: str) -> np.ndarray:
    """The mean unit accent embedding of the base-accent recordings in ``folder``."""
    from kani_adapt.audio import read

    files = sorted(p for p in Path(folder).expanduser().rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no audio files for the base-accent centroid "
                        f"({', '.join(AUDIO_SUFFIXES)}); scorers.accent_base names such a folder")
    audios = [read(f, SCORER_RATE).audio for f in files]
    _, emb = model.classify(audios, SCORER_RATE)
    return unit(np.mean([unit(e) for e in emb], axis=0))


# --- the scorer (its registry entry: "accent_id") ---

class Judge:
    """The loaded classifiers by language, and each language's base-accent centroid."""

    def __init__(self, models: dict, bases: dict, labels: dict[str, str]):
        self.models, self.bases, self.labels = models, bases, labels


def load_scorer(setup, device: str) -> Judge:
    from kani_adapt.text.tags import accent_labels

    models = {lang: AccentID.load(spec, device, setup.cfg.batch_size)
              for lang, spec in setup.cfg.accent_classifiers.items()}
    labels = accent_labels(setup.tags)
    for tag, label in labels.items():
        model = models.get(setup.language(tag))
        if model is not None and label not in model.labels:
            raise ConfigError(f"tags.{tag}.accent_label: {label!r} is not a label of the "
                              f"{setup.language(tag)} accent classifier (it knows: {model.labels[:20]})")
    bases = {lang: base_centroid(models[lang], folder) for lang, folder in setup.cfg.accent_base.items()
             if lang in models}
    return Judge(models, bases, labels)


def why_not(judge: Judge, setup, tag: str | None) -> str:
    language = setup.language(tag)
    if language not in judge.models:
        return (f"not measured: no accent classifier for language {language or '(none)'} "
                f"(scorers.accent_classifiers.{language or '<language>'})")
    if not judge.labels.get(tag or ""):
        return f"not measured: tag {tag or '(none)'} names no accent_label (tags.<tag>.accent_label)"
    return ""


def score(judge: Judge, setup, clips, rate: int, rows: list[dict]) -> None:
    by_language: dict[str, list[int]] = {}
    for i, (row, clip) in enumerate(zip(rows, clips)):
        reason = why_not(judge, setup, clip.tag)
        row.update(accent_posterior=math.nan, accent_top="", accent_base_cosine=math.nan,
                   accent_embedding=None, accent_reason=reason)
        if not reason:
            by_language.setdefault(setup.language(clip.tag), []).append(i)
    for language, index in by_language.items():
        model = judge.models[language]
        scores, emb = model.classify([clips[i].audio for i in index], rate)
        post = model.posteriors(scores)
        base = judge.bases.get(language)
        for k, i in enumerate(index):
            target = judge.labels[clips[i].tag or ""]
            rows[i].update(accent_posterior=float(post[k, model.labels.index(target)]),
                           accent_top=model.labels[int(post[k].argmax())],
                           accent_embedding=[float(x) for x in unit(emb[k])])
            if base is not None:
                rows[i]["accent_base_cosine"] = float(unit(emb[k]) @ base)
            else:
                rows[i]["accent_reason"] = (f"accent shift not measured: no base-accent recordings "
                                            f"for language {language} (scorers.accent_base.{language})")


def shift(df, recordings: str = "recordings"):
    """``accent_shift`` of every row: cosine to the centroid of its tag's recordings (for a
    recording, the other recordings) minus ``accent_base_cosine``; NaN where either is missing."""
    if "accent_embedding" not in df or "accent_base_cosine" not in df:
        return df
    ref = df[(df["checkpoint"] == recordings) & df["accent_embedding"].notna()]
    sums = {tag: (np.sum([unit(np.asarray(e)) for e in g["accent_embedding"]], axis=0), len(g))
            for tag, g in ref.groupby("tag")}
    values = []
    for row in df.itertuples():
        e, base = row.accent_embedding, row.accent_base_cosine
        total = sums.get(row.tag)
        if e is None or (isinstance(e, float) and math.isnan(e)) or total is None or math.isnan(base):
            values.append(math.nan)
            continue
        e = unit(np.asarray(e, dtype=np.float64))
        vec, n = total
        if row.checkpoint == recordings:  # leave the recording itself out of its centroid
            vec, n = vec - e, n - 1
        values.append(float(e @ unit(vec)) - base if n > 0 else math.nan)
    df["accent_shift"] = values
    return df
