"""A kani-adapt stage inside a NeMo Curator pipeline (Curator's Ray actor-pool executor on a
local Ray with 2 CPUs and a small object store): the runner's kept clips and rejections."""
import dataclasses
import shutil

import numpy as np
import pytest

from data_tools.config import DataConfig, RayConfig

from data_tools.inputs.layouts import SourceConfig

from data_tools.stages.align import AlignConfig

from data_tools.stages.ingest import IngestConfig
from data_tools.records import read_manifest
from data_tools.records import manifest_path
from data_tools.runner import run_stage
from dt_helpers import good_clip, needs_espeak, with_silence, write
from kani_adapt.core.errors import ConfigError

pytestmark = [pytest.mark.slow, needs_espeak]


def test_segment_runs_as_a_curator_stage_with_the_runners_results(tmp_path):
    from nemo_curator.backends.ray_actor_pool import RayActorPoolExecutor
    from nemo_curator.pipeline import Pipeline

    from data_tools.curator import KaniStage, results, tasks
    from data_tools.engines import ray as on_ray

    rec = tmp_path / "recordings"
    for i in range(5):
        good_clip(rec / "anna" / f"c{i}.wav", i)
    write(rec / "anna" / "quiet.wav", np.zeros(22050 * 2, np.float32), 22050, "silence only")
    long_pause = with_silence(np.zeros(22050, np.float32), 22050, 0.0, 3.0)
    write(rec / "anna" / "hum.wav", long_pause + 1e-4, 22050, "nothing said")
    cfg = DataConfig(work=str(tmp_path / "work"),
                     ingest=IngestConfig(sources=[SourceConfig(path=str(rec))]),
                     align=AlignConfig(enabled="off"), max_rejected_fraction=0.9)
    run_stage("ingest", cfg)
    shutil.copytree(tmp_path / "work", tmp_path / "local")
    want = run_stage("segment", dataclasses.replace(cfg, work=str(tmp_path / "local")))
    assert want.rejected, "the corpus has clips without speech"

    stage = KaniStage("segment", cfg)
    assert stage.resources.gpus == 0 and stage.name == "kani_adapt_segment"
    utts = read_manifest(manifest_path(tmp_path / "work", "ingest"))
    with on_ray.session():
        on_ray.connect(RayConfig(num_cpus=2, object_store_mb=128))  # the executor uses it
        out = Pipeline(name="kani", stages=[stage]).run(
            RayActorPoolExecutor(show_progress=False), tasks(utts, cfg))
    kept, rejected = results(out)

    assert [u.to_dict() for u in kept] == sorted((u.to_dict() for u in want.kept),
                                                 key=lambda d: d["id"])
    assert rejected == sorted(want.rejected, key=lambda r: r["id"])
    assert {r["reason"] for r in rejected} == {"no_speech"}
    for u in kept:  # the clips were cut into the work folder, as the runner cuts them
        assert (tmp_path / "work" / u.audio).stat().st_size == \
            (tmp_path / "local" / u.audio).stat().st_size
    assert {t.data["audio_filepath"] for t in out if "rejected" not in t.data} == \
        {str(tmp_path / "work" / u.audio) for u in kept}


def test_stages_that_read_the_work_folder_themselves_are_refused():
    from data_tools.curator import KaniStage

    for name in ("ingest", "write"):
        with pytest.raises(ConfigError, match=f"{name} cannot run as a Curator stage"):
            KaniStage(name, DataConfig())
