import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kani_adapt import tokens
from kani_adapt.core.errors import DataError

codes_st = st.integers(0, 12).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, tokens.CODEBOOK_SIZE - 1), min_size=4, max_size=4),
                       min_size=n, max_size=n)
).map(lambda rows: np.array(rows, dtype=np.int64).reshape(-1, 4))
text_st = st.lists(st.integers(3, tokens.TEXT_VOCAB_SIZE - 1), min_size=0, max_size=10).map(
    lambda ids: [tokens.BOS, *ids])
# Any sequence mixing text/control ids and audio ids, in any order.
mixed_st = st.lists(st.one_of(st.integers(0, tokens.AUDIO_TOKENS_START - 1),
                              st.integers(tokens.AUDIO_TOKENS_START, tokens.VOCAB_SIZE - 1)),
                    max_size=40)


def brute_positions(ids, step):
    out = []
    for i in range(len(ids)):
        before = ids[:i]
        n_audio = sum(1 for t in before if t >= tokens.AUDIO_TOKENS_START)
        out.append((len(before) - n_audio) + (n_audio // 4) * step)
    return out


def test_vocabulary_size_matches_format_page():
    assert tokens.VOCAB_SIZE == 80538
    assert tokens.NUM_ADDED_TOKENS == 16138
    assert tokens.codes_to_tokens(np.array([[4031, 4031, 4031, 4031]]))[-1] == 80537


@given(text_st, codes_st)
def test_example_layout_and_round_trip(text_ids, codes):
    ex = tokens.build_example(text_ids, codes, drop_repeats=False)
    ids = ex.input_ids
    n_text = len(text_ids)
    assert ids[0] == tokens.START_OF_HUMAN
    assert ids[1:1 + n_text] == text_ids
    assert ids[1 + n_text:5 + n_text] == [tokens.END_OF_TEXT, tokens.END_OF_HUMAN,
                                          tokens.START_OF_AI, tokens.START_OF_SPEECH]
    assert ids[-2:] == [tokens.END_OF_SPEECH, tokens.END_OF_AI]
    assert len(ids) == n_text + 7 + 4 * len(codes)
    assert ex.labels == ids
    np.testing.assert_array_equal(tokens.parse_codes(ids), codes)


@given(text_st, codes_st)
def test_audio_only_loss_masks_the_prompt(text_ids, codes):
    ex = tokens.build_example(text_ids, codes, loss_on="audio")
    prompt = len(text_ids) + 5
    assert ex.labels[:prompt] == [tokens.IGNORE_INDEX] * prompt
    assert ex.labels[prompt:] == ex.input_ids[prompt:]


def test_bos_is_added_once():
    ex = tokens.build_example([50, 51], np.zeros((1, 4), dtype=int))
    assert ex.input_ids[:4] == [tokens.START_OF_HUMAN, tokens.BOS, 50, 51]
    assert tokens.with_bos([tokens.BOS, 7]) == [tokens.BOS, 7]


def test_tag_is_lower_cased_and_prefixed():
    assert tokens.format_text("Moin!", "DE_Hessian") == "de_hessian: Moin!"
    assert tokens.format_text("Moin!", None) == "Moin!"
    assert tokens.format_text("Moin!", "  ") == "Moin!"


@given(codes_st)
def test_dropping_repeated_frames(codes):
    if len(codes):  # plant repeats
        codes = np.repeat(codes, 2, axis=0)
    kept = tokens.drop_repeated_frames(codes)
    assert not any((kept[i] == kept[i - 1]).all() for i in range(1, len(kept)))
    np.testing.assert_array_equal(tokens.drop_repeated_frames(kept), kept)
    if len(codes):
        np.testing.assert_array_equal(kept[0], codes[0])
        assert len(kept) <= len(codes) // 2
    ex = tokens.build_example([tokens.BOS], codes, drop_repeats=True)
    np.testing.assert_array_equal(tokens.parse_codes(ex.input_ids), kept)


def test_build_example_rejects_bad_codes():
    with pytest.raises(DataError, match="shape"):
        tokens.build_example([tokens.BOS], np.zeros((3, 5), dtype=int))
    with pytest.raises(DataError, match="0..4031"):
        tokens.build_example([tokens.BOS], np.full((1, 4), 4032))


@given(mixed_st, st.sampled_from([1.0, 0.5]))
def test_frame_positions_follow_the_definition(ids, step):
    np.testing.assert_allclose(tokens.frame_positions(ids, step), brute_positions(ids, step))


@given(text_st, codes_st, st.sampled_from([1.0, 0.5]))
def test_frame_tokens_share_a_position(text_ids, codes, step):
    ids = tokens.build_example(text_ids, codes, drop_repeats=False).input_ids
    pos = tokens.frame_positions(ids, step)
    first_audio = len(text_ids) + 5
    audio_pos = pos[first_audio:first_audio + 4 * len(codes)].reshape(-1, 4)
    assert (audio_pos == audio_pos[:, :1]).all()
    np.testing.assert_allclose(np.diff(audio_pos[:, 0]), step)
    assert (np.diff(pos) >= 0).all()


@given(mixed_st.filter(len), st.sampled_from([1.0, 0.5]))
def test_speaker_slot_shifts_positions(ids, step):
    plain = tokens.frame_positions(ids, step)
    slotted = tokens.frame_positions(ids, step, speaker_slot=True)
    assert len(slotted) == len(plain) + 1
    assert slotted[0] == plain[0] and slotted[1] == plain[0] + 1
    np.testing.assert_allclose(slotted[2:], plain[1:] + 1)


@settings(max_examples=200)
@given(mixed_st, st.sampled_from([1.0, 0.5]), st.booleans())
def test_streaming_positions_equal_training_positions(ids, step, slot):
    tracker = tokens.PositionTracker(step, speaker_slot=slot)
    streamed = tracker.extend(ids)
    full = tokens.frame_positions(ids, step, speaker_slot=slot)
    expected = np.delete(full, 1) if slot and len(ids) else full
    np.testing.assert_allclose(streamed, expected)


def test_parse_keeps_whole_frames_between_speech_markers():
    audio = tokens.codes_to_tokens(np.array([[1, 2, 3, 4], [5, 6, 7, 8]]))
    ids = [9, tokens.START_OF_SPEECH, *audio, audio[0], tokens.END_OF_SPEECH, *audio]
    np.testing.assert_array_equal(tokens.parse_codes(ids), [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert tokens.parse_codes([tokens.START_OF_SPEECH]).shape == (0, 4)


def test_parse_rejects_tokens_of_the_wrong_codebook():
    audio = tokens.codes_to_tokens(np.array([[1, 2, 3, 4], [5, 6, 7, 8]]))
    swapped = [audio[0], audio[2], audio[1], audio[3], *audio[4:]]
    with pytest.raises(DataError, match="frame 0, codebook 1"):
        tokens.parse_codes([tokens.START_OF_SPEECH, *swapped])
    text_inside = [*audio[:4], 500, *audio[4:]]
    assert tokens.parse_codes(text_inside, strict=False).tolist() == [[1, 2, 3, 4]]


def test_prompt_matches_official_inference_prompt():
    assert tokens.prompt_ids([tokens.BOS, 10]) == [
        64403, 1, 10, 2, 64404, 64405, 64401]
    assert tokens.prompt_ids([10], prefill_speech=False) == [64403, 1, 10, 2, 64404]
