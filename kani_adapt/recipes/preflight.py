"""What ``kani-adapt check`` prints and ``kani-adapt run`` checks before its first stage: the
data preparation's checks (inputs, models, devices, languages, tokenizer coverage), the codecs,
the generator's base and datasets, the eval stage's checkpoint and scorers, and every device.

Keys are the recipe's (``data.embed.model``, ``generator.trainer.device``). What the run itself
makes before it is used (synthesized recordings, the tiny speaker embedder, the prepared
dataset, the fine-tuned codec) is not looked for. A check is ``check(target) -> [Finding]`` in
``CHECKS``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from data_tools import preflight as data_preflight
from kani_adapt.core import preflight
from kani_adapt.codec.registry import check_reference
from kani_adapt.eval.preflight import checkpoint, eval_findings
from kani_adapt.core.preflight import Finding
from kani_adapt.recipes.schema import Recipe, made_by_run
from kani_adapt.training.preflight import train_findings


@dataclass
class Target:
    recipe: Recipe
    strict: bool = False


def _prefixed(findings: list[Finding], prefix: str) -> list[Finding]:
    return [Finding(f"{prefix}{f.line}", f.problem, f.about) for f in findings]


def check_data(t: Target) -> list[Finding]:
    r = t.recipe
    if r.data is None:
        return []
    given = {"embedder"} if made_by_run(r, r.data.embed.model) else set()
    checks = list(data_preflight.CHECKS)
    if r.synth is not None:  # the recordings are spoken by the run itself
        checks = [c for c in checks if c not in (data_preflight.check_sources,
                                                 data_preflight.check_coverage)]
        given.add("recordings")
    target = data_preflight.Target(r.data, frozenset(given), t.strict)
    if r.synth is not None:
        target.needs = data_preflight.Needs()
    return _prefixed(preflight.run_checks(checks, target), "data.")


def check_codecs(t: Target) -> list[Finding]:
    r = t.recipe
    out = check_reference("codec", r.codec)
    if r.codec_finetune is not None:
        out += check_reference("codec_finetune.codec", r.codec_finetune.codec)
        out += preflight.device("codec_finetune.device", r.codec_finetune.device)
    for key, value in (("generator.codec", r.generator.codec), ("eval.codec", r.eval.codec)):
        if value:
            out += check_reference(key, value)
    return out


def check_generator(t: Target) -> list[Finding]:
    r = t.recipe
    return train_findings(r.generator, "generator", data_made_later=r.data is not None,
                          codec=False)


def check_eval(t: Target) -> list[Finding]:
    r = t.recipe
    if not r.eval.enabled:
        return []
    settings = r.eval
    if made_by_run(r, settings.scorers.speaker_embedder):  # built by the run, before the eval
        settings = replace(settings, scorers=replace(settings.scorers, speaker_embedder=""))
    out = eval_findings(settings, "eval", codec=False)
    if r.eval.base:
        out += checkpoint("eval.base", r.eval.base, sizes=True)
    return out


def check_device(t: Target) -> list[Finding]:
    return preflight.device("device", t.recipe.device)


def check_fertility(t: Target) -> list[Finding]:
    """Step 0: the tags a LoRA recipe would stop on because their script falls back to bytes
    (known once the filter stage has written its figures)."""
    from kani_adapt.recipes import fertility_gate

    return [preflight.problem(line, "fertility") for line in fertility_gate.problems(t.recipe)]


CHECKS = [check_device, check_data, check_codecs, check_generator, check_eval, check_fertility]


def findings(recipe: Recipe, strict: bool = False) -> list[Finding]:
    return preflight.run_checks(CHECKS, Target(recipe, strict))
