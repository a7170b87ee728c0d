"""Data engines: the CPU stages (ingest, segment, filter) on the local engine and on a local Ray
with 1 and 2 workers (``--workers``), same corpus, same machine, one run; and what each stage
costs per hour of audio (worker seconds), the figure a plan for a larger run starts from.

    python benchmarks/data_engines.py [--clips 48] [--cpus 2] [--workers 1 2] [--model-stages]

The corpus is espeak-ng speech (three voices, 2-4 s clips). Each engine runs the stages into a
work folder of its own; the figures are the stages' own throughput records (wall clock of the
stage run, and per worker: loading and processing time), so Ray's start-up (once per run) is
reported apart. ``--model-stages`` adds embed (a speaker embedder of the published WavLM
base-plus size, random weights: the cost of the real one), tokenize (NanoCodec's 0.6 kbps
shape, random weights) and DNSMOS on the local engine. Timings are printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data_tools"))

from data_tools.report import throughput  # noqa: E402
from data_tools.config import DataConfig, RayConfig  # noqa: E402
from data_tools.inputs.layouts import SourceConfig  # noqa: E402
from data_tools.stages.align import AlignConfig  # noqa: E402
from data_tools.stages.embed import EmbedConfig  # noqa: E402
from data_tools.stages.filter import FilterConfig  # noqa: E402
from data_tools.stages.ingest import IngestConfig  # noqa: E402
from data_tools.stages.tokenize import TokenizeConfig  # noqa: E402
from data_tools.stages.transcribe import TranscribeConfig  # noqa: E402
from data_tools.runner import run_stage  # noqa: E402

CPU_STAGES = ("ingest", "segment", "filter")
VOICES = ("en", "en-us", "en+f3")
SENTENCES = ("the little boat sailed across the quiet lake",
             "she bought fresh bread at the market this morning",
             "rain is expected over the hills tomorrow afternoon",
             "please close the window before you leave the room")
WAVLM_BASE_PLUS = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072}


def corpus(root: Path, clips: int) -> None:
    from dt_helpers import espeak, with_silence, write

    for i in range(clips):
        text = SENTENCES[i % len(SENTENCES)]
        audio, rate = espeak(text, voice=VOICES[i % 3], speed=130 + 9 * (i % 11))
        write(root / f"s{i % 3}" / f"c{i:03d}.wav", with_silence(audio, rate, 0.3, 0.3, i),
              rate, text)


def config(root: Path, work: str, engine: str = "local", workers: int = 0, **sections):
    return DataConfig(work=str(root / work), engine=engine,
                      ingest=IngestConfig(sources=[SourceConfig(path=str(root / "recordings"))]),
                      transcribe=TranscribeConfig(enabled="off"), align=AlignConfig(enabled="off"),
                      ray=RayConfig(workers=workers), **sections)


def run(cfg, stages, given=None) -> dict[str, dict]:
    for stage in stages:
        run_stage(stage, cfg, given=given)
    return {r["stage"]: r for r in throughput.collect(Path(cfg.work), list(stages))}


def cost(rec: dict) -> str:
    value = rec["worker_s_per_audio_h"]
    return f"{value:.0f}" if value else "-"


def engines(root: Path, cpus: int, workers: list[int]) -> None:
    from data_tools.engines import ray as on_ray

    local = run(config(root, "local"), CPU_STAGES)
    on = {}
    with on_ray.session():
        start = time.monotonic()
        on_ray.connect(RayConfig(num_cpus=cpus, object_store_mb=128))
        print(f"local Ray started in {time.monotonic() - start:.1f} s ({cpus} CPUs)")
        for n in workers:
            on[n] = run(config(root, f"ray{n}", "ray", n), CPU_STAGES)
    first = workers[0]
    heads = " | ".join(f"Ray {n} worker{'s' * (n > 1)} s" for n in workers)
    speedups = " | ".join(f"{n} vs {first}" for n in workers[1:])
    print(f"\n| stage | items | audio h | local s | {heads} | Ray {first} / local | "
          f"{speedups}{' | ' if speedups else ''}worker s per audio h (local) |")
    print("|---" * (6 + 2 * len(workers) - 1) + "|")
    for stage in CPU_STAGES:
        a, ref = local[stage], on[first][stage]
        walls = " | ".join(f"{on[n][stage]['wall_s']:.1f}" for n in workers)
        faster = "".join(f"{ref['wall_s'] / on[n][stage]['wall_s']:.2f}x faster | "
                         for n in workers[1:])
        print(f"| {stage} | {a['items']} | {a['audio_h']:.3f} | {a['wall_s']:.1f} | {walls} | "
              f"{ref['wall_s'] / a['wall_s']:.2f}x | {faster}{cost(a)} |")
    total = {name: sum(r[s]["wall_s"] for s in CPU_STAGES)
             for name, r in [("local", local), *on.items()]}
    walls = " | ".join(f"{total[n]:.1f}" for n in workers)
    faster = "".join(f"{total[first] / total[n]:.2f}x faster | " for n in workers[1:])
    print(f"| all three | | | {total['local']:.1f} | {walls} | "
          f"{total[first] / total['local']:.2f}x | {faster}|")
    breakdown({"local": local, **{f"Ray {n} worker{'s' * (n > 1)}": r for n, r in on.items()}})


def breakdown(runs: dict[str, dict]) -> None:
    """Where each run's wall clock went: loading the stage in its workers, processing (summed
    over workers, and the busiest worker's share), and the rest (scheduling, shipping, waiting
    for a worker process to start)."""
    print("\n| stage | engine | workers | wall s | load s (all workers) | processing s "
          "(all workers) | busiest worker s | rest s |")
    print("|---|---|---|---|---|---|---|---|")
    for stage in CPU_STAGES:
        for name, recs in runs.items():
            r = recs[stage]
            load = sum(w["open_s"] for w in r["per_worker"])
            busy = [w["busy_s"] for w in r["per_worker"]]
            rest = r["wall_s"] - max(busy) - max(w["open_s"] for w in r["per_worker"])
            print(f"| {stage} | {name} | {r['workers']} | {r['wall_s']:.1f} | {load:.1f} | "
                  f"{sum(busy):.1f} | {max(busy):.1f} | {max(rest, 0.0):.1f} |")


def model_stages(root: Path) -> None:
    from kani_adapt.models.speaker import embedder

    embedder.save(embedder.build(seed=0, wavlm=WAVLM_BASE_PLUS), root / "embedder")
    cfg = config(root, "local", embed=EmbedConfig(model=str(root / "embedder"), device="cpu"),
                 tokenize=TokenizeConfig(codec="0.6kbps", device="cpu", batch_seconds=30,
                                         max_batch_size=1))
    recs = run(cfg, ("embed", "tokenize"))
    dnsmos = config(root, "dnsmos", filter=FilterConfig(dnsmos=True, min_dnsmos=0.0))
    run(dnsmos, ("ingest", "segment"))
    recs["filter + DNSMOS"] = run(dnsmos, ("filter",))["filter"]
    print("\n| stage (local engine, CPU) | items | audio h | wall s | load s | "
          "worker s per audio h |")
    print("|---|---|---|---|---|---|")
    for name, r in recs.items():
        load = sum(w["open_s"] for w in r["per_worker"])
        print(f"| {name} | {r['items']} | {r['audio_h']:.3f} | {r['wall_s']:.1f} | {load:.1f} | "
              f"{cost(r)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="Ray worker counts to run, each in turn (the first is the reference)")
    parser.add_argument("--model-stages", action="store_true")
    args = parser.parse_args()
    if min(args.workers) < 1:
        parser.error("--workers: each count must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from kani_adapt.core import console

    console.setup()
    print(f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"python {platform.python_version()}")
    root = Path(tempfile.mkdtemp(prefix="engines-"))
    try:
        corpus(root / "recordings", args.clips)
        engines(root, args.cpus, args.workers)
        if args.model_stages:
            model_stages(root)
        print(f"\nload at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
