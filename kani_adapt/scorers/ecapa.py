"""SpeechBrain's ECAPA-TDNN accent/language classifiers, rebuilt in torch so their published
checkpoints load without SpeechBrain (whose required torchaudio wheels do not import beside the
CPU torch of the pins; docs/judges.md).

The modules keep SpeechBrain's parameter names, so ``embedding_model.ckpt`` and
``classifier.ckpt`` load strictly, and its arithmetic, checked against SpeechBrain 1.1.2's own
``EncoderClassifier`` on a twin built with its classes (tests/fixtures/commonaccent-ecapa-twin):

- features: 25 ms Hamming windows every 10 ms (400-point FFT, centred, zero-padded), power
  spectrum, triangular mel filters spaced on 2595 log10(1 + f / 700), 10 log10 with a 1e-10
  floor, clamped to 80 dB under each clip's loudest value; then the mean of the clip's own
  frames subtracted (``InputNormalization`` per sentence, without variance);
- ECAPA-TDNN: 1-d convolutions with reflect padding, ReLU-family activation before BatchNorm,
  SE-Res2Net blocks, multi-layer aggregation, attentive statistics pooling with global context,
  BatchNorm and a linear layer to the embedding; padding frames are masked by relative length;
- classifier: cosine between the embedding and each class weight.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"torch.nn.ReLU": nn.ReLU, "torch.nn.LeakyReLU": nn.LeakyReLU}


class Fbank(nn.Module):
    def __init__(self, n_mels: int = 40, sample_rate: int = 16000, n_fft: int = 400,
                 win_length: int = 25, hop_length: int = 10, f_min: float = 0.0,
                 f_max: float | None = None, top_db: float = 80.0, amin: float = 1e-10):
        super().__init__()
        self.n_fft, self.top_db, self.amin = n_fft, top_db, amin
        self.win = int(round(sample_rate / 1000 * win_length))
        self.hop = int(round(sample_rate / 1000 * hop_length))
        f_max = sample_rate // 2 if f_max is None else f_max
        mel = torch.linspace(_mel(f_min), _mel(f_max), n_mels + 2)
        hz = 700 * (10 ** (mel / 2595) - 1)
        centre, band = hz[1:-1], (hz[1:] - hz[:-1])[:-1]
        freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1)
        slope = (freqs[None, :] - centre[:, None]) / band[:, None]
        self.register_buffer("filters", torch.clamp(torch.minimum(slope + 1, 1 - slope), min=0).T,
                             persistent=False)
        self.register_buffer("window", torch.hamming_window(self.win), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, frames, n_mels]
        spec = torch.stft(wav, self.n_fft, self.hop, self.win, self.window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.abs().pow(2).transpose(1, 2)
        db = 10 * torch.log10(torch.clamp(power @ self.filters, min=self.amin))
        floor = db.amax(dim=(-2, -1)) - self.top_db
        return torch.maximum(db, floor[:, None, None])


def _mel(hz: float) -> float:
    return 2595 * math.log10(1 + hz / 700)


def sentence_mean_normalised(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each clip's features minus the mean over its own frames (relative ``lengths``)."""
    frames = feats.shape[1]
    mask = (torch.arange(frames, device=feats.device)[None] < (lengths * frames - 1e-6)[:, None])
    mask = mask[..., None].to(feats.dtype)
    mean = (feats * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
    return feats - mean


class _Conv(nn.Module):
    """A 1-d convolution with reflect 'same' padding (parameters under ``conv``)."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, groups: int = 1):
        super().__init__()
        self.pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation, groups=groups)

    def forward(self, x):
        return self.conv(F.pad(x, (self.pad, self.pad), mode="reflect") if self.pad else x)


class _Norm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x):
        return self.norm(x)


class TDNN(nn.Module):
    def __init__(self, cin, cout, kernel, dilation, activation=nn.ReLU, groups=1):
        super().__init__()
        self.conv = _Conv(cin, cout, kernel, dilation, groups)
        self.activation = activation()
        self.norm = _Norm(cout)

    def forward(self, x):
        return self.norm(self.activation(self.conv(x)))


def _mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    return (torch.arange(frames, device=lengths.device)[None] < lengths[:, None] * frames).float()[:, None]


class Res2Net(nn.Module):
    def __init__(self, channels: int, scale: int, kernel: int, dilation: int):
        super().__init__()
        self.scale = scale
        self.blocks = nn.ModuleList(TDNN(channels // scale, channels // scale, kernel, dilation)
                                    for _ in range(scale - 1))

    def forward(self, x):
        out, y = [], None
        for i, part in enumerate(torch.chunk(x, self.scale, dim=1)):
            y = part if i == 0 else self.blocks[i - 1](part if i == 1 else part + y)
            out.append(y)
        return torch.cat(out, dim=1)


class SE(nn.Module):
    def __init__(self, channels: int, se_channels: int):
        super().__init__()
        self.conv1, self.conv2 = _Conv(channels, se_channels, 1), _Conv(se_channels, channels, 1)

    def forward(self, x, lengths):
        m = _mask(lengths, x.shape[-1])
        s = (x * m).sum(2, keepdim=True) / m.sum(2, keepdim=True)
        return torch.sigmoid(self.conv2(torch.relu(self.conv1(s)))) * x


class SERes2Net(nn.Module):
    def __init__(self, cin, cout, scale, se_channels, kernel, dilation, activation):
        super().__init__()
        self.tdnn1 = TDNN(cin, cout, 1, 1, activation)
        self.res2net_block = Res2Net(cout, scale, kernel, dilation)
        self.tdnn2 = TDNN(cout, cout, 1, 1, activation)
        self.se_block = SE(cout, se_channels)
        self.shortcut = _Conv(cin, cout, 1) if cin != cout else None

    def forward(self, x, lengths):
        residual = self.shortcut(x) if self.shortcut is not None else x
        return self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x))), lengths) + residual


class AttentivePooling(nn.Module):
    def __init__(self, channels: int, attention_channels: int, global_context: bool = True):
        super().__init__()
        self.global_context = global_context
        self.tdnn = TDNN(channels * (3 if global_context else 1), attention_channels, 1, 1)
        self.conv = _Conv(attention_channels, channels, 1)

    @staticmethod
    def _stats(x, weights):
        mean = (weights * x).sum(2)
        std = torch.sqrt((weights * (x - mean[..., None]).pow(2)).sum(2).clamp(1e-12))
        return mean, std

    def forward(self, x, lengths):
        frames = x.shape[-1]
        m = _mask(lengths, frames)
        attn = x
        if self.global_context:
            mean, std = self._stats(x, m / m.sum(2, keepdim=True))
            attn = torch.cat([x, mean[..., None].expand(-1, -1, frames),
                              std[..., None].expand(-1, -1, frames)], dim=1)
        attn = self.conv(torch.tanh(self.tdnn(attn))).masked_fill(m == 0, float("-inf"))
        mean, std = self._stats(x, F.softmax(attn, dim=2))
        return torch.cat((mean, std), dim=1)[..., None]


class EcapaTdnn(nn.Module):
    def __init__(self, input_size: int, lin_neurons: int = 192, activation=nn.ReLU,
                 channels=(512, 512, 512, 512, 1536), kernel_sizes=(5, 3, 3, 3, 1),
                 dilations=(1, 2, 3, 4, 1), attention_channels: int = 128, res2net_scale: int = 8,
                 se_channels: int = 128, global_context: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList([TDNN(input_size, channels[0], kernel_sizes[0], dilations[0], activation)])
        for i in range(1, len(channels) - 1):
            self.blocks.append(SERes2Net(channels[i - 1], channels[i], res2net_scale, se_channels,
                                         kernel_sizes[i], dilations[i], activation))
        self.mfa = TDNN(channels[-2] * (len(channels) - 2), channels[-1], kernel_sizes[-1],
                        dilations[-1], activation)
        self.asp = AttentivePooling(channels[-1], attention_channels, global_context)
        self.asp_bn = _Norm(channels[-1] * 2)
        self.fc = _Conv(channels[-1] * 2, lin_neurons, 1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, layers = feats.transpose(1, 2), []
        for block in self.blocks:
            x = block(x) if isinstance(block, TDNN) else block(x, lengths)
            layers.append(x)
        x = self.mfa(torch.cat(layers[1:], dim=1))
        return self.fc(self.asp_bn(self.asp(x, lengths)))[..., 0]  # [B, lin_neurons]


class CosineClassifier(nn.Module):
    def __init__(self, input_size: int, out_neurons: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_neurons, input_size))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embedding), F.normalize(self.weight))
