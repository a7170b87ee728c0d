"""What the engines decide without a cluster: blocks, GPUs and workers per stage, the devices a
worker uses, the throughput figures, the CLI switches, the lock, and a recipe that changes
only where its data is prepared."""
import json
import subprocess
import sys

import pytest

from data_tools import registry, runner
from data_tools.report import throughput
from data_tools.cli import build_parser, _config
from data_tools.config import DataConfig, RayConfig, results_part
from data_tools.engines import ray as on_ray
from data_tools.engines.ray_worker import worker_device
from data_tools.engines.work import Unit, block_log, plan_blocks
from kani_adapt.core.errors import ConfigError, DataError


def test_blocks_are_consecutive_whole_batches_about_four_per_worker():
    sizes = [1] * 40
    blocks = plan_blocks(sizes, 256, 2)
    assert len(blocks) == 8 and [i for b in blocks for i in b] == list(range(40))
    assert plan_blocks(sizes, 3, 1) == [[i, i + 1, i + 2] for i in range(0, 39, 3)] + [[39]]
    # a batch larger than a block stays whole, in order
    assert plan_blocks([2, 2, 9, 1, 1], 4, 1) == [[0, 1], [2], [3, 4]]
    assert plan_blocks([], 4, 2) == []


def test_a_block_log_is_named_by_its_items():
    assert block_log(["a", "b"]) == block_log(["a", "b"])
    assert block_log(["a", "b"]) != block_log(["a", "c"]) != block_log(["b", "a"])
    assert block_log(["a"]).startswith("log-block-") and block_log(["a"]).endswith(".jsonl")


def test_model_stages_ask_a_gpu_where_their_device_does():
    assert on_ray.gpus_for("cpu", 8, 1.0, "embed") == 0
    assert on_ray.gpus_for("auto", 0, 1.0, "embed") == 0
    assert on_ray.gpus_for("auto", 4, 0.25, "embed") == 0.25
    assert on_ray.gpus_for("cuda:1", 4, 1.0, "tokenize") == 1.0
    with pytest.raises(ConfigError, match="tokenize: device cuda asks for a GPU.*has none"):
        on_ray.gpus_for("cuda", 0, 1.0, "tokenize")


def test_workers_are_what_the_cluster_holds_at_most_what_was_asked():
    cluster = {"CPU": 16, "GPU": 4}
    assert on_ray.worker_count(0, 1, 0, cluster) == 16
    assert on_ray.worker_count(2, 1, 0, cluster) == 2
    assert on_ray.worker_count(0, 1, 1.0, cluster) == 4
    assert on_ray.worker_count(0, 1, 0.25, cluster) == 16
    assert on_ray.worker_count(0, 1, 1.0, {"CPU": 2, "GPU": 0.5}) == 1  # at least one


def test_a_worker_uses_the_gpu_ray_gave_it():
    assert worker_device("cuda:3", [1]) == "cuda"  # Ray shows it the one GPU it was given
    assert worker_device("auto", [0]) == "cuda"
    assert worker_device("cpu", [0]) == "cpu"
    assert worker_device("auto", []) in ("cpu", "mps")  # this machine has no GPU


def test_stages_declare_pools_for_models_and_tasks_for_the_rest():
    cfg = DataConfig()
    pools = {s.name for s in registry.stages() if s.resources(cfg).pool}
    assert pools == {"transcribe", "embed", "tokenize"}
    cfg.filter.dnsmos = True  # DNSMOS's models load once per worker
    assert registry.get("filter").resources(cfg).pool
    cfg.tokenize.device = "cuda:1"
    assert registry.get("tokenize").resources(cfg).device == "cuda:1"
    assert registry.get("segment").resources(cfg).device == "cpu"


def test_throughput_per_worker_and_per_stage():
    units = [Unit("a:1", 4, 36.0, 2.0, wait_s=0.5, open_s=3.0), Unit("a:1", 4, 36.0, 2.0, 1.5),
             Unit("b:2", 2, 18.0, 1.0, wait_s=0.0)]
    rec = throughput.record("embed", "ray", 4.0, units)
    assert rec["items"] == 10 and rec["workers"] == 2 and rec["items_per_s"] == 2.5
    assert rec["audio_h_per_h"] == 22.5  # 90 s of audio in 4 s of wall clock
    assert rec["worker_s_per_audio_h"] == round((5 + 3) / (90 / 3600), 1)
    a, b = rec["per_worker"]
    assert (a["worker"], a["units"], a["items"], a["open_s"]) == ("a:1", 2, 8, 3.0)
    assert a["items_per_s"] == 2.0 and a["audio_h_per_h"] == 18.0
    assert (a["wait_mean_s"], a["wait_max_s"]) == (1.0, 1.5)
    lines = throughput.section([rec])
    assert "## Throughput" in lines
    assert any(line.startswith("| embed | ray | 2 | 10 |") for line in lines)
    assert any(line.startswith("| embed | b:2 | 1 | 2 |") for line in lines)
    assert throughput.section([]) == []


def test_the_local_engine_records_its_throughput(tmp_path):
    from data_tools.records import Utterance, read_manifest
    from kani_adapt.core import atomic

    atomic.write_jsonl(tmp_path / "ingest" / "manifest.jsonl", [
        Utterance(f"s/c{i}", "missing.wav", "hi", "s", duration=2.0).to_dict() for i in range(3)])
    runner.run_stage("outliers", DataConfig(work=str(tmp_path)),
                     inputs=read_manifest(tmp_path / "ingest" / "manifest.jsonl"))
    rec = json.loads((tmp_path / "outliers" / "throughput.json").read_text())
    assert (rec["stage"], rec["engine"], rec["items"], rec["workers"]) == ("outliers", "local",
                                                                           3, 1)
    assert rec["audio_h"] == round(6 / 3600, 6)
    assert rec["per_worker"][0]["units"] == 3 and rec["per_worker"][0]["wait_max_s"] == 0


def test_engine_and_address_come_from_the_command_line(tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text("work: work\nray:\n  num_cpus: 2\n")
    args = build_parser().parse_args(["prepare", str(config), "--engine", "ray",
                                      "--ray-address", "auto"])
    cfg = _config(args)
    assert (cfg.engine, cfg.ray.address, cfg.ray.num_cpus) == ("ray", "auto", 2)
    args = build_parser().parse_args(["embed", str(config)])
    assert _config(args).engine == "local"  # the default: nothing changes without asking
    for name in registry.names():
        assert _config(build_parser().parse_args([name, str(config), "--engine", "ray"])
                       ).engine == "ray"


def test_ray_spreads_a_stage_itself_so_shards_are_refused():
    with pytest.raises(ConfigError, match="--shard with engine ray.*without --shard"):
        runner.run_stage("tokenize", DataConfig(engine="ray"), (0, 2))


def test_a_bad_engine_or_ray_setting_is_refused_by_the_loader(tmp_path, capsys):
    from data_tools.cli import main

    config = tmp_path / "data.yaml"
    config.write_text("work: work\nengine: spark\nray:\n  block_items: 0\n")
    assert main(["check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "engine" in err and "spark" in err and "block_items" in err


def test_the_work_folder_lock_holds_against_the_ray_engine(tmp_path):
    """A local run holding the folder (another process) refuses a Ray run before Ray starts."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom kani_adapt.core import locks\n"
         "with locks.hold(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DataError, match=rf"in use by another data-tools run \(pid {holder.pid}"):
            runner.run_stage("filter", DataConfig(work=str(tmp_path), engine="ray"))
    finally:
        holder.kill()
        holder.wait()


def test_a_recipe_that_changes_only_the_engine_redoes_nothing(tmp_path):
    from kani_adapt.recipes import runner as recipes
    from kani_adapt.recipes.schema import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("name: r\ngenerator: {model: {init: tiny}}\n"
                    "data: {ingest: {sources: [{path: rec}]}}\n")

    def prepare_config(*overrides):
        stages = recipes.plan(load_recipe(path, list(overrides)), {})
        return next(s.config for s in stages if s.name == "prepare")

    assert load_recipe(path, ["data.engine=ray"]).data.engine == "ray"
    local = prepare_config()
    assert prepare_config("data.engine=ray", "data.ray.address=auto") == local
    assert prepare_config("data.filter.min_snr_db=3") != local
    assert "engine" not in local and "ray" not in local
    assert results_part(DataConfig()) == results_part(DataConfig(engine="ray",
                                                                 ray=RayConfig(workers=8)))


class _SlowRay:
    """A stand-in for the ``ray`` module whose local node misses Ray's start-up wait
    ``fails`` times (as on a busy machine)."""

    def __init__(self, fails: int, error: str = "The current node timed out during startup."):
        self.fails, self.error, self.inits, self.shutdowns = fails, error, 0, 0

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.fails:
            raise Exception(self.error)

    def shutdown(self):
        self.shutdowns += 1


def test_a_local_ray_that_times_out_starting_is_started_again_then_given_up_clearly():
    quiet = {}
    slow = _SlowRay(fails=2)
    on_ray._start_local(slow, RayConfig(), quiet)
    assert (slow.inits, slow.shutdowns) == (3, 2)  # each failed start cleaned up, then it came up
    never = _SlowRay(fails=99)
    with pytest.raises(TimeoutError, match="did not come up in 30 s, 3 times"):
        on_ray._start_local(never, RayConfig(), quiet)
    assert never.inits == on_ray.START_ATTEMPTS
    other = _SlowRay(fails=1, error="bad object_store_memory")
    with pytest.raises(Exception, match="bad object_store_memory"):
        on_ray._start_local(other, RayConfig(), quiet)
    assert other.inits == 1  # only a start-up timeout is tried again
