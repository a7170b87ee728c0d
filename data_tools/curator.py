"""A kani-adapt data stage as a NeMo Curator ``ProcessingStage`` (nemo-curator 1.4, the
``curator`` extra), for pipelines built with Curator's own stages and executors.

    from data_tools.curator import KaniStage, results, tasks
    stage = KaniStage("segment", cfg)           # a ProcessingStage[AudioTask, AudioTask]
    out = Pipeline(name="kani", stages=[stage]).run(RayActorPoolExecutor(), tasks(utts, cfg))
    kept, rejected = results(out)

It runs the same stage object as the runner and the Ray engine (data_tools/registry.py): its
``open`` once per Curator worker (``setup``), its own ``batches`` and ``process`` over the tasks
Curator hands it, and its outcomes as the runner logs them (``engines.work.log_entry``). An
``AudioTask`` holds one utterance record, with ``audio_filepath`` (Curator's key: the absolute
clip path). Every input comes back: each output utterance as a task, a rejected item as a task
holding its rejection record (``rejected``, as in rejected.jsonl), so a Curator pipeline loses
nothing either. What a stage decides over all items at once (``decide``: duplicates, speaker
outliers, speaking rates) needs every item and stays with the runner, and so do ``ingest``
(it finds its own items) and ``write``.
"""
from __future__ import annotations

from pathlib import Path

from nemo_curator.stages.base import ProcessingStage
from nemo_curator.stages.resources import Resources
from nemo_curator.tasks import AudioTask

from data_tools import registry
from data_tools.engines.work import log_entry
from data_tools.records import Utterance
from data_tools.stages.kit import Context, device_resolved
from kani_adapt.core.errors import ConfigError

PATH_KEY = "audio_filepath"


class KaniStage(ProcessingStage[AudioTask, AudioTask]):
    """One kani-adapt stage, by name, with the data config it runs under."""

    batch_size = 16  # tasks per process_batch call; the stage batches them its own way

    def __init__(self, stage: str, cfg, given: dict | None = None):
        found = registry.get(stage)
        if not found.resumable or found.inputs == ():
            raise ConfigError(f"{stage} cannot run as a Curator stage: it reads the work folder "
                              "itself; run it with data-tools")
        self.stage, self.cfg, self.given = stage, cfg, dict(given or {})
        self.name = f"kani_adapt_{stage}"
        wants = found.resources(cfg)
        self.resources = Resources(cpus=wants.cpus, gpus=0.0 if wants.device in (
            "cpu", "mps", "auto") else 1.0)
        self._open = None

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["id", "audio"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["id"]

    def setup(self, worker_metadata=None) -> None:
        stage = registry.get(self.stage)
        ctx = Context(device_resolved(self.cfg, stage), Path(self.cfg.work),
                      given=dict(self.given), pipeline=registry.pipeline())
        stage.open(ctx)
        self._open = (stage, ctx)

    def process(self, task: AudioTask) -> list[AudioTask]:
        return self.process_batch([task])

    def process_batch(self, tasks: list[AudioTask]) -> list[AudioTask]:
        if self._open is None:
            self.setup()
        stage, ctx = self._open
        items = [Utterance.from_dict(dict(t.data)) for t in tasks]
        outcomes: dict = {}
        for batch in stage.batches(ctx, items):
            outcomes |= stage.process(ctx, batch)
        entry = log_entry(stage.name, items, outcomes)
        out = []
        for task, item in zip(tasks, items):
            result = entry.results[item.id]
            if result["rejected"]:
                out.append(AudioTask(dataset_name=task.dataset_name,
                                     data={"id": item.id, "rejected": result["rejected"]}))
            out += [AudioTask(dataset_name=task.dataset_name,
                              data=_record(utt, ctx.work, result["extra"]))
                    for utt in result["out"]]
        return out


def _record(utt: dict, work: Path, extra: dict) -> dict:
    return {**utt, PATH_KEY: str(Path(work) / utt["audio"]), "extra": extra}


def tasks(utts: list[Utterance], cfg, dataset: str = "kani_adapt") -> list[AudioTask]:
    """Curator tasks of utterances of a work folder (a stage's manifest)."""
    return [AudioTask(dataset_name=dataset, data=_record(u.to_dict(), Path(cfg.work), {}))
            for u in utts]


def results(out: list[AudioTask]) -> tuple[list[Utterance], list[dict]]:
    """(kept utterances, rejection records) of a pipeline's output tasks, ordered by id."""
    kept = [Utterance.from_dict(dict(t.data)) for t in out if "rejected" not in t.data]
    rejected = [dict(t.data["rejected"]) for t in out if "rejected" in t.data]
    return sorted(kept, key=lambda u: u.id), sorted(rejected, key=lambda r: r["id"])
