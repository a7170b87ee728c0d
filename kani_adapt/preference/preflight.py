"""What ``kani-adapt prefer`` checks before any compute, beyond the config's own ranges: the
policy and dataset open, the recogniser is multilingual where the prompts are not English
(an English-only one on another language hears nothing and rewards silence), the voice pool
holds the voices each text is sampled in, the prompts read, and a listening test named for
listeners' pairs has its ratings and its clips' codes. One line per problem."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.errors import KaniAdaptError
from kani_adapt.preference.config import PreferConfig


class _NotYet(Exception):
    """The dataset a recipe's run will make."""


def problems(cfg: PreferConfig, made_by_run: bool = False) -> list[str]:
    """One line per problem. ``made_by_run``: a recipe's prefer stage, checked before the run
    that makes its policy and dataset; what is not there yet is not checked."""
    from kani_adapt import dataset
    from kani_adapt.preference import prompts

    found = []
    policy = Path(str(cfg.policy))
    if policy.exists() and not (policy / "config.json").is_file():
        found.append(f"policy {policy}: no config.json; give the supervised model's merged export")
    language = (cfg.prompts.tag or cfg.prompts.language).split("_")[0]
    asr = Path(str(cfg.reward.asr))
    if language != "en" and (asr / "generation_config.json").is_file():
        import json

        if not json.loads((asr / "generation_config.json").read_text(encoding="utf-8")).get("lang_to_id"):
            found.append(f"reward.asr {asr}: an English-only recogniser (no lang_to_id) for "
                         f"{language} prompts; use a multilingual Whisper")
    try:
        if made_by_run and not Path(str(cfg.dataset)).exists():
            raise _NotYet
        table = dataset.read(cfg.dataset)
        voices = len(set(dataset.speakers(table)))
        has_voices = dataset.SPEAKER_EMB_MEAN in table.column_names
        pool = voices - cfg.sample.eval_speakers
        if cfg.reward.similarity > 0 and not has_voices:
            found.append(f"reward.similarity {cfg.reward.similarity}: {cfg.dataset} has no speaker "
                         "embeddings, so no rollout is given a voice to match; set it to 0")
        if has_voices and cfg.sample.speakers_per_text > pool:
            found.append(f"sample.speakers_per_text {cfg.sample.speakers_per_text} is more than the "
                         f"{pool} voice(s) left for training ({voices} in {cfg.dataset}, "
                         f"sample.eval_speakers {cfg.sample.eval_speakers} held out)")
    except _NotYet:
        pass
    except KaniAdaptError as err:
        found.append(f"dataset: {err}")
    found += _human(cfg)
    try:
        tag = cfg.prompts.tag or cfg.prompts.language
        (prompts.read_file(cfg.prompts.file, tag) if cfg.prompts.file
         else prompts.built_in(cfg.prompts.language, tag))
    except KaniAdaptError as err:
        found.append(str(err))
    return found


def _human(cfg: PreferConfig) -> list[str]:
    """The listening test of ``pairs.human``: its ratings in the first folder, codes in each."""
    from kani_adapt.eval import spoken
    from kani_adapt.listen.store import FILE

    found = []
    for k, folder in enumerate(Path(f) for f in cfg.pairs.human):
        if not folder.is_dir():
            found.append(f"pairs.human {folder}: no such folder (give the eval folders the listening "
                         "test was served over, as given to `kani-adapt listen`)")
            continue
        if k == 0 and not (folder / FILE).is_file():
            found.append(f"pairs.human {folder}: no listening test's ratings ({FILE}) here; the first "
                         "folder is the one `kani-adapt listen` served first")
        if not (folder / spoken.FILE).is_file():
            found.append(f"pairs.human {folder}: no {spoken.FILE} (the clips' codes); evaluate it "
                         "again with this version of kani-adapt, then hold the listening test")
    return found
