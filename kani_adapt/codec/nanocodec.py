"""NanoCodec through NeMo: load and save ``.nemo`` files, and encode/decode via the `Codec` protocol.

With :mod:`kani_adapt.codec.shapes` (the architecture), the only modules of the project that import
NeMo. Everything else gets a NeMo model from here (training) or a `NemoCodec` wrapper (data tools,
evaluation).
"""
from __future__ import annotations

import copy
import tarfile
import tempfile
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from kani_adapt.codec import tiny
from kani_adapt.codec.shapes import (HUB_ID, LATENT_DIM, LEVELS, NUM_GROUPS, SAMPLE_RATE,
                                     SAMPLES_PER_FRAME, SIZES, CodecShape, build_model,
                                     discriminator_config, model_config)
from kani_adapt.config.yaml_guard import read_yaml_file
from kani_adapt.core.atomic import write_file
from kani_adapt.core.errors import CheckpointError, ConfigError, DataError
from kani_adapt.core.hub import resolve_file
from kani_adapt.core.model_files import torch_load

__all__ = ["HUB_ID", "LATENT_DIM", "LEVELS", "NUM_GROUPS", "SAMPLE_RATE", "SAMPLES_PER_FRAME", "SIZES",
           "CodecShape", "NemoCodec", "build_model", "codec_config", "discriminator_config", "load_codec",
           "load_model", "model_config", "save_model"]


def _discriminator_list(cfg: DictConfig) -> list | None:
    disc = cfg.get("discriminator")
    if disc is None or "discriminators" not in disc:
        return None
    return list(disc.discriminators)


def sanitize_config(cfg: DictConfig, keep_discriminator: bool, slm_dir: str | None):
    """Make a stored codec config build offline; returns (config, discriminator index map).

    Nothing may reach the network: the SLM discriminator (WavLM) is dropped without ``slm_dir``
    (a local WavLM directory); the SLM loss stays only when the config's ``slm_encoder`` names a
    local directory; the speaker-consistency loss (``use_scl_loss``) is always off. None of them
    changes encoding or decoding. Data sections are dropped: training brings its own data.
    The index map says which stored discriminator index becomes which (None: whole part dropped).
    """
    cfg = copy.deepcopy(cfg)
    OmegaConf.set_struct(cfg, False)
    for key in ("train_ds", "validation_ds", "test_ds", "log_config"):
        cfg.pop(key, None)
    if cfg.get("use_slm_loss") and not _local_slm_encoder(cfg):
        cfg.use_slm_loss = False  # its encoder (w2v-bert) would come from the hub
    if not cfg.get("use_slm_loss"):
        cfg.pop("slm_encoder", None)
        cfg.pop("slm_predictor", None)
    # The speaker-consistency loss fetches (and unpickles) a speaker encoder from a URL NeMo
    # hard-codes; none of its weights are stored in a .nemo, and tokens never depend on it.
    cfg.use_scl_loss = False
    cfg.pop("semantic_codec_path", None)  # a path on the author's machine; the weights are stored
    index_map: dict[int, int | None] = {}
    parts = _discriminator_list(cfg)
    if not keep_discriminator:
        cfg.discriminator = None
        index_map = {i: None for i in range(len(parts or []))}
    elif parts is not None:
        kept = []
        for i, part in enumerate(parts):
            if "SLMDiscriminator" in str(part.get("_target_", "")):
                if slm_dir is None:
                    index_map[i] = None
                    continue
                part.slm_model_name = slm_dir
            index_map[i] = len(kept)
            kept.append(part)
        cfg.discriminator.discriminators = kept
    return cfg, index_map


def _local_slm_encoder(cfg: DictConfig) -> bool:
    name = (cfg.get("slm_encoder") or {}).get("slm_model_name")
    return bool(name) and Path(str(name)).is_dir()


_WEIGHT_NORM_NAMES = ((".weight_g", ".parametrizations.weight.original0"),
                      (".weight_v", ".parametrizations.weight.original1"))


def harmonise_weight_norm(state: dict, expected: set[str]) -> dict:
    """Name weight-norm tensors the way this model does. Files written before torch's
    parametrizations (and public converters of the published NanoCodec) say ``weight_g`` /
    ``weight_v``; newer ones ``parametrizations.weight.original0/1``. Same tensors either way."""
    out = {}
    for key, value in state.items():
        if key not in expected:
            for old, new in _WEIGHT_NORM_NAMES:
                for a, b in ((old, new), (new, old)):
                    if key.endswith(a) and key[: -len(a)] + b in expected:
                        key = key[: -len(a)] + b
        out[key] = value
    return out


def remap_state_dict(state: dict, index_map: dict[int, int | None], keep_discriminator: bool,
                     keep_slm: bool = False) -> dict:
    """Rename discriminator keys after parts were dropped; drop keys of dropped parts, of the
    frozen pretrained models NeMo never stores (WavLM inside the SLM parts), of the switched
    off speaker-consistency loss and, unless ``keep_slm``, of the SLM loss's predictor (NeMo
    stores ``slm_predictor.*`` when ``use_slm_loss`` is on; only training uses them)."""
    out = {}
    for key, value in state.items():
        if key.startswith("slm_predictor.") and not keep_slm:
            continue
        # speaker_encoder_resampler: a buffer of the (switched off) speaker-consistency loss
        if key.startswith(("slm_encoder.", "speaker_encoder")) or ".slm_model.slm_model." in key:
            continue
        if key.startswith("discriminator."):
            if not keep_discriminator:
                continue
            parts = key.split(".")
            if len(parts) > 2 and parts[1] == "discriminators" and parts[2].isdigit():
                new = index_map.get(int(parts[2]), int(parts[2]))
                if new is None:
                    continue
                parts[2] = str(new)
                key = ".".join(parts)
        out[key] = value
    return out


def check_keys(expected: set[str], found: set[str], source: str) -> None:
    """Refuse a checkpoint whose keys differ from the model's (NeMo itself loads non-strictly)."""
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: state dict does not match the codec config: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


def _read_nemo(path: Path, workdir: Path) -> tuple[DictConfig, dict]:
    """Config and weights of a `.nemo` archive, extracted without leaving ``workdir``."""
    _extract(path, workdir)
    configs = list(workdir.rglob("model_config.yaml"))
    weights = list(workdir.rglob("model_weights.ckpt"))
    if len(configs) != 1 or len(weights) != 1:
        raise CheckpointError(f"{path}: a .nemo archive holds one model_config.yaml and one "
                              f"model_weights.ckpt; found {len(configs)} and {len(weights)}")
    cfg = _parse_config(path, configs[0])
    state = torch_load(weights[0], shown=f"{path} (model_weights.ckpt)")
    return cfg, state


def _extract(path: Path, workdir: Path, only=None) -> None:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = None if only is None else [m for m in tar.getmembers() if only(m.name)]
            tar.extractall(workdir, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable .nemo archive ({err})") from err


def _parse_config(path: Path, file: Path) -> DictConfig:
    try:  # the project's guarded YAML reader: size, depth, alias expansion and duplicate keys
        return OmegaConf.create(read_yaml_file(file, yaml12_floats=True))
    except ConfigError as err:
        raise CheckpointError(f"{path} (model_config.yaml): {str(err).split(': ', 1)[-1]}") from None
    except Exception as err:  # OmegaConf's errors have many types; all mean a bad file
        raise CheckpointError(f"{path}: model_config.yaml is unreadable ({type(err).__name__})") from None


def codec_config(source: str) -> DictConfig:
    """The architecture of the codec ``source`` names (as :func:`load_model` takes it), without
    reading its weights: a size's config, or a `.nemo` archive's model_config.yaml."""
    if source in SIZES and source != "tiny":
        return model_config(source)
    path = tiny.cached_file() if source == "tiny" else resolve_file(source, ".nemo")
    with tempfile.TemporaryDirectory() as tmp:
        _extract(path, Path(tmp), only=lambda name: name.endswith("model_config.yaml"))
        configs = list(Path(tmp).rglob("model_config.yaml"))
        if len(configs) != 1:
            raise CheckpointError(f"{path}: a .nemo archive holds one model_config.yaml; "
                                  f"found {len(configs)}")
        return _parse_config(path, configs[0])


def load_model(source: str, discriminators: tuple[str, ...] = (), slm_dir: str | None = None,
               seed: int = 0):
    """An `AudioCodecModel` from a `.nemo` file, a hub id or a size name: ``tiny`` is the tiny
    codec built on this machine (:mod:`kani_adapt.codec.tiny`, read back from its `.nemo` like any
    other), ``0.6kbps`` the full-size shape with random weights.

    With ``discriminators`` (for training) the stored discriminators are kept (SLM only with
    ``slm_dir``); a file without any gets fresh ones of those kinds. Keys are checked strictly
    here because NeMo's own loader ignores mismatches.
    """
    from nemo.collections.tts.models import AudioCodecModel

    if source == "tiny":
        source = str(tiny.cached_file())
    elif source in SIZES:
        return build_model(source, seed=seed, discriminators=tuple(discriminators))
    path = resolve_file(source, ".nemo")  # local file, or the hub repository's .nemo
    with tempfile.TemporaryDirectory() as tmp:
        stored_cfg, state = _read_nemo(path, Path(tmp))
    keep = bool(discriminators)
    cfg, index_map = sanitize_config(stored_cfg, keep, slm_dir)
    state = remap_state_dict(state, index_map, keep, keep_slm=bool(cfg.get("use_slm_loss")))
    fresh_discriminator = keep and cfg.get("discriminator") is None
    if fresh_discriminator:
        cfg.discriminator = discriminator_config(tuple(discriminators))
    torch.manual_seed(seed)
    model = AudioCodecModel(cfg=cfg)
    expected = set(model.state_dict())
    if fresh_discriminator:
        expected = {k for k in expected if not k.startswith("discriminator.")}
    state = harmonise_weight_norm(state, set(model.state_dict()))
    check_keys(expected, set(state), str(path))
    # Module.load_state_dict directly: AudioCodecModel's override forces strict=False.
    result = torch.nn.Module.load_state_dict(model, state, strict=False)
    skipped = [k for k in result.missing_keys if ".slm_model.slm_model." not in k
               and not (fresh_discriminator and k.startswith("discriminator."))]
    if skipped or result.unexpected_keys:
        raise CheckpointError(f"{path}: weights did not load: {skipped[:3]} {result.unexpected_keys[:3]}")
    return model.eval()


def save_model(model, path: Path) -> Path:
    """Write a `.nemo` archive (config + weights) that `load_model` and NeMo both read."""
    path = Path(path)
    if path.suffix != ".nemo":
        raise CheckpointError(f"{path}: codec files end in .nemo")
    # never leave a half-written archive under the final name
    return write_file(path, lambda tmp: model.save_to(str(tmp)))


class NemoCodec:
    """A NeMo `AudioCodecModel` seen through the project's `Codec` protocol."""

    def __init__(self, model):
        if model.vector_quantizer is None:
            raise CheckpointError("this codec has no quantizer, so it cannot produce tokens")
        self.model = model.eval()
        self.sample_rate = int(model.sample_rate)
        self.samples_per_frame = int(model.samples_per_frame)
        self.num_codebooks = int(model.num_codebooks)
        self.codebook_size = int(model.codebook_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if audio.ndim != 2 or lengths.shape != (audio.shape[0],):
            raise DataError(f"encode wants audio [B, T] and lengths [B]; got {tuple(audio.shape)} "
                            f"and {tuple(lengths.shape)}")
        if bool((lengths > audio.shape[1]).any()) or bool((lengths <= 0).any()):
            raise DataError(f"lengths {lengths.tolist()} do not fit audio of {audio.shape[1]} samples")
        spf = self.samples_per_frame
        padded = -(-audio.shape[1] // spf) * spf  # whole frames, as the codec was trained
        audio = torch.nn.functional.pad(audio.float(), (0, padded - audio.shape[1]))
        with torch.inference_mode():
            codes, frames = self.model.encode(audio=audio.to(self.device),
                                              audio_len=lengths.to(self.device).long())
        return codes.long().cpu(), frames.long().cpu()

    def decode(self, codes: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if codes.ndim != 3 or codes.shape[1] != self.num_codebooks or frames.shape != (codes.shape[0],):
            raise DataError(f"decode wants codes [B, {self.num_codebooks}, F] and frames [B]; got "
                            f"{tuple(codes.shape)} and {tuple(frames.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise DataError(f"codes must lie in 0..{self.codebook_size - 1}; got "
                            f"{int(codes.min())}..{int(codes.max())}")
        with torch.inference_mode():
            audio, lengths = self.model.decode(tokens=codes.to(self.device).int(),
                                               tokens_len=frames.to(self.device).long())
        return audio.float().cpu(), lengths.long().cpu()


def load_codec(source: str, slm_dir: str | None = None) -> NemoCodec:
    """The loader the data tools and training use: size name, `.nemo` path or hub id -> `Codec`."""
    return NemoCodec(load_model(source, slm_dir=slm_dir))
