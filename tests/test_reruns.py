"""A rerun redoes only what changed and loses nothing a person did.

The recipe's stages are replaced by small writers that behave like the real ones where it
matters here: each writes files whose bytes follow its own settings (the codec archive its
steps, the checkpoint its learning rate), a codec archive carries the time of saving in its tar
headers as NeMo's does, a training run writes TensorBoard events with wall times, and the eval
stage writes a real eval folder (espeak-ng speech) that a real listening test serves.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kani_adapt.recipes import preflight, runner, stages
from kani_adapt.recipes.schema import load_recipe

ALL = ["codec_check", "codec_finetune", "train", "export", "eval", "sample"]


@pytest.fixture(scope="session")
def spoken_eval(tmp_path_factory):
    """An eval folder of espeak-ng speech, as run_eval lays it out (built once)."""
    from tests.listen.conftest import synthetic_eval

    return synthetic_eval(tmp_path_factory.mktemp("spoken-eval"))


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A prepared dataset, a recipe over it, and stages that record when they run."""
    data = tmp_path / "data" / "dataset"
    (data / "hf").mkdir(parents=True)
    (data / "hf" / "data-00000-of-00001.arrow").write_bytes(b"rows of codes" * 100)
    (data / "text_frontend.json").write_text("{}\n")
    rng = np.random.default_rng(0)
    lines = []
    for k in range(2):
        wav = data / f"clip{k}.wav"
        sf.write(wav, rng.uniform(-0.1, 0.1, 22050), 22050)
        lines.append(json.dumps({"audio_filepath": str(wav), "duration": 1.0, "speaker": f"s{k}"}))
    (data / "nemo_manifest.jsonl").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\nwork_dir: {tmp_path / 'work'}\ncodec: base-codec\ndataset: {data / 'hf'}\n"
        "codec_check: {max_clips: 12}\n"
        f"codec_finetune: {{mode: decoder, discriminators: [], max_steps: 3, val_every: 3,"
        f" train_manifest: {data / 'nemo_manifest.jsonl'}}}\n"
        "generator:\n  model: {init: tiny}\n  optim: {lr: 0.005}\n"
        "  data: {token_budget: 600, val_speakers: 1, num_workers: 0}\n"
        "export: {merged: true, adapter: false}\n"
        "sample: {texts: [hello]}\n")
    monkeypatch.setattr(preflight, "CHECKS", [])  # "base-codec" is a name, not a file
    ran: list[str] = []
    fakes = Fakes(ran)
    for name in ("codec_check", "codec_finetune", "train", "export", "sample"):
        monkeypatch.setattr(stages, name, getattr(fakes, name))
    monkeypatch.setattr(runner, "evaluate", fakes.evaluate)
    return World(tmp_path, recipe, data, ran, fakes)


class World:
    def __init__(self, root, recipe, data, ran, fakes):
        self.root, self.recipe, self.data, self.ran, self.fakes = root, recipe, data, ran, fakes
        self.work = root / "work"
        self.lines: list[str] = []

    def run(self, *overrides: str) -> list[str]:
        """The stages that ran."""
        self.ran.clear()
        self.lines = []
        runner.run_recipe(load_recipe(self.recipe, list(overrides)), log=self.lines.append)
        return list(self.ran)

    def state(self) -> dict:
        return json.loads((self.work / runner.STATE).read_text())


class Fakes:
    def __init__(self, ran: list[str]):
        self.ran = ran
        self.spoken_eval: Path | None = None  # the eval stage writes a copy of it, else eval.json alone
        self.saves = 0

    def codec_check(self, recipe, codec):
        self.ran.append("codec_check")
        out = Path(recipe.work_dir) / "codec_check" / "codec_check.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"checked {recipe.codec_check.max_clips} clips\n")
        return {"report": str(out)}

    def codec_finetune(self, recipe):
        """A .nemo archive whose members follow max_steps; its tar headers carry the time."""
        self.ran.append("codec_finetune")
        out = stages.finetuned_codec(recipe)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.saves += 1
        with tarfile.open(out, "w:") as tar:
            for name, data in (("model_config.yaml", b"sample_rate: 22050\n"),
                               ("model_weights.ckpt", f"steps {recipe.codec_finetune.max_steps}".encode())):
                info = tarfile.TarInfo(f"./{name}")
                info.size, info.mtime = len(data), time.time() + self.saves
                tar.addfile(info, io.BytesIO(data))
        return {"codec": str(out)}

    def train(self, cfg):
        self.ran.append("train")
        run = Path(cfg.run_dir)
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run / "checkpoints" / "last.ckpt").write_text(f"weights trained at lr {cfg.optim.lr}")
        (run / "data_stats.json").write_text(json.dumps({"val_speakers": ["s1"]}))
        (run / "tb").mkdir(exist_ok=True)
        (run / "tb" / f"events.{time.time_ns()}").write_text("wall times")
        return {"run_dir": str(run), "steps": 1}

    def export(self, recipe):
        self.ran.append("export")
        run, merged = Path(recipe.generator.run_dir), Path(recipe.work_dir) / "export" / "merged"
        merged.mkdir(parents=True, exist_ok=True)
        (merged / "model.safetensors").write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
        return {"merged": str(merged)}

    def evaluate(self, recipe, settings, done):
        self.ran.append("eval")
        work = Path(recipe.work_dir)
        out = work / "eval"
        if self.spoken_eval is not None:  # written anew: new files, new times
            shutil.copytree(self.spoken_eval, out, copy_function=shutil.copy, dirs_exist_ok=True)
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "eval.json").write_text(json.dumps({"resamples": settings.resamples}))
        return {"report": str(out / "eval.md"), "json": str(out / "eval.json")}

    def sample(self, recipe, codec, merged):
        self.ran.append("sample")
        out = Path(recipe.work_dir) / "samples"
        out.mkdir(parents=True, exist_ok=True)
        (out / "sample_0.wav").write_bytes(Path(merged, "model.safetensors").read_bytes())
        return {"samples": [str(out / "sample_0.wav")]}


def test_a_second_run_with_nothing_changed_runs_nothing(world):
    assert world.run() == ALL
    assert world.run() == []
    assert all(line.endswith("skipped: same settings and inputs as its last run")
               for line in world.lines), world.lines
    assert {s["why"] for s in world.state().values()} == {
        "skipped: same settings and inputs as its last run"}


def test_a_report_only_option_reruns_only_its_stage(world):
    world.run()
    assert world.run("codec_check.max_clips=6") == ["codec_check"]
    state = world.state()
    assert state["codec_check"]["why"] == "running: settings changed: codec_check.max_clips (12 -> 6)"
    assert "checked 6 clips" in (world.work / "codec_check" / "codec_check.md").read_text()
    assert all(state[s]["why"].startswith("skipped") for s in ALL if s != "codec_check")
    assert state["codec_check"]["settings"]["codec_check.max_clips"] == 6


def test_a_training_option_reruns_training_and_what_follows(world):
    world.run()
    assert world.run("generator.optim.lr=0.001") == ["train", "export", "eval", "sample"]
    state = world.state()
    assert state["train"]["why"] == "running: settings changed: generator.optim.lr (0.005 -> 0.001)"
    assert state["export"]["why"] == "running: input changed: generator"
    assert state["eval"]["why"] == "running: input changed: export/merged"
    assert state["train"]["output"] == "changed"


def test_an_identical_re_output_stops_the_cascade_there(world):
    world.run()
    before = (world.work / "codec" / "finetuned.nemo").read_bytes()
    # val_every changes when the codec is validated, not what it learns: the archive comes out
    # with other bytes (its headers' times) and the same members.
    assert world.run("codec_finetune.val_every=1") == ["codec_finetune"]
    assert (world.work / "codec" / "finetuned.nemo").read_bytes() != before
    state = world.state()
    assert state["codec_finetune"]["output"] == "identical"
    assert any("its output is identical to its last run's" in line for line in world.lines)
    assert state["train"]["why"] == "skipped: same settings and inputs as its last run"
    # what it learns changes: everything that reads the codec runs again
    assert world.run("codec_finetune.max_steps=4") == ["codec_finetune", "train", "eval", "sample"]
    assert world.state()["train"]["why"] == "running: input changed: codec/finetuned.nemo"


def test_a_file_rewritten_with_its_old_size_and_time_is_read_again(world):
    world.run()
    arrow = world.data / "hf" / "data-00000-of-00001.arrow"
    stat = arrow.stat()
    arrow.write_bytes(b"ROWS OF CODES" * 100)  # same length; its time set back, as cp -p would
    os.utime(arrow, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert arrow.stat().st_size == stat.st_size and arrow.stat().st_mtime_ns == stat.st_mtime_ns
    # training learns the same from it here, so its export is not redone
    assert world.run() == ["train", "eval", "sample"]
    assert world.state()["train"]["why"] == f"running: input changed: {world.data / 'hf'}"


def test_a_touched_or_copied_input_is_read_again_and_reruns_nothing(world):
    world.run()
    os.utime(world.data / "hf" / "data-00000-of-00001.arrow")  # touch
    clip, copy = world.data / "clip0.wav", world.data / "clip0.copy"
    shutil.copy2(clip, copy)
    os.replace(copy, clip)  # the same bytes under a new inode and change time
    assert world.run() == []
    assert all(s["why"].startswith("skipped") for s in world.state().values())


def test_a_clip_the_manifest_lists_is_part_of_what_reads_it(world):
    world.run()
    sf.write(world.data / "clip1.wav", np.zeros(22050), 22050)
    assert world.run() == ["codec_check", "codec_finetune"]  # the same codec came out


def test_an_interrupted_stage_resumes_and_a_changed_one_starts_over(world, monkeypatch):
    world.run()
    train = world.fakes.train

    def dies(cfg):
        Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.run_dir) / "partial").write_text("half a run")
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "train", dies)
    with pytest.raises(KeyboardInterrupt):
        world.run("generator.optim.lr=0.001")
    assert world.state()["train"]["status"] == "started"
    monkeypatch.setattr(stages, "train", train)
    assert world.run("generator.optim.lr=0.001")[0] == "train"
    assert "[train] resuming an interrupted run" in world.lines
    assert (world.work / "generator" / "partial").is_file()  # resumed where it was, not cleared
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(stages, "train", dies)
        world.run("generator.optim.lr=0.002")
    monkeypatch.setattr(stages, "train", train)
    world.run("generator.optim.lr=0.003")
    assert world.state()["train"]["why"].startswith("starting over: settings changed: "
                                                    "generator.optim.lr (0.002 -> 0.003)")
    assert not (world.work / "generator" / "partial").exists()


def test_stages_recorded_by_an_earlier_version_are_not_redone(world):
    world.run()
    recipe = load_recipe(world.recipe)
    chain, state = "", world.state()
    for stage in runner.plan(recipe, {}):  # the records an earlier kani-adapt wrote
        chain = runner.legacy_hash(stage.config, chain)
        state[stage.name] = {"hash": chain, "status": "done", "outputs": state[stage.name]["outputs"]}
    (world.work / runner.STATE).write_text(json.dumps(state))
    assert world.run() == []
    assert all("recorded by an earlier kani-adapt" in s["why"] for s in world.state().values())
    assert world.run("codec_check.max_clips=6") == ["codec_check"]  # settings recorded now


def test_the_digests_are_cached_and_read_once(world):
    from kani_adapt.recipes.contents import SETTLE_NS

    world.run()
    stages_now = runner.plan(load_recipe(world.recipe), {})
    a_tick_later = runner.Digests(world.work, clock=lambda: time.time_ns() + SETTLE_NS + 10**9)
    for stage in stages_now:  # files read right after they were written are read once more
        runner.read_inputs(stage, a_tick_later)
    a_tick_later.save()
    digests = runner.Digests(world.work)
    for stage in stages_now:
        runner.read_inputs(stage, digests)
    assert a_tick_later.read_files > 0 and digests.read_files == 0  # known by size, times, inode


def _answer_everything(eval_dir: Path, listeners=("anna", "ben")) -> int:
    """Every trial of each listener answered through the listening app (the server's calls,
    without the sockets); the judgements stored."""
    from kani_adapt.listen.design import PlanSettings
    from kani_adapt.listen.material import load_material
    from kani_adapt.listen.playback import Playback
    from kani_adapt.listen.server import App
    from kani_adapt.listen.store import FILE, Store
    from tests.listen.served import valid

    material = load_material([eval_dir])
    store = Store(eval_dir / FILE, material.fingerprint())
    app = App(material, store, Playback(material), PlanSettings())
    for name in listeners:
        listener = store.add_listener(name)
        state = app.state(listener)
        while state.get("trial"):
            state = app.answer(listener, {"trial": state["trial"]["id"],
                                          "answer": valid(state["trial"]), "elapsed_ms": 900})
    return len(store.judgements())


@pytest.mark.slow
def test_an_eval_run_again_under_a_listening_test_keeps_every_judgement(world, spoken_eval, capsys):
    from kani_adapt.cli.main import main
    from kani_adapt.listen.material import load_material
    from kani_adapt.listen.store import FILE, Store

    world.fakes.spoken_eval = spoken_eval
    world.run()
    judged = _answer_everything(world.work / "eval")
    (world.work / "eval" / "notes.md").write_text("listener-2 wore the wrong headphones\n")
    assert judged > 20
    assert world.run("eval.resamples=50") == ["eval"]
    [kept] = list(world.work.glob("eval.kept-*"))
    line = next(line for line in world.lines if "moved aside" in line)
    assert line.startswith("[eval] eval/ held what people did (listening.sqlite, ") and str(kept) in line
    assert f"{judged} judgements from 2 listeners" in line and "notes.md" in line
    assert world.state()["eval"]["kept"] == [str(kept)]
    assert (kept / "notes.md").read_text() == "listener-2 wore the wrong headphones\n"
    # the ratings are read where they went, with the clips they judged
    assert len(Store(kept / FILE, load_material([kept]).fingerprint()).judgements()) == judged
    capsys.readouterr()
    assert main(["listen", str(kept), "--results", "--keep-all", "--resamples", "20"]) == 0
    assert json.loads((kept / "listening.json").read_text())["judgements"] == judged
    # the new eval holds no ratings, and a test over it starts afresh
    assert not (world.work / "eval" / FILE).exists()
    assert _answer_everything(world.work / "eval", ("cleo",)) > 0
    world.run("eval.resamples=60")
    assert len(list(world.work.glob("eval.kept-*"))) == 2  # each eval's ratings apart
    assert len(Store(kept / FILE, load_material([kept]).fingerprint()).judgements()) == judged


def test_ratings_in_the_eval_folder_are_moved_aside_not_deleted(world):
    from kani_adapt.listen.design import Trial
    from kani_adapt.listen.store import FILE, Store, tally

    world.run()
    store = Store(world.work / "eval" / FILE, "the clips of the first eval")
    for name in ("anna", "ben"):
        listener = store.add_listener(name)
        trials = store.ensure_plan(listener, lambda counts: [Trial("ab", f"i{k}", ("merged", "base"))
                                                              for k in range(3)])
        for t in trials:
            store.record(listener, t.id, [("merged", "base", "a")], 900)
    assert world.run("eval.resamples=50") == ["eval"]
    [kept] = world.work.glob("eval.kept-*")
    assert tally(kept / FILE) == (2, 6) and (kept / "eval.json").is_file()
    assert any(f"6 judgements from 2 listeners" in line for line in world.lines)
    assert not (world.work / "eval" / FILE).exists()  # the new eval's folder starts clean
    assert world.run("eval.resamples=60") == ["eval"]  # nothing a person did: replaced
    assert list(world.work.glob("eval.kept-*")) == [kept]
    assert world.state()["eval"]["kept"] == [str(kept)]


@pytest.mark.slow
def test_an_eval_is_not_moved_from_under_a_serving_listening_test(world, spoken_eval):
    from kani_adapt.core.errors import ConfigError
    from kani_adapt.listen.store import FILE
    from tests.listen.served import started

    world.fakes.spoken_eval = spoken_eval
    world.run()
    with started(world.work / "eval") as (links, lines, proc):
        assert links, lines
        with pytest.raises(ConfigError, match=r"in use by another kani-adapt listen"):
            world.run("eval.resamples=50")
        assert (world.work / "eval" / FILE).is_file() and not list(world.work.glob("eval.kept-*"))
    assert world.run("eval.resamples=50") == ["eval"]  # once it stopped
    assert (next(world.work.glob("eval.kept-*")) / FILE).is_file()


def test_kani_adapt_eval_sets_a_listened_folder_aside_before_writing(tmp_path, monkeypatch, caplog):
    from kani_adapt.eval import evaluate

    out = tmp_path / "eval"
    out.mkdir()
    (out / "eval.json").write_text("{}")
    (out / "listening.sqlite").write_bytes(b"ratings")
    written = []
    monkeypatch.setattr(evaluate, "_run_eval", lambda ckpt, items, cfg, o, *rest: written.append(
        sorted(p.name for p in Path(o).iterdir()) if Path(o).exists() else []))
    evaluate.run_eval("ckpt", [], None, out)
    [kept] = list(tmp_path.glob("eval.kept-*"))
    assert (kept / "listening.sqlite").read_bytes() == b"ratings" and written == [[]]
    assert f"moved aside to {kept}" in caplog.text
    evaluate.run_eval("ckpt", [], None, out)  # nothing a person did there: written in place
    assert len(list(tmp_path.glob("eval.kept-*"))) == 1


def test_the_files_a_stage_reads_are_the_local_paths_its_settings_name(tmp_path):
    from kani_adapt.recipes.reruns import flatten, local_paths

    for name in ("rec/de", "rec/sc", "work/data", "run"):
        (tmp_path / name).mkdir(parents=True)
    settings = {"data": {"ingest": {"sources": [{"path": str(tmp_path / "rec/de"), "tag": "de"},
                                                {"path": str(tmp_path / "rec/sc"), "tag": "sc"}]},
                         "work": str(tmp_path / "work/data"), "embed": {"model": "org/embedder"},
                         "missing": str(tmp_path / "gone"), "relative": "rec/de"},
                "eval.dataset.from_run": str(tmp_path / "run")}
    flat = flatten(settings)
    assert flat["data.ingest.sources"][1]["tag"] == "sc" and flat["data.embed.model"] == "org/embedder"
    assert local_paths(flat, [tmp_path / "work"], ("eval.dataset.from_run",)) == [
        tmp_path / "rec/de", tmp_path / "rec/sc"]
    assert tmp_path / "run" in local_paths(flat, [])
