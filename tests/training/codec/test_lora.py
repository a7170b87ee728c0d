import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kani_adapt.training.codec import lora
from kani_adapt.codec.nanocodec import build_model
from kani_adapt.core.errors import CheckpointError


@pytest.fixture()
def decoder():
    return build_model("tiny", seed=0, discriminators=()).audio_decoder


def _inputs():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 16, 6, generator=gen), torch.tensor([6, 4])


def _randomize(decoder):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for adapter in lora.adapters(decoder).values():
            adapter.lora_B.copy_(0.05 * torch.randn(adapter.lora_B.shape, generator=gen))


def test_zero_initialised_adapter_equals_the_base_model(decoder):
    x, n = _inputs()
    base = decoder(inputs=x, input_len=n)[0]
    names = lora.add_adapters(decoder, rank=4, alpha=8.0)
    assert any("up_sample_conv_layers" in name for name in names)  # ConvTranspose1d adapted
    assert torch.equal(decoder(inputs=x, input_len=n)[0], base)
    trainable = {k for k, p in decoder.named_parameters() if p.requires_grad}
    assert trainable and all(k.endswith(("lora_A", "lora_B")) for k in trainable)


@pytest.mark.parametrize("conv", [
    nn.Conv1d(8, 6, 3, dilation=3, groups=2),
    nn.ConvTranspose1d(8, 4, 6, stride=3, groups=4),
])
def test_adapted_conv_is_a_conv_with_the_same_geometry_and_weight_plus_delta(conv):
    """Dilation, stride, groups and the transposed layout are kept (PEFT's Conv1d LoRA drops
    dilation and has no ConvTranspose1d)."""
    wrapper = nn.Sequential(conv)
    lora.add_adapters(wrapper, rank=2, alpha=2.0)
    _randomize(wrapper)
    delta = lora.adapters(wrapper)["0"].delta().reshape(conv.parametrizations.weight.original.shape)
    weight = conv.parametrizations.weight.original + delta
    x = torch.randn(1, 8, 20)
    fn = F.conv1d if isinstance(conv, nn.Conv1d) else F.conv_transpose1d
    kwargs = dict(stride=conv.stride, groups=conv.groups, dilation=conv.dilation)
    expected = fn(x, weight, conv.bias, **kwargs)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    assert not torch.allclose(conv(x), fn(x, conv.parametrizations.weight.original, conv.bias, **kwargs))


def test_merged_equals_unmerged_and_restores_plain_keys(decoder):
    x, n = _inputs()
    plain_keys = set(decoder.state_dict())
    lora.add_adapters(decoder, rank=4, alpha=8.0)
    _randomize(decoder)
    unmerged = decoder(inputs=x, input_len=n)[0]
    assert lora.merge_adapters(decoder) > 0
    assert set(decoder.state_dict()) == plain_keys
    assert torch.allclose(decoder(inputs=x, input_len=n)[0], unmerged, atol=1e-5)


def test_adapter_file_round_trip_and_mismatch(decoder, tmp_path):
    x, n = _inputs()
    lora.add_adapters(decoder, rank=4, alpha=8.0, transposed=False)
    _randomize(decoder)
    expected = decoder(inputs=x, input_len=n)[0]
    path = lora.save_adapter(decoder, tmp_path / "a.safetensors", 4, 8.0, False)
    fresh = build_model("tiny", seed=0, discriminators=()).audio_decoder
    assert lora.load_adapter(fresh, path) == {"rank": 4, "alpha": 8.0, "transposed": False}
    assert torch.equal(fresh(inputs=x, input_len=n)[0], expected)
    other = nn.Sequential(nn.Conv1d(3, 3, 3))
    with pytest.raises(CheckpointError, match="do not match"):
        lora.load_adapter(other, path)
