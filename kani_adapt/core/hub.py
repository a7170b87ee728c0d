""""A local path or a Hugging Face hub id": the one place that tells them apart and fetches.

Every loader (generator, codec, speaker embedder, scorers, tokenizers) calls :func:`resolve_folder`
or :func:`resolve_file`, so the rules and the error message are the same everywhere:

- an existing local path is used as it is (a folder's required files are checked);
- text shaped like ``owner/name`` that is not a local path is a hub id, fetched through the
  Hugging Face cache (``HF_HUB_OFFLINE=1`` limits that to the cache, no network);
- anything else is one :class:`CheckpointError` naming the text and the fix.

Nothing here touches the network or imports ``huggingface_hub`` until a hub id is resolved.
"""
from __future__ import annotations

import os
from pathlib import Path

from kani_adapt.core.errors import CheckpointError
from kani_adapt.core.model_files import check_model_folder

EXAMPLE_ID = "nineninesix/kani-tts-2-en"
# Files a model folder needs; weights in other formats (pickles, .bin) are never fetched.
MODEL_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja")


def is_hub_id(text: str) -> bool:
    """``owner/name`` that is not a local path (relative paths start with ``.``)."""
    owner, _, name = text.partition("/")
    return (text.count("/") == 1 and bool(owner) and bool(name)
            and not text.startswith((".", "~")) and not Path(text).expanduser().exists())


def on_machine(spec: str) -> bool:
    """A local folder, or a hub id already in the Hugging Face cache: usable without fetching
    (what ``auto`` switches test before they load a model; nothing is fetched here)."""
    if Path(spec).expanduser().is_dir():
        return True
    if not is_hub_id(spec):
        return False
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(spec, "config.json"), str)


def not_found(path_or_id: str, what: str) -> CheckpointError:
    """The one message for a path that does not exist and is not a hub id."""
    return CheckpointError(f"{path_or_id}: no such {what} (give a local {what} or a hub id like "
                           f"'{EXAMPLE_ID}')")


def offline() -> bool:
    """Whether fetching is limited to the local cache (HF_HUB_OFFLINE)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def fetch(repo_id: str, patterns: tuple[str, ...], repo_type: str = "model") -> Path:
    """The local snapshot of ``repo_id`` (files matching ``patterns``), from the cache or hub;
    ``repo_type`` "dataset" for a dataset repository (a packaged contribution)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type=repo_type,
                                      allow_patterns=list(patterns)))
    except Exception as err:  # network, auth, missing repo or cache: one line for the user
        where = "the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline() else \
            "the Hugging Face hub"
        raise CheckpointError(
            f"could not fetch {repo_id!r} from {where} ({type(err).__name__}); download it "
            "elsewhere and pass the local path instead"
        ) from err


def resolve_folder(path_or_id: str, required: tuple[str, ...] = ("config.json",),
                   patterns: tuple[str, ...] = MODEL_PATTERNS) -> Path:
    """A model folder holding ``required``: a local folder, or a hub id fetched into the cache."""
    path = Path(str(path_or_id)).expanduser()
    if not path.is_dir():
        if not is_hub_id(str(path_or_id)):
            raise not_found(str(path_or_id), "model directory")
        path = fetch(str(path_or_id), patterns)
    missing = [f for f in required if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; is it a model directory?")
    return check_model_folder(path)  # crafted files: one line, before a library parses them


def resolve_file(path_or_id: str, suffix: str) -> Path:
    """A single ``*suffix`` file: a local file, or the one such file of a hub repository."""
    path = Path(str(path_or_id)).expanduser()
    if path.is_file():
        return path
    what = f"{suffix} file"
    if path.suffix == suffix or not is_hub_id(str(path_or_id)):
        raise not_found(str(path_or_id), what)
    found = sorted(fetch(str(path_or_id), (f"*{suffix}",)).glob(f"*{suffix}"))
    if len(found) != 1:
        raise CheckpointError(f"{path_or_id}: expected one {what} in the hub repository, "
                              f"found {len(found)}")
    return found[0]


def cached(repo_id: str, suffix: str = "") -> bool:
    """Whether the Hugging Face cache holds a snapshot of ``repo_id`` with a file ending in
    ``suffix`` (nothing is fetched; a codec repository has a ``.nemo``, no ``config.json``)."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return any(p.name.endswith(suffix) for p in folder.glob("*/*")) if folder.is_dir() else False
