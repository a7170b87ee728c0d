import numpy as np
import pytest
import torch

from kani_adapt import tokens
from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError, DataError
from kani_adapt.models.generator.batch import collate
from kani_adapt.training import lora
from kani_adapt.training.config import TrainConfig
from kani_adapt.dataset import read as load_table
from kani_adapt.training.data import GeneratorData
from kani_adapt.training.module import GeneratorModule, lr_factor
from kani_adapt.training.samples import make_sample_hook, sample_stats
from kani_adapt.training.synthetic import synthetic_dataset
from tests.helpers import REQUIRED, example_batch, tiny_generator


def cfg_with(*overrides):
    return load_config(TrainConfig, None, [*REQUIRED, *overrides])


def lora_layers(peft_model):
    return {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_modules() if n.endswith("lora_A")}


def test_lora_presets_target_the_named_layers_only():
    names = {}
    for preset in ("attention", "attention_mlp", "all_linear"):
        model, _ = tiny_generator()
        names[preset] = lora_layers(lora.apply_lora(model, cfg_with(f"lora.targets={preset}").lora))
    assert all(".self_attn." in n for n in names["attention"])
    assert any(n.endswith("self_attn.out_proj") for n in names["attention"])
    assert not any(".conv." in n for n in names["attention_mlp"])
    assert any(n.endswith("conv.out_proj") for n in names["all_linear"])
    assert not any(n.endswith("conv.conv") for n in names["all_linear"])
    assert names["attention"] < names["attention_mlp"] < names["all_linear"]


def test_fresh_lora_is_the_identity_and_freezes_the_base():
    model, tok = tiny_generator()
    batch = collate(example_batch(tok), torch.randn(2, 128))
    batch.pop("labels")
    with torch.no_grad():
        before = model(**batch).logits
    peft_model = lora.apply_lora(model, cfg_with("lora.train_speaker_projection=true").lora)
    with torch.no_grad():
        after = peft_model.get_base_model().eval()(**batch).logits
    assert torch.equal(before, after)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "speaker_emb_projection" in n for n in trainable)
    assert any("speaker_emb_projection" in n for n in trainable)


def test_continue_pretraining_groups_rope_scales_and_freezes_prefixes():
    model, _ = tiny_generator()
    cfg = cfg_with("mode=full", "optim.lr=0.001",
                   "optim.freeze=[model.embed_tokens]")
    module = GeneratorModule(cfg, model)
    optimizer = module.configure_optimizers()["optimizer"]
    rope = [g for g in optimizer.param_groups if g["initial_lr"] == pytest.approx(0.0015)]
    assert len(rope) == 1 and rope[0]["weight_decay"] == 0.0
    assert all(p.ndim == 0 for p in rope[0]["params"])
    assert not model.model.embed_tokens.weight.requires_grad
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(model.model.embed_tokens.weight) not in grouped
    assert id(model.model.speaker_emb_projection.weight) in grouped


def test_schedule_warms_up_then_decays_to_the_floor():
    values = [lr_factor(s, 10, 100, 0.1) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))
    assert values[100] == pytest.approx(0.1)


def test_losses_are_logged_per_codebook(tmp_path):
    model, tok = tiny_generator()
    module = GeneratorModule(cfg_with("mode=full"), model)
    out = module.forward_losses(collate(example_batch(tok), torch.randn(2, 128)))
    assert {f"loss_cb{c}" for c in range(4)} | {"loss", "loss_text"} <= set(out)


def test_data_holds_out_whole_speakers_and_filters_durations(tmp_path):
    path = synthetic_dataset(tmp_path / "d", n_speakers=4, per_speaker=3, seed=1)
    _, tok = tiny_generator()
    cfg = cfg_with(f"data.train={path}", "data.val_speakers=1", "data.max_duration=2.5")
    data = GeneratorData(cfg, tok)
    data.setup()
    train_speakers = {data.train_set[i].speaker for i in range(len(data.train_set))}
    val_speakers = {data.val_set[i].speaker for i in range(len(data.val_set))}
    assert not train_speakers & val_speakers
    # one held-out speaker of each tag that kept two after the duration filter
    held = data.stats["val_speakers_by_tag"]
    alone = data.stats["tags_without_held_out"]
    assert all(len(s) == 1 or (not s and t in alone) for t, s in held.items())
    assert val_speakers == {s for v in held.values() for s in v} and val_speakers
    table = load_table(str(path))
    too_long = sum(d > 2.5 for d in table["duration"])
    assert too_long > 0 and data.stats["filtered_by_duration"] == too_long
    item = data.train_set[0]
    assert item.example.input_ids[0] == tokens.START_OF_HUMAN
    assert len(item.example.input_ids) + 1 == data.train_set.lengths[0]  # + speaker slot


def test_replay_rows_are_mixed_into_training_batches(tmp_path):
    main = synthetic_dataset(tmp_path / "main", n_speakers=3, per_speaker=4, seed=1)
    replay = synthetic_dataset(tmp_path / "replay", n_speakers=2, per_speaker=10, seed=2)
    _, tok = tiny_generator()
    cfg = cfg_with(f"data.train={main}", f"data.replay={replay}", "data.replay_ratio=0.5",
                   "data.token_budget=400", "trainer.max_steps=10")
    data = GeneratorData(cfg, tok)
    data.setup()
    sampler = data.train_dataloader().batch_sampler
    offset = len(data.train_set)
    from_replay = [all(i >= offset for i in b) for b in sampler]
    assert sum(from_replay) == 5
    assert len(data.val_dataloader()) == 2  # held-out speakers and held-out replay rows


def test_missing_columns_name_the_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"text": "x"}]).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DataError, match="bad: missing column"):
        load_table(str(tmp_path / "bad"))
    with pytest.raises(DataError, match="not a saved Hugging Face dataset"):
        load_table(str(tmp_path / "nothing"))


def test_config_checks_replay_and_unknown_keys():
    with pytest.raises(ConfigError, match=r"data: replay_ratio > 0 needs replay \("):
        cfg_with("data.replay_ratio=0.2")
    with pytest.raises(ConfigError, match="did you mean 'token_budget'"):
        cfg_with("data.token_buget=10")


class FakeCodec:
    sample_rate, samples_per_frame, num_codebooks, codebook_size = 22050, 1764, 4, 4032

    def decode(self, codes, frames):
        t = torch.arange(int(frames.max()) * self.samples_per_frame) / self.sample_rate
        return torch.sin(2 * torch.pi * 220 * t)[None], frames * self.samples_per_frame


class Recorder:
    """Stands in for the TensorBoard writer and the module's log()."""

    def __init__(self):
        self.images, self.audio, self.scalars = [], [], {}

    def add_image(self, tag, img, step, dataformats):
        assert img.ndim == 3 and img.shape[-1] == 3
        self.images.append(tag)

    def add_audio(self, tag, wav, step, sample_rate):
        self.audio.append((tag, wav.shape, sample_rate))


def run_sample_hook(tmp_path, monkeypatch, codec, prompts: int, frames: int) -> Recorder:
    """Build a sample hook over a small validation set and run it once, recording the output."""
    path = synthetic_dataset(tmp_path / "d", n_speakers=3, per_speaker=prompts)
    model, tok = tiny_generator()
    cfg = cfg_with(f"data.train={path}", f"trainer.sample_prompts={prompts}",
                   f"sampling.max_frames={frames}")
    data = GeneratorData(cfg, tok)
    data.setup()
    hook = make_sample_hook(cfg, data.val_set, codec=codec)
    rec = Recorder()
    module = GeneratorModule(cfg_with("mode=full"), model)
    monkeypatch.setattr(type(module), "global_step", property(lambda self: 0))
    monkeypatch.setattr(module, "log", lambda k, v, **kw: rec.scalars.__setitem__(k, v))
    monkeypatch.setattr("kani_adapt.training.samples.tensorboard", lambda m: rec)
    hook(module)
    return rec


def test_sample_hook_logs_statistics_images_and_decoded_audio(tmp_path, monkeypatch):
    rec = run_sample_hook(tmp_path, monkeypatch, FakeCodec(), prompts=2, frames=3)
    assert {"samples/seconds_0", "samples/hit_length_cap_1"} <= set(rec.scalars)
    assert "samples/codes_0" in rec.images and "samples/audio_0_spectrogram" in rec.images
    assert rec.audio and rec.audio[0][2] == 22050
    stats = sample_stats(np.zeros((5, 4), dtype=int), True)
    assert stats == {"seconds": 0.4, "hit_length_cap": 1.0, "distinct_frame_ratio": 0.2}


def test_samples_decode_with_the_nanocodec(tmp_path, monkeypatch):
    from kani_adapt.codec.nanocodec import load_codec

    rec = run_sample_hook(tmp_path, monkeypatch, load_codec("tiny"), prompts=1, frames=2)
    (tag, shape, rate), = rec.audio
    assert rate == 22050 and shape == (1, 2 * 1764)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_gradient_checkpointing_runs_and_gives_the_same_gradients(mode):
    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model, tok = tiny_generator()
        module = GeneratorModule(cfg_with(f"mode={mode}", "lora.dropout=0.0",
                                          f"model.gradient_checkpointing={checkpointing}"), model)
        module.train()
        torch.manual_seed(1)
        batch = collate(example_batch(tok), torch.randn(2, 128))
        module.forward_losses(batch)["loss"].backward()
        return {n: p.grad for n, p in module.net.named_parameters() if p.grad is not None}

    plain, checkpointed = grads(False), grads(True)
    assert plain and plain.keys() == checkpointed.keys()
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-6, msg=name)
