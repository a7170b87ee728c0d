"""What ``kani-adapt check`` prints and ``kani-adapt run`` checks before its first stage: every
refusal of a later stage that needs no training. The data preparation's checks (inputs, models,
devices, languages, tokenizer coverage), the voices ``synth`` speaks with, the codecs, the
generator's base and datasets, the fertility gate with the generator's own tokenizer, the
training set's speakers against what training, the eval and the samples ask of them, what the
eval and sample stages need of the export, the eval stage's checkpoint and scorers, every device.

Keys are the recipe's (``data.embed.model``, ``generator.trainer.device``). What the run itself
makes before it is used (synthesized recordings, the tiny speaker embedder, the prepared
dataset, the fine-tuned codec, the training run and its exports) is resolved to the stage that
makes it, not looked for (:func:`made_by_stages`). A check is ``check(target) -> [Finding]`` in
``CHECKS``.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from data_tools import preflight as data_preflight
from kani_adapt import dataset
from kani_adapt.core import preflight
from kani_adapt.codec.registry import check_reference
from kani_adapt.dataset import DatasetLayout
from kani_adapt.eval.preflight import checkpoint, eval_findings
from kani_adapt.core.preflight import Finding, problem
from kani_adapt.recipes import expected, fertility_gate, stages
from kani_adapt.recipes.schema import Recipe, builds_embedder, made_by_run, tiny_embedder
from kani_adapt.training.preflight import train_findings

CONTROL = "<custom_token_"  # how KaniTTS2's control and audio tokens are spelled


@dataclass
class Target:
    recipe: Recipe
    strict: bool = False

    @functools.cached_property
    def before_run(self) -> Recipe:
        """The recipe as the checks look at it: keys naming what a stage makes left empty."""
        return before_run(self.recipe)

    @functools.cached_property
    def data(self) -> data_preflight.Target | None:
        """The data checks' target (its look at the recordings is shared by every check)."""
        r = self.recipe
        if r.data is None:
            return None
        given = {"embedder"} if made_by_run(r, r.data.embed.model) else set()
        if r.synth is not None:  # the recordings are spoken by the run itself
            given.add("recordings")
        target = data_preflight.Target(self.before_run.data, frozenset(given), self.strict)
        if r.synth is not None:
            target.needs = data_preflight.Needs()
        return target

    @functools.cached_property
    def expected(self) -> expected.Expected | None:
        return expected.expected(self.recipe, self.data.needs if self.data else None)


def made_by_stages(recipe: Recipe) -> dict[Path, str]:
    """Every file or folder a stage of this recipe makes that another stage (or a key of the
    recipe) may name, with the stage that makes it."""
    work, made = Path(recipe.work_dir), {}
    if recipe.synth is not None:
        made[work / recipe.synth.out] = "synthesize"
    if builds_embedder(recipe):
        made[tiny_embedder(recipe)] = "speaker_model"
    if recipe.data is not None:
        layout = DatasetLayout.in_work(recipe.data.work)
        made.update({layout.hf: "prepare", layout.nemo_manifest: "prepare"})
    if recipe.codec_finetune is not None:
        made[stages.finetuned_codec(recipe)] = "codec_finetune"
    made[Path(recipe.generator.run_dir)] = "train"
    made.update({work / "export" / "merged": "export", work / "export" / "adapter": "export"})
    return {path.resolve(): stage for path, stage in made.items()}


def before_run(recipe: Recipe) -> Recipe:
    """``recipe`` with every key that names something a stage makes (:func:`made_by_stages`)
    left empty: it does not exist before the run, and the run makes it before it is read."""
    made = made_by_stages(recipe)

    def names_made(value: str) -> bool:
        return bool(value) and Path(value).expanduser().resolve() in made

    def clear(node):
        changes = {}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value):
                if (cleared := clear(value)) is not value:
                    changes[f.name] = cleared
            elif isinstance(value, str) and f.name not in ("work_dir", "run_dir", "work") \
                    and names_made(value):
                changes[f.name] = ""
        return dataclasses.replace(node, **changes) if changes else node

    return clear(recipe)


def _prefixed(findings: list[Finding], prefix: str) -> list[Finding]:
    return [Finding(f"{prefix}{f.line}", f.problem, f.about) for f in findings]


def check_data(t: Target) -> list[Finding]:
    if t.data is None:
        return []
    checks = list(data_preflight.CHECKS)
    if t.recipe.synth is not None:  # no recordings yet: synth's own check looks at it
        checks = [c for c in checks if c not in (data_preflight.check_sources,
                                                 data_preflight.check_coverage)]
    return _prefixed(preflight.run_checks(checks, t.data), "data.")


def check_synth(t: Target) -> list[Finding]:
    """espeak-ng, each voice, and sentences for every voice's tag (what synthesize stops on)."""
    synth = t.recipe.synth
    if synth is None:
        return []
    from kani_adapt.core import espeak
    from kani_adapt.core.errors import ConfigError

    try:
        espeak.require()
    except ConfigError as err:
        return [problem(f"synth: {err}")]
    out = []
    for i, voice in enumerate(synth.voices):
        if not espeak.has_voice(voice.voice):
            out.append(problem(f"synth.voices[{i}].voice: espeak-ng has no voice {voice.voice!r} "
                               "(`espeak-ng --voices` lists them; a variant is written de+m3)"))
        if not synth.sentences.get(voice.tag):
            out.append(problem(f"synth.sentences has no sentences for tag {voice.tag!r} (spoken "
                               f"by synth.voices[{i}]); add synth.sentences.{voice.tag}: [...]"))
    return out


def check_codecs(t: Target) -> list[Finding]:
    r = t.before_run
    out = check_reference("codec", r.codec)
    if r.codec_finetune is not None:
        out += check_reference("codec_finetune.codec", r.codec_finetune.codec)
        out += preflight.device("codec_finetune.device", r.codec_finetune.device)
        slm = r.codec_finetune.slm_dir
        if slm and not Path(slm).expanduser().is_dir():
            out.append(problem(f"codec_finetune.slm_dir: {slm} is not a folder (a local WavLM "
                               "model folder; or leave it out to train without an SLM "
                               "discriminator)"))
    for key, value in (("generator.codec", r.generator.codec), ("eval.codec", r.eval.codec)):
        if value:
            out += check_reference(key, value)
    return out


def check_generator(t: Target) -> list[Finding]:
    r = t.before_run
    out = train_findings(r.generator, "generator", data_made_later=t.recipe.data is not None,
                         codec=False)
    d = r.generator.data
    if t.recipe.data is not None:
        written = (dataset.SPEAKER_EMB, dataset.SPEAKER_EMB_MEAN)
        if d.use_speaker_emb and d.speaker_emb_column not in written:
            out.append(problem(f"generator.data.speaker_emb_column: {d.speaker_emb_column!r} is "
                               f"not a column the prepared dataset has ({', '.join(written)})"))
        clips = r.data.filter
        if d.max_duration < clips.min_seconds or d.min_duration > clips.max_seconds:
            out.append(problem(
                f"generator.data.min_duration..max_duration ({d.min_duration:g}..{d.max_duration:g}"
                f" s) keeps none of the prepared clips ({clips.min_seconds:g}..{clips.max_seconds:g}"
                " s, data.filter.min_seconds..max_seconds): training would have no rows"))
    return out


def check_fertility(t: Target) -> list[Finding]:
    """Step 0: the tags a LoRA recipe would stop on at training because the generator's
    tokenizer spells their script in bytes."""
    return fertility_gate.findings(t.recipe, t.data.needs if t.data else None)


def check_speakers(t: Target) -> list[Finding]:
    """The held-out speakers training takes, and the speakers the eval and samples name, against
    the speakers the training set will hold."""
    seen, r = t.expected, t.recipe
    if seen is None or not seen.speakers:
        return []
    out, names = [], seen.speakers
    held = r.generator.data.val_speakers
    if held and len(names) <= held:
        out.append(problem(
            f"generator.data.val_speakers: {held}, but {seen.source} hold {len(names)} "
            f"speaker(s): training would have none left to train on; add speakers or set "
            f"generator.data.val_speakers={len(names) - 1}"
            + (" (0 with eval.dataset.speakers named, or eval.enabled: false)"
               if len(names) == 1 and r.eval.enabled else "")))
    shown = ", ".join(sorted(names)[:10])
    unknown = sorted(set(r.eval.dataset.speakers or []) - names) if r.eval.enabled else []
    if unknown:
        out.append(problem(f"eval.dataset.speakers: {', '.join(unknown[:5])} not among the "
                           f"speakers of {seen.source} ({shown})"))
    if r.sample.texts and r.sample.speaker and r.sample.speaker not in names:
        out.append(problem(f"sample.speaker: {r.sample.speaker!r} is not among the speakers of "
                           f"{seen.source} ({shown})"))
    return out


def check_texts(t: Target) -> list[Finding]:
    """Texts that spell KaniTTS2's control tokens once normalised (training refuses them)."""
    seen = t.expected
    if seen is None:
        return []
    suspect = {tag: [x for x in texts if CONTROL in x] for tag, texts in seen.texts.items()}
    spelled = [x for texts in expected.normalised(t.recipe, seen, suspect).values()
               for x in texts if re.search(r"<custom_token_\d+>", x)]
    if not spelled:
        return []
    return [problem(f"{len(spelled)} text(s) of {seen.source} spell KaniTTS2 control tokens once "
                    f"normalised ({spelled[0][:60]!r}); training refuses them: remove the "
                    "'<custom_token_N>' strings from the transcripts")]


def check_stage_needs(t: Target) -> list[Finding]:
    """What the eval and sample stages load from the export stage."""
    r, out = t.recipe, []
    if not r.export.merged:
        if r.eval.enabled:
            out.append(problem("export.merged: false, but the eval stage loads the merged "
                               "export; set export.merged: true, or eval.enabled: false"))
        if r.sample.texts:
            out.append(problem("export.merged: false, but the sample stage speaks sample.texts "
                               "with the merged export; set export.merged: true, or remove "
                               "sample.texts"))
    return out


def check_eval(t: Target) -> list[Finding]:
    r = t.before_run
    if not r.eval.enabled:
        return []
    out = eval_findings(r.eval, "eval", codec=False)
    if r.eval.base:
        out += checkpoint("eval.base", r.eval.base, sizes=True)
    return out


def check_prefer(t: Target) -> list[Finding]:
    """The prefer section, where on: its own checks (kani_adapt/preference/preflight.py), less
    what the run makes first (the merged export, the dataset), and what it needs of the run."""
    from kani_adapt.preference.preflight import problems

    r = t.recipe
    if not r.prefer.enabled:
        return []
    out = [problem(f"prefer: {line}") for line in problems(r.prefer, made_by_run=True)]
    out += preflight.model("prefer.reward.asr", str(r.prefer.reward.asr), "Whisper model")
    if r.prefer.reward.similarity > 0 and not made_by_run(r, str(r.prefer.reward.speaker_embedder)):
        out += preflight.model("prefer.reward.speaker_embedder", str(r.prefer.reward.speaker_embedder),
                               "speaker embedder")
    if not r.export.merged:
        out.append(problem("prefer.enabled: true, but the rounds sample from the merged export; "
                           "set export.merged: true"))
    return out


def check_device(t: Target) -> list[Finding]:
    return preflight.device("device", t.recipe.device)


CHECKS = [check_device, check_synth, check_data, check_codecs, check_generator, check_fertility,
          check_texts, check_speakers, check_stage_needs, check_eval, check_prefer]


def findings(recipe: Recipe, strict: bool = False) -> list[Finding]:
    return preflight.run_checks(CHECKS, Target(recipe, strict))
