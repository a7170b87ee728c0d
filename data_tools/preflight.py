"""What ``prepare`` (and ``data-tools check``) checks before any work: the input folders, the
models every stage that will run declares (``Stage.models``: on this machine, fetched from the
hub, or refused in one line), every stage's device (``Stage.device``), each source's language
against its tag, tokenizer coverage of a sample of the transcripts, and what the recordings need
(:func:`inputs_need`). The models and devices come from the registry; the checks of the
inputs, languages and coverage name the sections they read.

``transcribe.enabled: auto`` is decided here, once, from the recordings: it runs where the ASR
model is on this machine, and also where the recordings need it (untranscribed recordings, long
recordings with one transcript) and the model can be fetched; where they need it and it cannot
be, the run stops before any work. A stage switched off that the recordings need is a note (the
run ends with a summary of the hours rejected because of it, :func:`switched_off_losses`); with
``strict`` it is a problem.

A check is ``check(target: Target) -> list[Finding]``, listed in ``CHECKS``.
"""
from __future__ import annotations

import dataclasses
import functools
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data_tools import registry
from data_tools.config import DataConfig
from data_tools.stages.kit import Model, Stage
from kani_adapt.core import hub, preflight
from kani_adapt.core.preflight import Finding, note, problem

UNTRANSCRIBED = ("missing_transcript", "empty_transcript")
COVERAGE_SAMPLE = 200  # transcripts whose characters the tokenizer is asked about


@dataclass
class Needs:
    """What the recordings need of the stages: ids and seconds of the untranscribed recordings
    and of the long ones with one transcript (longer than ``segment.max_seconds``)."""

    untranscribed: dict[str, float] = field(default_factory=dict)
    long: dict[str, float] = field(default_factory=dict)
    owners: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (tag, speaker)
    texts: dict[str, list[str]] = field(default_factory=dict)  # tag -> the given transcripts
    input_hours: float = 0.0  # every readable recording, by its header

    def to_json(self) -> dict:
        return {"untranscribed": self.untranscribed, "long": self.long,
                "input_hours": round(self.input_hours, 4)}

    @classmethod
    def from_json(cls, data: dict) -> "Needs":
        return cls(dict(data.get("untranscribed", {})), dict(data.get("long", {})),
                   input_hours=float(data.get("input_hours", 0.0)))

    def all_texts(self) -> list[str]:
        return [text for tag in sorted(self.texts) for text in self.texts[tag]]

    def speakers(self) -> set[str]:
        return {speaker for _, speaker in self.owners.values()}

    def describe(self) -> str:
        parts = []
        if self.untranscribed:
            parts.append(f"{len(self.untranscribed)} untranscribed recording(s) "
                         f"({duration_text(sum(self.untranscribed.values()))})")
        if self.long:
            parts.append(f"{len(self.long)} long recording(s) with one transcript "
                         f"({duration_text(sum(self.long.values()))})")
        return " and ".join(parts)


def hours(seconds: dict[str, float]) -> float:
    return sum(seconds.values()) / 3600


def duration_text(seconds: float) -> str:
    """``42 s``, ``12.5 min`` or ``3.20 h``: readable at every scale."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


@dataclass
class Target:
    """What the data checks look at: the config, the models passed in instead of the configured
    ones (tests, benchmarks: their checks are skipped), and ``strict``."""

    cfg: DataConfig
    given: frozenset = frozenset()
    strict: bool = False

    @functools.cached_property
    def needs(self) -> Needs:
        return inputs_need(self.cfg)


def inputs_need(cfg: DataConfig) -> Needs:
    """Discovery (no audio read) and each transcribed file's length from its header."""
    from data_tools.inputs.layouts import discover
    from kani_adapt.audio import AudioReadError, probe
    from kani_adapt.core.errors import ConfigError

    out = Needs()
    for src in cfg.ingest.sources:
        try:
            found = discover(src, cfg.ingest.max_transcript_bytes)
        except ConfigError:
            continue  # check_sources says why
        for c in found:
            if c.error and c.error not in UNTRANSCRIBED:
                continue
            try:  # a packaged clip: its length as packaged (its bytes stay in the parquet)
                seconds = c.seconds if c.packed is not None else probe(c.audio).seconds
            except (AudioReadError, OSError, RuntimeError, ValueError):
                continue  # ingest rejects it with its reason
            if seconds is None:
                continue
            out.owners[c.id] = (c.tag.lower(), c.speaker)
            out.input_hours += seconds / 3600
            if c.error or not c.text:
                out.untranscribed[c.id] = seconds
            else:
                out.texts.setdefault(c.tag.lower(), []).append(c.text)
                if seconds > cfg.segment.max_seconds:
                    out.long[c.id] = seconds
    return out


def check_sources(t: Target) -> list[Finding]:
    out = []
    if not t.cfg.ingest.sources:
        return [problem("ingest.sources is empty: name at least one input folder")]
    for i, src in enumerate(t.cfg.ingest.sources):
        path = Path(src.path)
        key = f"ingest.sources[{i}].path"
        if src.layout == "contribution":
            out += _check_package(src, f"ingest.sources[{i}]")
            continue
        if not path.is_dir():
            out.append(problem(f"{key}: {src.path} is not a folder"))
            continue
        table = {"ljspeech": "metadata.csv", "commonvoice": src.tsv}.get(src.layout)
        if table and not (path / table).is_file():
            out.append(problem(f"{key}: {src.layout} source {src.path} has no {table}"))
    return out


def _check_package(src, key: str) -> list[Finding]:
    """A packaged contribution: its folder (or hub id, from the cache or the hub), its card and
    its shards' columns (their metadata: no audio is read)."""
    from data_tools.inputs import package
    from kani_adapt.core.errors import ConfigError

    try:
        root = package.locate(src.path, src.hub)
        package.terms(root, src.hub or src.path)
        for _, path in package.shards(root):
            package.open_shard(path)
    except ConfigError as err:
        return [problem(f"{key}: {err}")]
    return []


def _transcribe_needed(t: Target) -> bool:
    align_runs = registry.get("align").enabled(t.cfg)
    return bool(t.needs.untranscribed or (t.needs.long and not align_runs))


def transcribe_switch(t: Target) -> tuple[str, list[Finding]]:
    """("on" or "off", findings about the switch): what ``transcribe.enabled`` means for these
    recordings (its model is checked with every other stage's, :func:`check_models`)."""
    cfg = t.cfg.transcribe
    if "asr" in t.given:
        return ("off" if cfg.enabled == "off" else "on"), []
    needed = _transcribe_needed(t)
    if cfg.enabled == "off":
        if not needed:
            return "off", []
        line = (f"transcribe.enabled is off, but the recordings hold {t.needs.describe()}: they "
                "will be rejected; set transcribe.enabled: on (or auto) to transcribe them")
        return "off", [problem(line) if t.strict else note(line)]
    if cfg.enabled == "on" or needed or hub.on_machine(cfg.model):
        return "on", []
    return "off", [note(f"transcribe stays off: ASR model {cfg.model} is not on this machine and "
                        "every recording has its transcript (given transcripts are not checked)")]


def wanted_models(cfg: DataConfig, given=frozenset()) -> list[tuple[Stage, Model]]:
    """The models the stages will load with ``cfg`` (``transcribe.enabled`` decided), each
    key once; those handed in instead (``given``) are not."""
    out, keys = [], set()
    for stage, model in registry.models():
        if model.key in keys or (model.given and model.given in given) or \
                not stage.enabled(cfg) or (model.when is not None and not model.when(cfg)):
            continue
        keys.add(model.key)
        out.append((stage, model))
    return out


def check_model(model: Model, cfg: DataConfig) -> list[Finding]:
    """On this machine, fetched from the hub, or refused (one line)."""
    from kani_adapt.codec.registry import check_reference

    if model.codec:
        return check_reference(model.key, model.ref(cfg))
    return preflight.model(model.key, model.ref(cfg), model.what, model.files, model.sizes)


def check_models(t: Target) -> list[Finding]:
    """Every model a stage that will run declares (``Stage.models``)."""
    switch, out = transcribe_switch(t)
    cfg = _switched(t.cfg, switch)
    why = ""  # an ASR model the recordings ask for, though the config left it to auto
    if t.cfg.transcribe.enabled == "auto" and "asr" not in t.given and _transcribe_needed(t):
        why = f"; {t.needs.describe()} need it, or set transcribe.enabled: off to reject them"
    for stage, model in wanted_models(cfg, t.given):
        found = check_model(model, cfg)
        if why and stage.name == "transcribe":
            found = [dataclasses.replace(f, line=f.line + why) if f.problem else f for f in found]
        out += found
    return out


def check_devices(t: Target) -> list[Finding]:
    """Every stage's device (``Stage.device``), whether or not the recipe's reaches it."""
    out = []
    for key in registry.device_keys():
        section, name = key.split(".")
        out += preflight.device(key, getattr(getattr(t.cfg, section), name))
    return out


def check_coverage(t: Target) -> list[Finding]:
    """Characters of a sample of the transcripts that the generator's tokenizer does not know."""
    ref = t.cfg.filter.tokenizer
    given = t.needs.all_texts()
    if not ref or "tokenizer" in t.given or not hub.on_machine(ref) or not given:
        return []
    from kani_adapt.scorers import textnorm

    texts = random.Random(0).sample(given, min(COVERAGE_SAMPLE, len(given)))
    try:
        cov = textnorm.coverage(texts, textnorm.load_tokenizer(ref))
    except Exception as err:  # the tokenizer's own error, in one line
        return [problem(f"filter.tokenizer: {ref} does not load ({type(err).__name__})")]
    unknown, spelled = "".join(cov["unknown"]), "".join(cov["byte_fallback"])
    out = []
    if unknown:
        out.append(problem(f"filter.tokenizer: {len(cov['unknown'])} character(s) of the "
                           f"transcripts are unknown to {ref}'s tokenizer ({unknown[:40]}; sample "
                           f"of {len(texts)} transcripts): they would train as <unk>; normalise "
                           "or transliterate them"))
    if spelled:
        out.append(note(f"filter.tokenizer: {len(cov['byte_fallback'])} character(s) are spelled "
                        f"byte by byte ({spelled[:40]}; {cov['byte_fallback_share']:.1%} of the "
                        f"characters of {len(texts)} transcripts)"))
    return out


CHECKS = [check_sources, check_models, check_devices, check_coverage]


def findings(cfg: DataConfig, given=(), strict: bool = False) -> list[Finding]:
    return preflight.run_checks(CHECKS, Target(cfg, frozenset(given), strict))


def ready(cfg: DataConfig, given=(), strict: bool = False) -> tuple[DataConfig, Needs]:
    """(``cfg``, what its recordings need) once every check passed (else
    :class:`PreflightError`), with ``transcribe.enabled`` decided and the models the run loads
    fetched now rather than midway."""
    target = Target(cfg, frozenset(given), strict)
    preflight.refuse(preflight.run_checks(CHECKS, target))
    cfg = decided(cfg, target)
    fetch_models(cfg, target.given)
    return cfg, target.needs


def decided(cfg: DataConfig, target: Target | None = None) -> DataConfig:
    """``cfg`` with ``transcribe.enabled`` decided (``on`` or ``off``) for its recordings."""
    switch = transcribe_switch(target or Target(cfg))[0]
    if switch == "off" and cfg.transcribe.enabled == "auto":
        return cfg  # auto stays: off, and why_off says why
    return _switched(cfg, switch)


def _switched(cfg: DataConfig, switch: str) -> DataConfig:
    return dataclasses.replace(cfg, transcribe=dataclasses.replace(cfg.transcribe, enabled=switch))


def fetch_models(cfg: DataConfig, given) -> None:
    """Hub ids of the models the run will load, fetched before the first stage (one line when
    that fails); codecs are fetched by the codec registry when the tokenize stage loads one."""
    for _, model in wanted_models(cfg, frozenset(given)):
        ref = model.ref(cfg)
        if not model.codec and hub.is_hub_id(ref) and not hub.on_machine(ref):
            hub.resolve_folder(ref)


def switched_off_losses(cfg: DataConfig, needs: Needs, rejected: list[dict]) -> dict:
    """The rejections a stage switched off caused: {reason: {"items", "hours"}} and the total,
    for recordings the preflight found needing that stage."""
    if cfg.transcribe.enabled != "off":
        return {}
    wanted = {**needs.untranscribed, **needs.long}
    by: Counter = Counter()
    seconds: dict[str, float] = {}
    for r in rejected:
        parent = r["id"].split("#")[0]
        if parent in wanted and parent not in seconds:
            seconds[parent] = wanted[parent]
            by[f"{r['stage']}: {r['reason']}"] += 1
    if not seconds:
        return {}
    return {"stage": "transcribe", "hours": round(hours(seconds), 6), "items": len(seconds),
            "input_hours": round(needs.input_hours, 4),
            "by_reason": dict(sorted(by.items())),
            "fix": "set transcribe.enabled: on (Whisper: transcribe.model) and rerun"}


def loss_lines(loss: dict, input_hours: float | None = None) -> list[str]:
    """The loud summary at the end of a run that lost hours to a stage switched off."""
    if not loss:
        return []
    share = f" of {duration_text(input_hours * 3600)} in the input" if input_hours else ""
    bar = "!" * 72
    return [bar, f"!! {duration_text(loss['hours'] * 3600)} ({loss['items']} recording(s))"
                 f"{share} rejected because {loss['stage']} is off:"] + \
        [f"!!   {reason}: {n}" for reason, n in loss["by_reason"].items()] + \
        [f"!! {loss['fix']}; --strict makes this an error", bar]
