"""The tiny NanoCodec: NeMo's own classes in NanoCodec's layout, small, with codes that follow the audio.

Same format as the published codec (an ``AudioCodecModel`` ``.nemo``: 22,050 Hz, 1764 samples
per frame, 4 FSQ groups of levels [9, 8, 8, 7] = 4 codebooks x 4032), loaded through the same
``load_model`` path; only the widths differ. Random weights would be useless here: a random
encoder this thin gives one code for every frame, and its codes carry nothing a decoder could
use. So the weights are *designed*, then the decoder is *fitted*, both deterministically:

1. Encoder (no training): the input convolution is a filterbank of 8 mel-spaced band-pass
   filters, each as a +/- pair so that the leaky ReLU after it rectifies (|band|); every residual
   block is an identity except the last, which compresses the band envelopes logarithmically
   (a piecewise-linear log over 30 knots from 1e-5 to 1, the activation's leak compensated
   exactly); the down-sampling convolutions average, and the last one reads each band at four
   places of the frame. Those 32 features per frame are projected onto their 16 principal
   components over espeak-ng speech and whitened (x 0.9), so the FSQ levels are all used: codes
   change from frame to frame like a real codec's, the same sound gives similar codes, and
   digital silence gives one repeated code (as it does for NanoCodec).
2. Decoder (a short fit): 150 Adam steps of the model's own generator losses (NeMo's
   multi-resolution mel and STFT losses as its config weighs them, the three largest of the
   recipe's resolutions) on the quantized codes of the same speech, encoder and quantizer frozen;
   so fine-tuning the decoder later continues the same objective.

The build takes about a minute on two CPU cores and is kept per machine (:mod:`kani_adapt.core.built`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("kani_adapt.codec")

BUILD_VERSION = 2  # bump when anything below changes what is built
SAMPLE_RATE = 22050
SAMPLES_PER_FRAME = 1764
BANDS = 8
PRE_KERNEL = 127  # filterbank length (5.8 ms at 22,050 Hz)
KNOTS = 30
FLOOR, TOP = 1e-5, 1.0  # the log's range (band envelope, full scale 1)
SEGMENTS = ((0, 4), (4, 7), (7, 10), (10, 14))  # taps of the last down-sampling conv (kernel 14)
WHITEN_SCALE = 0.9
LEAK = 0.01  # NeMo's leaky ReLU slope in the encoder
FIT_STEPS, FIT_BATCH, FIT_FRAMES, FIT_LR = 150, 8, 8, 3e-3

# The speech the codec is built from: other sentences than the tests and the demo speak.
VOICES = ("en", "en+m3", "en+f3", "de", "de+f4", "en-gb-scotland+m4", "fr+m1", "es+f2")
SENTENCES = (
    "a sailor rowed his boat across the wide grey river",
    "she keeps her old letters in a wooden box",
    "three children were singing in the garden after school",
    "the baker opens his shop very early every day",
    "wo ist der naechste bahnhof und wann faehrt der zug",
    "meine schwester wohnt seit zwei jahren in berlin",
    "heute abend gibt es suppe mit frischem brot",
    "the wind was cold and the hills were covered in snow",
    "one two three four five six seven eight nine ten",
    "is this the road that goes down to the harbour",
)


def set_weight(conv: torch.nn.Module, weight, bias=None) -> None:
    """Give a weight-normed convolution exactly this effective weight (and bias; default zero).
    A row of zeros becomes a magnitude of 0 over a direction of ones, not 0/0."""
    weight = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    params = conv.parametrizations.weight
    norms = weight.flatten(1).norm(dim=1)
    direction = weight.clone()
    direction[norms == 0] = 1.0
    with torch.no_grad():
        params.original1.copy_(direction)
        params.original0.copy_(norms.reshape(params.original0.shape))
        if conv.bias is not None:
            conv.bias.copy_(torch.zeros(conv.bias.shape) if bias is None
                            else torch.as_tensor(np.asarray(bias), dtype=torch.float32))


def _mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz) / 700)


def filterbank() -> np.ndarray:
    """[BANDS, PRE_KERNEL] Hann-windowed sinc band-pass filters, unit gain at their centres."""
    edges = 700 * (10 ** (np.linspace(_mel(80), _mel(9000), BANDS + 1) / 2595) - 1)
    n = np.arange(PRE_KERNEL) - PRE_KERNEL // 2
    window = np.hanning(PRE_KERNEL + 2)[1:-1]
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        h = (2 * high * np.sinc(2 * high / SAMPLE_RATE * n)
             - 2 * low * np.sinc(2 * low / SAMPLE_RATE * n)) / SAMPLE_RATE * window
        centre = (low + high) / 2
        out.append(h / abs(np.sum(h * np.exp(-2j * np.pi * centre / SAMPLE_RATE * n))))
    return np.stack(out)


def log_knots() -> tuple[np.ndarray, np.ndarray]:
    """Knots ``t`` and ReLU coefficients ``a``: sum_j a_j relu(x - t_j) = log(x / FLOOR) at the
    knots, linear between them, 0 below FLOOR."""
    t = np.geomspace(FLOOR, TOP, KNOTS + 1)
    slopes = np.diff(np.log(t / FLOOR)) / np.diff(t)
    return t[:-1], np.concatenate([[slopes[0]], np.diff(slopes)])


def _residual_blocks(layer):
    return [res for block in layer.res_blocks for res in block.res_blocks]


def design_encoder(encoder) -> None:
    """Set the weights of a tiny ``HiFiGANEncoder`` (see the module docstring) but its output."""
    width = encoder.pre_conv.conv.out_channels
    if width < 2 * BANDS:
        raise ValueError(f"the tiny encoder needs {2 * BANDS} input channels, has {width}")
    bank = filterbank()
    pre = np.zeros((width, 1, PRE_KERNEL))
    pre[0:2 * BANDS:2, 0], pre[1:2 * BANDS:2, 0] = bank, -bank
    set_weight(encoder.pre_conv.conv, pre)
    for layer in encoder.res_layers:
        for res in _residual_blocks(layer):
            set_weight(res.skip_conv.conv, np.zeros(res.skip_conv.conv.weight.shape))
    downs = encoder.down_sample_conv_layers
    for i, down in enumerate(downs):
        conv = down.conv
        weight = np.zeros(conv.weight.shape)
        for b in range(BANDS):
            if i == len(downs) - 1:
                for s, (lo, hi) in enumerate(SEGMENTS):
                    weight[s * BANDS + b, b, lo:hi] = 1.0 / (hi - lo)
            else:  # the first one adds each +/- pair: |band|
                for ch in ((2 * b, 2 * b + 1) if i == 0 else (b,)):
                    weight[b, ch, :] = 1.0 / conv.kernel_size[0]
        set_weight(conv, weight)
    _log_compressor(_residual_blocks(encoder.res_layers[-1])[0])


def _log_compressor(res) -> None:
    """out = x + skip(lrelu(input(lrelu(x)))) = log-compressed x on the band channels.

    Inputs are >= 0, so the first leaky ReLU passes them; each knot is one hidden channel
    ``x - t_j``; ``lrelu(h) = (1 - LEAK) relu(h) + LEAK h``, so the coefficients are divided by
    ``1 - LEAK`` and the leak's linear part, and the residual ``x``, are cancelled through one
    more hidden channel per band, ``x + 1`` (always positive)."""
    t, a = log_knots()
    width, n = res.input_conv.conv.in_channels, len(t)
    if BANDS * (n + 1) > width:
        raise ValueError(f"the log compressor needs {BANDS * (n + 1)} channels, has {width}")
    mid_in = res.input_conv.conv.kernel_size[0] // 2
    mid_out = res.skip_conv.conv.kernel_size[0] // 2
    w_in = np.zeros(res.input_conv.conv.weight.shape)
    w_out = np.zeros(res.skip_conv.conv.weight.shape)
    b_in, b_out = np.zeros(width), np.zeros(width)
    alpha = LEAK / (1 - LEAK) * a.sum()
    beta = LEAK / (1 - LEAK) * (a * t).sum()
    linear = -1 - alpha
    for b in range(BANDS):
        first = b * (n + 1)
        for j in range(n):
            w_in[first + j, b, mid_in], b_in[first + j] = 1.0, -t[j]
            w_out[b, first + j, mid_out] = a[j] / (1 - LEAK)
        w_in[first + n, b, mid_in], b_in[first + n] = 1.0, 1.0
        w_out[b, first + n, mid_out], b_out[b] = linear, beta - linear
    set_weight(res.input_conv.conv, w_in, b_in)
    set_weight(res.skip_conv.conv, w_out, b_out)


def _padded(audio: np.ndarray) -> torch.Tensor:
    frames = -(-len(audio) // SAMPLES_PER_FRAME)
    return torch.tensor(np.pad(audio, (0, frames * SAMPLES_PER_FRAME - len(audio))))[None]


def frame_features(encoder, audio: np.ndarray) -> torch.Tensor:
    """[frames, 32] features the designed encoder computes before its output projection."""
    seen = {}
    hook = encoder.post_activation.register_forward_hook(lambda m, i, out: seen.setdefault("x", out))
    x = _padded(audio)
    try:
        with torch.no_grad():
            encoder(audio=x, audio_len=torch.tensor([x.shape[1]]))
    finally:
        hook.remove()
    return seen["x"][0, : BANDS * len(SEGMENTS)].T


def whiten_output(encoder, clips: list[np.ndarray]) -> None:
    """Project the features onto their 16 principal components, whitened (x WHITEN_SCALE)."""
    feats = torch.cat([frame_features(encoder, a) for a in clips]).double()
    mean = feats.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((feats - mean).T))
    top = values.argsort(descending=True)[: encoder.post_conv.conv.out_channels]
    proj = (vectors[:, top] / values[top].clamp(min=1e-12).sqrt()).T * WHITEN_SCALE
    conv = encoder.post_conv.conv
    weight = np.zeros(conv.weight.shape)
    weight[:, : proj.shape[1], conv.kernel_size[0] // 2] = proj.numpy()
    set_weight(conv, weight, (-(proj @ mean)).numpy())


def fit_decoder(model, clips: list[np.ndarray], seed: int, steps: int = FIT_STEPS) -> list[float]:
    """Fit the decoder to the quantized codes of ``clips`` (encoder and quantizer frozen) with the
    model's own mel and STFT losses and scales."""
    pairs = []
    for audio in clips:
        x = _padded(audio)
        with torch.no_grad():
            z, n = model.audio_encoder(audio=x, audio_len=torch.tensor([x.shape[1]]))
            q, _ = model.vector_quantizer(inputs=z, input_len=n)
        pairs.append((x[0], q[0]))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    decoder = model.audio_decoder
    optimizer = torch.optim.Adam(decoder.parameters(), lr=FIT_LR, betas=(0.8, 0.99))
    lengths = torch.full((FIT_BATCH,), FIT_FRAMES)
    losses = []
    decoder.train()
    for _ in range(steps):
        audio, codes = [], []
        for i in rng.integers(len(pairs), size=FIT_BATCH):
            x, q = pairs[i]
            f = int(rng.integers(0, q.shape[1] - FIT_FRAMES + 1))
            audio.append(x[f * SAMPLES_PER_FRAME:(f + FIT_FRAMES) * SAMPLES_PER_FRAME])
            codes.append(q[:, f:f + FIT_FRAMES])
        audio = torch.stack(audio)
        out, _ = decoder(inputs=torch.stack(codes), input_len=lengths)
        loss = _generator_loss(model, audio, out[:, : audio.shape[1]], lengths * SAMPLES_PER_FRAME)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    decoder.eval()
    return losses


def _generator_loss(model, real, fake, lengths):
    """What NeMo's training step minimises without discriminators: mel L1/L2 and STFT losses."""
    mel_l1, mel_l2 = model.mel_loss_fn(audio_real=real, audio_gen=fake, audio_len=lengths)
    stft = model.stft_loss_fn(audio_real=real, audio_gen=fake, audio_len=lengths)
    return (model.mel_loss_l1_scale * mel_l1 + model.mel_loss_l2_scale * mel_l2
            + model.stft_loss_scale * stft)


def corpus() -> list[np.ndarray]:
    """The build's speech: each sentence in two voices (espeak-ng), about 50 s."""
    from kani_adapt.core import espeak

    return [espeak.speak(text, VOICES[(i + shift) % len(VOICES)])
            for shift in (0, 3) for i, text in enumerate(SENTENCES)]


def build(seed: int = 0):
    """The tiny codec as an ``AudioCodecModel`` (no discriminators), built from espeak-ng speech."""
    from kani_adapt.codec.shapes import build_model

    clips = corpus()
    model = build_model("tiny", seed=seed, discriminators=())
    design_encoder(model.audio_encoder)
    whiten_output(model.audio_encoder, clips)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.audio_decoder.parameters():
        p.requires_grad_(True)
    fit_decoder(model, clips, seed)
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


def cached_file(seed: int = 0) -> Path:
    """The tiny codec's ``.nemo`` on this machine, built on first use."""
    from kani_adapt.core import built, espeak

    parts = {"version": BUILD_VERSION, "seed": seed, "espeak": espeak.version(),
             "torch": torch.__version__.split("+")[0]}
    return built.cached("tiny-codec.nemo", parts, lambda tmp: build(seed).save_to(str(tmp)),
                        "the tiny codec from espeak-ng speech")
