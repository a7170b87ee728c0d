"""Export a training run (reads only the run directory): adapter + card, or merged checkpoint."""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from kani_adapt.config import load as config_io
from kani_adapt.text import frontend
from kani_adapt.core.atomic import write_folder
from kani_adapt.core.errors import CheckpointError, DataError
from kani_adapt.core.locks import hold_output
from kani_adapt.models.generator.bundle import Generator
from kani_adapt.models.generator.checkpoint import (read_layout, read_sampling, save_checkpoint,
                                                 write_layout)
from kani_adapt.trainer.resume import pick_checkpoint
from kani_adapt.core.untrusted import md, md_code
from kani_adapt.training import lora
from kani_adapt.training import run as runs
from kani_adapt.training.config import TrainConfig


def load_run(run_dir: Path):
    """The trained network of a run (a PeftModel in LoRA mode), its tokenizer and config."""
    cfg = config_io.load_config(TrainConfig, run_dir / "config.yaml")
    ckpt, checkpoint = pick_checkpoint(run_dir / "checkpoints", "export")  # weights_only, newest intact
    if ckpt is None:
        raise CheckpointError(f"{run_dir}: no checkpoints/{runs.LAST}; train first")
    model, tokenizer = runs.rebuild_model(run_dir)
    net = lora.apply_lora(model, cfg.lora) if cfg.mode == "lora" else model
    state = checkpoint["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()}, strict=True)
    return net.eval(), tokenizer, cfg


def export_run(run_dir: Path, out: Path, *, merge: bool = False, dtype: str = "bf16",
               listening: Path | None = None):
    """Write the run's adapter (or merged checkpoint) to ``out``; one export per output folder.
    ``listening``: a listening.json (``kani-adapt listen --results``) for the adapter card."""
    with hold_output(Path(out), "kani-adapt export"):
        return _export_run(Path(run_dir), Path(out), merge, dtype, listening)


def _export_run(run_dir: Path, out: Path, merge: bool, dtype: str, listening: Path | None):
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    if listening is not None and not Path(listening).is_file():
        raise DataError(f"{listening}: no such listening results; write them with "
                        "`kani-adapt listen EVAL_DIR --results`")
    net, tokenizer, cfg = load_run(run_dir)
    stats = _read_json(run_dir / "data_stats.json")
    if cfg.mode == "lora" and not merge:
        write_folder(out, lambda tmp: _write_adapter(net, cfg, stats, run_dir, tmp, out, listening))
        return out, "PEFT adapter"
    final = lora.merge(net) if cfg.mode == "lora" else net
    # the sampling values of the checkpoint training started from (run_dir/base keeps them)
    generator = Generator(final, tokenizer, text_frontend=frontend.read(run_dir),
                          text_layout=read_layout(run_dir), sampling=read_sampling(run_dir / "base"))
    save_checkpoint(generator, out, dtype=dtype, language_tags=stats.get("tags", []))
    return out, "full checkpoint in the official layout"


def base_reference(init: str) -> str | None:
    """The base as training resolved it: a hub id as given, a local KaniTTS2 checkpoint by its
    absolute path; None where the base exists only inside the run (a size built at random, a
    plain LFM2 converted at the start), which the export then writes beside the adapter."""
    from kani_adapt.models.generator import sizes

    if init in sizes.SIZES:
        return None
    from kani_adapt.core import hub
    from kani_adapt.core.model_files import read_json_object
    from kani_adapt.models.generator.checkpoint import resolve

    folder = resolve(init)  # the cached or local folder training loaded
    if not read_json_object(folder / "config.json").get("use_learnable_rope"):
        return None
    return init if hub.is_hub_id(init) else str(Path(init).expanduser().resolve())


BASE_FOLDER = "base"  # inside an adapter folder, where the base exists only in the run


def _write_adapter(net, cfg: TrainConfig, stats: dict, run_dir: Path, tmp: Path,
                   final: Path, listening: Path | None = None) -> None:
    from kani_adapt.listen.results import card_section

    base = base_reference(cfg.model.init)
    if base is None:  # the base training started from, rebuilt as it was (seeded)
        rebuilt = runs.build_model(cfg)
        save_checkpoint(dataclasses.replace(rebuilt, sampling=read_sampling(run_dir / "base")),
                        tmp / BASE_FOLDER, dtype="fp32")
    where = base or str(Path(final).resolve() / BASE_FOLDER)
    net.peft_config["default"].base_model_name_or_path = where
    lora.save_adapter(net, cfg.lora, tmp)
    metrics = _read_json(run_dir / "metrics.json")
    front = frontend.read(run_dir)
    if front is not None:
        frontend.write(tmp, front, stats.get("tags", []))
    write_layout(tmp, read_layout(run_dir))
    (tmp / "README.md").write_text(adapter_card(cfg, stats, metrics, where, serving(net, cfg),
                                                card_section(listening) if listening else "", front,
                                                folder=final))


def serving(net, cfg: TrainConfig) -> list:
    """What vLLM, SGLang and llama.cpp make of the adapter (kani_adapt/training/servability.py)."""
    from kani_adapt.training import servability

    full = [n for n, _ in net.named_parameters() if "modules_to_save" in n]
    extras = lora.extra_names_of(cfg.lora)
    return servability.verdicts(lora.PRESETS[cfg.lora.targets], full, extras, lora.rows_of(cfg.lora))


NO_LISTENING = """## Listening test

None yet: serve the eval to listeners with `kani-adapt listen EVAL_DIR`, then
`kani-adapt listen EVAL_DIR --results`, and export again with `--listening EVAL_DIR/listening.json`.
"""


def _layout_line(cfg: TrainConfig) -> str:
    layout = cfg.data.text_layout()
    if not layout.enabled:
        return "as written (no copies)"
    return (f"repeated: a text of fewer than {layout.below} text tokens is preceded by copies of "
            f"its human turn up to about {layout.target} tokens (at most {layout.most} in all; "
            "`text_layout.json`). `kani-adapt generate` does it itself; the official runtime "
            "does not (its prompts are plain)")


def portable_base(base: str, folder: Path | None) -> str:
    """The card's ``base_model``: a hub id (or a size) as given; a local folder as a path relative
    to the adapter's ``folder`` (``./base`` beside it), which moves with the two folders."""
    from kani_adapt.core import hub

    if folder is None or not Path(base).is_absolute() or hub.is_hub_id(base):
        return base
    relative = Path(os.path.relpath(Path(base).resolve(), Path(folder).resolve())).as_posix()
    return relative if relative.startswith("../") else f"./{relative}"


def adapter_card(cfg: TrainConfig, stats: dict, metrics: dict, base: str | None = None,
                 served: list | None = None, listening: str = "",
                 text_front: frontend.Frontend | None = None, folder: Path | None = None) -> str:
    """The adapter's README.md; ``folder``: where it is exported (a local base is named relative
    to it, its absolute path said in the text)."""
    from kani_adapt.config.defaults import NANOCODEC_HUB_ID
    from kani_adapt.training import servability

    local = base or cfg.model.init
    base = portable_base(local, folder)
    where = f" (from this folder; {md_code(local)} where it was exported)" if base != local else ""
    codec = cfg.codec or NANOCODEC_HUB_ID
    extras = lora.extra_names_of(cfg.lora)
    tags = stats.get("tags", [])  # from the dataset: text, never markup (nor YAML)
    shown_tags = ", ".join(map(md, tags))
    m = metrics.get("metrics", {})
    val = {k: v for k, v in m.items() if k.startswith("val")}
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(val.items())) or "| (none) | |"
    front = "\n".join([
        "---", f"base_model: {base}", "library_name: peft",
        "pipeline_tag: text-to-speech", f"license: {licence_id(cfg, stats)}",
        "tags: " + json.dumps(["kani-tts-2", "lora", *tags]),
        "---",
    ])
    return f"""{front}

# KaniTTS2 LoRA adapter{': ' + shown_tags if tags else ''}

LoRA adapter for the KaniTTS2 generator `{base}`{where}, trained with kani-adapt (`model.init`:
`{cfg.model.init}`). The generator writes NanoCodec codes; they are decoded to speech by the
codec `{codec}`{' (fine-tuned with this run: use it, not the released codec)' if cfg.codec and cfg.codec != NANOCODEC_HUB_ID else ''}.

| | |
|---|---|
| language/accent tags | {shown_tags or 'none'} |
| training data | {stats.get('train_hours', 0):.2f} h, {stats.get('train_speakers', '?')} speakers |
| held-out validation speakers | {', '.join(map(md, stats.get('val_speakers', []))) or 'none'} |
| steps | {metrics.get('steps', '?')} |
| repeated frames | {_repeats(cfg)} |
| text frontend | {frontend.describe(text_front) if text_front else 'not recorded (texts used as stored)'} |
| short texts | {_layout_line(cfg)} |
| LoRA | r={cfg.lora.r}, alpha={cfg.lora.alpha}, targets={cfg.lora.targets}, rsLoRA={cfg.lora.rslora} |
| licence | {licence_row(cfg, stats)} |

## Final validation metrics

| metric | value |
|---|---|
{rows}

{listening or NO_LISTENING}
## Use

The official KaniTTS2 runtime reads full checkpoints only: merge first with
`kani-adapt export RUN_DIR --out DIR --merge`, or load the adapter onto the official class with
PEFT (`pip install kani-tts-2 peft`; `adapter` is this folder):

```python
from pathlib import Path
from peft import PeftModel
from kani_tts.model import KaniTTS2ForCausalLM

adapter = Path("THIS_FOLDER")
base = KaniTTS2ForCausalLM.from_pretrained({_base_expr(base)})
model = PeftModel.from_pretrained(base, str(adapter)).eval()
```
{_extras_note(extras)}
Texts are read through the kani-adapt text frontend before tokenizing (numbers, dates and
symbols spelled out; `text_frontend.json` in this folder). `kani-adapt generate` does it
itself; with the official runtime, normalise first:

```python
from kani_adapt import normalize
text = normalize("Am 3. Mai um 14:30", "de")  # "Am dritten Mai um vierzehn Uhr dreißig"
```

{SERVING}

{servability.markdown(served) if served else 'Not assessed.'}"""


def _data_licences(stats: dict) -> list[dict]:
    return [s for s in stats.get("sources", []) if isinstance(s, dict)]


def licence_id(cfg: TrainConfig, stats: dict) -> str:
    """The card's ``license:``: ``generator.licence``; left unspecified, the training data's
    when its packaged contributions all carry the same one (a Hub licence id, never markup)."""
    ids = {str(s.get("license", "")) for s in _data_licences(stats)}
    if cfg.licence == "unspecified" and len(ids) == 1 and re.fullmatch(r"[a-z0-9.-]+", *ids):
        return ids.pop()
    return cfg.licence


def licence_row(cfg: TrainConfig, stats: dict) -> str:
    """The licence, and each packaged contribution the data came from with its own (escaped:
    a contributor wrote them)."""
    shown = licence_id(cfg, stats)
    data = []
    for s in _data_licences(stats):
        terms = ", ".join(md(s[k]) for k in ("license_name", "license_link") if s.get(k))
        name = md(s.get("pretty_name") or s.get("source") or "a contribution")
        data.append(f"{name}: {md(s.get('license') or 'not stated')}"
                    + (f" ({terms})" if terms else ""))
    if not data:
        return shown
    taken = " (from the training data)" if shown != cfg.licence else ""
    return f"{md(shown)}{taken}; training data: " + "; ".join(data)


def _base_expr(base: str) -> str:
    """The snippet's base: a local folder is found from the adapter folder."""
    if base.startswith(("./", "../")):
        return f"adapter / {json.dumps(base.removeprefix('./'))}"
    return repr(base)


def _extras_note(extras: list[str]) -> str:
    if not extras:
        return ""
    return (f"\nThis adapter also trained {', '.join(extras)} (`kani_extras.safetensors`): PEFT "
            "does not apply them. kani-adapt does (`kani_adapt.training.lora.load_adapter`), and "
            "a merged export holds them.\n")


def _repeats(cfg: TrainConfig) -> str:
    if cfg.data.drop_repeated_frames:
        return "dropped (data.drop_repeated_frames=true), as the released weights were trained"
    return "kept (data.drop_repeated_frames=false): timing differs from the released weights"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


SERVING = "## Serving unmerged"  # the card's section (its table is printed by export)


def serving_lines(adapter: Path) -> list[str]:
    """The card's serving table as console lines (its own section's rows, not another table's)."""
    card = (Path(adapter) / "README.md").read_text(encoding="utf-8")
    section = card.split(f"\n{SERVING}\n", 1)[1].split("\n## ", 1)[0] if SERVING in card else ""
    rows = [line.strip("| ").split(" | ") for line in section.splitlines()
            if line.startswith("| ") and line.count(" | ") == 2 and "engine" not in line]
    return [f"{engine} serves it unmerged: {answer} ({why})" for engine, answer, why in rows]
