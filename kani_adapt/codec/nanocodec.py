"""NanoCodec through NeMo: build, load, save, and encode/decode via the `Codec` protocol.

This is the only module of the project that imports NeMo. Everything else gets a NeMo model from
here (training) or a `NemoCodec` wrapper (data tools, evaluation).
"""
from __future__ import annotations

import copy
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from kani_adapt.atomic import write_file
from kani_adapt.defaults import NANOCODEC_HUB_ID
from kani_adapt.config import read_yaml_file
from kani_adapt.errors import CheckpointError, ConfigError, DataError
from kani_adapt.hub import resolve_file
from kani_adapt.model_files import torch_load

SAMPLE_RATE = 22050
SAMPLES_PER_FRAME = 1764  # 12.5 frames per second
NUM_GROUPS = 4
LEVELS = [9, 8, 8, 7]  # 9*8*8*7 = 4032 codes per codebook
LATENT_DIM = NUM_GROUPS * len(LEVELS)
HUB_ID = NANOCODEC_HUB_ID

_MODULES = "nemo.collections.tts.modules.audio_codec_modules"
_LOSSES = "nemo.collections.tts.losses.audio_codec_loss"


@dataclass(frozen=True)
class CodecShape:
    """Channel widths and residual-block layout; rates and quantizer are NanoCodec's in every size."""

    encoder_channels: int
    decoder_channels: int
    kernel_sizes: tuple[int, ...]
    dilations: tuple[int, ...]
    in_kernel_size: int = 7  # the encoder's first convolution
    loss_resolutions: int = 7  # NeMo's recipe: 7 STFT sizes from 32 to 2048 (the largest N kept)


SIZES = {
    # Real quantizer and 1764 samples per frame, only thin: fast enough for CPU tests. The encoder's
    # widths and first kernel are those codec/tiny.py designs its weights for (a filterbank).
    "tiny": CodecShape(encoder_channels=16, decoder_channels=64, kernel_sizes=(3,), dilations=(1,),
                       in_kernel_size=127, loss_resolutions=3),
    "0.6kbps": CodecShape(encoder_channels=24, decoder_channels=864, kernel_sizes=(3, 7, 11),
                          dilations=(1, 3, 5)),
}


def discriminator_config(kinds: tuple[str, ...]) -> dict | None:
    """MPD ("mpd") and multi-resolution STFT ("mrd") discriminators as NeMo targets."""
    parts = []
    for kind in kinds:
        if kind == "mpd":
            parts.append({"_target_": f"{_MODULES}.MultiPeriodDiscriminator", "periods": [2, 3, 5, 7, 11]})
        elif kind == "mrd":
            parts.append({"_target_": f"{_MODULES}.MultiResolutionDiscriminatorSTFT",
                          "resolutions": [[512, 128, 512], [1024, 256, 1024], [2048, 512, 2048]],
                          "stft_bands": [[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]]})
        else:
            raise CheckpointError(f"unknown discriminator {kind!r}; choose from mpd, mrd")
    if not parts:
        return None
    return {"_target_": f"{_MODULES}.Discriminator", "discriminators": parts}


LOSS_RESOLUTIONS = [[32, 8, 32], [64, 16, 64], [128, 32, 128], [256, 64, 256], [512, 128, 512],
                    [1024, 256, 1024], [2048, 512, 2048]]
MEL_LOSS_DIMS = [5, 10, 20, 40, 80, 160, 320]


def model_config(size: str, discriminators: tuple[str, ...] = ("mpd", "mrd")) -> DictConfig:
    """A NanoCodec-shaped `AudioCodecModel` config (losses as in NeMo's 22 kHz low-frame-rate recipe)."""
    if size not in SIZES:
        raise CheckpointError(f"unknown codec size {size!r}; choose from {', '.join(SIZES)}")
    shape = SIZES[size]
    res = {"resblock_kernel_sizes": list(shape.kernel_sizes),
           "resblock_dilation_sizes": list(shape.dilations)}
    cfg = {
        "sample_rate": SAMPLE_RATE,
        "samples_per_frame": SAMPLES_PER_FRAME,
        "audio_encoder": {"_target_": f"{_MODULES}.HiFiGANEncoder", "encoded_dim": LATENT_DIM,
                          "down_sample_rates": [2, 3, 6, 7, 7], "base_channels": shape.encoder_channels,
                          "in_kernel_size": shape.in_kernel_size,
                          "activation": "lrelu", "pad_mode": "replicate", **res},
        "vector_quantizer": {"_target_": f"{_MODULES}.GroupFiniteScalarQuantizer",
                             "num_groups": NUM_GROUPS, "num_levels_per_group": LEVELS},
        "audio_decoder": {"_target_": f"{_MODULES}.CausalHiFiGANDecoder", "input_dim": LATENT_DIM,
                          "up_sample_rates": [7, 7, 6, 3, 2], "base_channels": shape.decoder_channels,
                          "activation": "half_snake", "output_activation": "clamp", "pad_mode": "zeros",
                          "n_groups_equal_to_out_channels": True, **res},
        "discriminator": discriminator_config(discriminators),
        "generator_loss": {"_target_": f"{_LOSSES}.GeneratorSquaredLoss"},
        "discriminator_loss": {"_target_": f"{_LOSSES}.DiscriminatorSquaredLoss"},
        "loss_resolutions": LOSS_RESOLUTIONS[-shape.loss_resolutions:],
        "mel_loss_dims": MEL_LOSS_DIMS[-shape.loss_resolutions:],
        "mel_loss_log_guard": 1.0, "stft_loss_log_guard": 1.0,
        "mel_loss_l1_scale": 1.0, "mel_loss_l2_scale": 0.0, "stft_loss_scale": 20.0,
        "time_domain_loss_scale": 0.0, "commit_loss_scale": 0.0, "gen_loss_scale": 1.0, "feature_loss_scale": 1.0,
        "optim": {"_target_": "torch.optim.Adam", "lr": 2e-4, "betas": [0.8, 0.99]},
    }
    return OmegaConf.create(cfg)


def build_model(size: str, seed: int = 0, discriminators: tuple[str, ...] = ("mpd", "mrd")):
    """A NanoCodec-shaped `AudioCodecModel` with random weights (deterministic for a seed): the
    architecture only. The codec ``tiny`` names everywhere else is :mod:`kani_adapt.codec.tiny`'s,
    whose weights make codes follow the audio."""
    from nemo.collections.tts.models import AudioCodecModel

    torch.manual_seed(seed)
    return AudioCodecModel(cfg=model_config(size, discriminators)).eval()


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
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(workdir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable .nemo archive ({err})") from err
    configs = list(workdir.rglob("model_config.yaml"))
    weights = list(workdir.rglob("model_weights.ckpt"))
    if len(configs) != 1 or len(weights) != 1:
        raise CheckpointError(f"{path}: a .nemo archive holds one model_config.yaml and one "
                              f"model_weights.ckpt; found {len(configs)} and {len(weights)}")
    try:  # the project's guarded YAML reader: size, depth, alias expansion and duplicate keys
        cfg = OmegaConf.create(read_yaml_file(configs[0], yaml12_floats=True))
    except ConfigError as err:
        raise CheckpointError(f"{path} (model_config.yaml): {str(err).split(': ', 1)[-1]}") from None
    except Exception as err:  # OmegaConf's errors have many types; all mean a bad file
        raise CheckpointError(f"{path}: model_config.yaml is unreadable ({type(err).__name__})") from None
    state = torch_load(weights[0], shown=f"{path} (model_weights.ckpt)")
    return cfg, state


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
        from kani_adapt.codec.tiny import cached_file

        source = str(cached_file())
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
