"""A checkpoint saved by kani-adapt, loaded by the official runtime's class (kani-tts-2 0.0.5):
same logits uncached, and in its cached ``generate()`` teacher-forced through audio frames."""
import numpy as np
import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from kani_adapt import tokens
from kani_adapt.models.generator import checkpoint
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.models.generator.bundle import Generator
from tests.conformance import official
from tests.helpers import tiny_generator

N_FRAMES = 4


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ours, tok = tiny_generator(seed=1)
    folder = checkpoint.save_checkpoint(Generator(ours, tok), tmp_path_factory.mktemp("gen") / "kani",
                                        dtype="fp32")
    theirs = official.load("model").KaniTTS2ForCausalLM.from_pretrained(str(folder)).eval()
    return ours, theirs, tok


def official_prompt(tok):
    """What the official runtime feeds generate(): SOH + text + EOT + EOH (no SOA/SOS)."""
    return tokens.prompt_ids(encode_text(tok, "guten tag", "de"), prefill_speech=False)


def continuation(seed=0):
    codes = np.random.default_rng(seed).integers(0, tokens.CODEBOOK_SIZE, (N_FRAMES, 4))
    return [tokens.START_OF_AI, tokens.START_OF_SPEECH, *tokens.codes_to_tokens(codes),
            tokens.END_OF_SPEECH], codes


def speaker(seed=0):
    return torch.nn.functional.normalize(torch.randn(1, 128, generator=torch.Generator()
                                                     .manual_seed(seed)), dim=-1)


class TeacherForcing(LogitsProcessor):
    """Records the raw next-token logits of each step and forces the given token."""

    def __init__(self, forced):
        self.forced, self.seen = list(forced), []

    def __call__(self, input_ids, scores):
        self.seen.append(scores[0].detach().clone())
        out = torch.full_like(scores, float("-inf"))
        out[:, self.forced[len(self.seen) - 1]] = 0
        return out


def mend_speaker_slot(model):
    """The fix of the runtime's off-by-one: after the prefill, the mask and cache position must
    count the inserted speaker slot, i.e. cover the whole cache plus the new token."""
    original = model.prepare_inputs_for_generation

    def prepare(input_ids, past_key_values=None, **kwargs):
        inputs = original(input_ids, past_key_values=past_key_values, **kwargs)
        if past_key_values is not None and model._current_speaker_emb is not None:
            seen = past_key_values.get_seq_length()
            inputs["attention_mask"] = torch.ones(1, seen + 1, dtype=torch.long)
            inputs["cache_position"] = torch.tensor([seen])
        return inputs

    model.prepare_inputs_for_generation = prepare
    return original


def official_generate_logits(model, prompt, forced, spk=None, mended=False):
    forcing = TeacherForcing(forced)
    original = mend_speaker_slot(model) if mended else None
    try:
        with torch.no_grad():
            out = model.generate(
                input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                                                             dtype=torch.long),
                max_new_tokens=len(forced), do_sample=False, repetition_penalty=1.0,
                eos_token_id=tokens.END_OF_SPEECH, pad_token_id=tokens.PAD,
                logits_processor=LogitsProcessorList([forcing]), speaker_emb=spk)
    finally:
        if original is not None:
            model.prepare_inputs_for_generation = original
    assert out[0, len(prompt):].tolist() == forced  # every forced step ran
    return torch.stack(forcing.seen)


def training_logits(ours, prompt, forced, spk=None):
    """kani-adapt's training forward over the whole sequence, at the generated steps."""
    with torch.no_grad():
        full = ours(input_ids=torch.tensor([prompt + forced[:-1]]), speaker_emb=spk).logits[0]
    start = len(prompt) + (spk is not None) - 1
    return full[start:start + len(forced)]


def test_uncached_forward_gives_the_official_logits(pair):
    ours, theirs, tok = pair
    forced, _ = continuation()
    ids = torch.tensor([official_prompt(tok) + forced])
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        got = ours(input_ids=ids).logits
    assert (got - expected).abs().max() < 1e-4


def test_uncached_forward_with_a_speaker_slot_gives_the_official_logits(pair):
    """The official forward takes the slot as inputs_embeds at index 1, positions shifted."""
    ours, theirs, tok = pair
    forced, _ = continuation(1)
    ids = torch.tensor([official_prompt(tok) + forced])
    spk = speaker(1)
    with torch.no_grad():
        embeds = theirs.model.embed_tokens(ids)
        slot = theirs.model.speaker_emb_projection(spk)[:, None]
        embeds = torch.cat([embeds[:, :1], slot, embeds[:, 1:]], 1)
        pos = official.load("model").compute_frame_level_positions(
            ids, tokens.AUDIO_TOKENS_START, 4, 1.0).float()
        pos = torch.cat([pos[:, :1], pos[:, :1] + 1, pos[:, 1:] + 1], 1)
        expected = theirs(inputs_embeds=embeds, position_ids=pos,
                          attention_mask=torch.ones(1, embeds.shape[1], dtype=torch.long)).logits
        got = ours(input_ids=ids, speaker_emb=spk).logits
    assert (got - expected).abs().max() < 1e-4


def test_official_cached_generate_equals_our_training_forward_without_speaker(pair):
    ours, theirs, tok = pair
    prompt, (forced, _) = official_prompt(tok), continuation(2)
    got = official_generate_logits(theirs, prompt, forced)
    assert len(got) == len(forced) == 2 + 4 * N_FRAMES + 1
    assert (got - training_logits(ours, prompt, forced)).abs().max() < 1e-4


def test_official_cached_generate_with_a_speaker_equals_ours_once_its_off_by_one_is_mended(pair):
    ours, theirs, tok = pair
    prompt, (forced, _), spk = official_prompt(tok), continuation(3), speaker(3)
    expected = training_logits(ours, prompt, forced, spk)
    mended = official_generate_logits(theirs, prompt, forced, spk, mended=True)
    assert (mended - expected).abs().max() < 1e-4
    as_shipped = official_generate_logits(theirs, prompt, forced, spk)
    # The prefill step is right as shipped; every decoded step is masked from itself.
    assert (as_shipped[0] - expected[0]).abs().max() < 1e-4
    assert (as_shipped[1:] - expected[1:]).abs().max() > 1e-3, (
        "the official runtime no longer differs with a speaker embedding: upstream fixed the "
        "speaker-slot off-by-one; update docs/compatibility.md")


@pytest.mark.slow
def test_official_way_of_reading_ids_back_gives_our_codes(pair):
    """kani_tts.core's NemoAudioPlayer.get_nano_codes (imports NeMo, hence slow)."""
    from kani_tts.core import NemoAudioPlayer, TTSConfig

    _, _, tok = pair
    forced, codes = continuation(4)
    ids = official_prompt(tok) + forced + [tokens.END_OF_AI]
    player = object.__new__(NemoAudioPlayer)  # its __init__ would fetch the codec
    conf = TTSConfig()
    player.start_of_speech = conf.tokeniser_length + 1
    player.end_of_speech = conf.tokeniser_length + 2
    player.audio_tokens_start = conf.tokeniser_length + 10
    player.codebook_size = 4032
    theirs, length = player.get_nano_codes(torch.tensor(ids))
    ours = tokens.parse_codes(ids)
    np.testing.assert_array_equal(ours, codes)
    np.testing.assert_array_equal(theirs[0].T.numpy(), ours)
    assert int(length) == len(ours)
