"""Reading a SpeechBrain ``EncoderClassifier`` folder (``hyperparams.yaml``, ``*.ckpt``, a label
file), as the CommonAccent accent classifiers are published, without SpeechBrain and without
running anything a model file names.

SpeechBrain builds such a model by executing its ``hyperparams.yaml`` (HyperPyYAML: ``!new:``
instantiates whatever class the file names). Here the file is parsed as data: ``!new:``,
``!name:`` and ``!ref`` become plain records, ``!ref <key>`` is resolved within the file, and
only the classes in :data:`BUILT` are built, by kani-adapt's own modules (:mod:`ecapa`); any
other class is refused with its name. Checkpoints are read with ``torch.load(weights_only=True)``
(tensors and containers only, no code) and loaded strictly, after the declared sizes are
checked against :data:`LIMITS`. The checkpoint and label files are taken from the model folder by
the names the file's ``pretrained_path`` entries give (a hub id there is not fetched: the folder
is the model, as SpeechBrain's own offline loading with ``pretrained_path`` pointed at a local
folder does).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kani_adapt.core.errors import CheckpointError

HPARAMS = "hyperparams.yaml"
FBANK = "speechbrain.lobes.features.Fbank"
NORMALISATION = "speechbrain.processing.features.InputNormalization"
ECAPA = "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN"
CLASSIFIER = "speechbrain.lobes.models.ECAPA_TDNN.Classifier"
LABELS = "speechbrain.dataio.encoder.CategoricalEncoder"
PRETRAINER = "speechbrain.utils.parameter_transfer.Pretrainer"
BUILT = {FBANK, NORMALISATION, ECAPA, CLASSIFIER, LABELS, PRETRAINER}
# What a published accent classifier declares, with room: more is refused before allocating
LIMITS = {"n_mels": 256, "channels": 4096, "lin_neurons": 4096, "out_neurons": 10000,
          "attention_channels": 4096, "se_channels": 4096}


@dataclass(frozen=True)
class New:
    cls: str
    args: dict


@dataclass(frozen=True)
class Name:
    target: str


@dataclass(frozen=True)
class Ref:
    expr: str


class _Loader(yaml.SafeLoader):
    pass


def _new(loader, suffix, node):
    args = loader.construct_mapping(node, deep=True) if isinstance(node, yaml.MappingNode) else {}
    return New(suffix, dict(args))


_Loader.add_multi_constructor("!new:", _new)
_Loader.add_multi_constructor("!name:", lambda loader, suffix, node: Name(suffix))
_Loader.add_constructor("!ref", lambda loader, node: Ref(loader.construct_scalar(node)))


def read_hparams(folder: Path) -> dict:
    """The hyperparams file as data, every ``!ref`` resolved."""
    path = Path(folder) / HPARAMS
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"{path}: cannot read a SpeechBrain hyperparams file ({err})") from err
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a mapping of hyperparameters")
    return {k: _resolve(v, raw, path, 0) for k, v in raw.items()}


def _resolve(value, top: dict, path: Path, depth: int):
    if depth > 20:
        raise CheckpointError(f"{path}: !ref entries refer to each other in a loop")
    if isinstance(value, Ref):
        whole = re.fullmatch(r"<([\w.]+)>", value.expr.strip())
        if whole:
            return _resolve(_lookup(top, whole.group(1), path), top, path, depth + 1)
        if re.search(r"[*+()]", value.expr):
            raise CheckpointError(f"{path}: arithmetic in !ref {value.expr!r} is not read")
        return re.sub(r"<([\w.]+)>", lambda m: str(_resolve(_lookup(top, m.group(1), path), top, path,
                                                             depth + 1)), value.expr)
    if isinstance(value, New):
        return New(value.cls, {k: _resolve(v, top, path, depth + 1) for k, v in value.args.items()})
    if isinstance(value, dict):
        return {k: _resolve(v, top, path, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, top, path, depth + 1) for v in value]
    return value


def _lookup(top: dict, key: str, path: Path):
    node = top
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CheckpointError(f"{path}: !ref <{key}> names no entry of the file")
        node = node[part]
    return node


def entry(hparams: dict, key: str, cls: str, folder: Path) -> New:
    """``hparams[key]``, which must be ``!new:cls``; anything else is refused by name."""
    value = hparams.get(key)
    if not isinstance(value, New):
        raise CheckpointError(f"{folder / HPARAMS}: no {key!r} entry built with !new:")
    if value.cls != cls:
        raise CheckpointError(f"{folder / HPARAMS}: {key} is {value.cls}, which kani-adapt does not "
                              f"build (it reads {cls}; it never runs classes a model file names)")
    return value


def check_sizes(args: dict, where: str) -> None:
    for key, limit in LIMITS.items():
        values = args.get(key)
        for v in values if isinstance(values, list) else [values]:
            if v is not None and (not isinstance(v, int) or v < 1 or v > limit):
                raise CheckpointError(f"{where}: {key} {v!r} is outside 1..{limit}; refused before "
                                      "allocating it")


def file_of(hparams: dict, loadable: str, folder: Path, default: str) -> Path:
    """The folder's file for a Pretrainer loadable (its ``paths`` entry's file name)."""
    pre = hparams.get("pretrainer")
    paths = pre.args.get("paths", {}) if isinstance(pre, New) else {}
    name = Path(str(paths.get(loadable) or default)).name
    path = Path(folder) / name
    if not path.is_file():
        raise CheckpointError(f"{folder}: {name} is missing (the {loadable} of {HPARAMS})")
    return path


def state_dict(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable or crafted file is one clear line
        raise CheckpointError(f"{path}: not a plain tensor checkpoint ({type(err).__name__}: "
                              f"{str(err)[:120]})") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a mapping of tensors")
    return state


def read_labels(path: Path) -> list[str]:
    """A CategoricalEncoder file (``'label' => index`` lines) as the labels in index order."""
    labels: dict[int, str] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("=") :
            break
        if not line.strip():
            continue
        key, sep, index = line.rpartition(" => ")
        try:
            label, number = ast.literal_eval(key), int(index)
        except (ValueError, SyntaxError) as err:
            raise CheckpointError(f"{path}:{n}: not a label line ('label' => index)") from err
        if not sep or not isinstance(label, str):
            raise CheckpointError(f"{path}:{n}: not a label line ('label' => index)")
        labels[number] = label
    if sorted(labels) != list(range(len(labels))) or not labels:
        raise CheckpointError(f"{path}: label indices must run 0..n-1")
    return [labels[i] for i in range(len(labels))]
