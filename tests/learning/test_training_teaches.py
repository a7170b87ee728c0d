"""Training teaches: a tiny generator trained by `kani-adapt train` on real tiny-codec speech says
its rows back, follows their tags and voices, learns new rows through LoRA, and forgets old ones
unless they are replayed.

The rows are espeak-ng phrases (1-1.5 s, 11-15 frames each after repeat-dropping) encoded by the
tiny codec, with speaker embeddings from the tiny embedder. Three rows share the text "guten
morgen": two differ only by tag, two only by speaker, so a model that ignored either could not
say all of them back. Everything goes through the commands a user runs (train, export, generate)
and, for the memorised base, through the official runtime's own prompt path.

The LoRA step adapts to a new accent tag, as users do: a real base has seen every codec code, so
the tiny base is pretrained on set B's recordings (under ``en_scotland`` and other texts) besides
set A, and the LoRA teaches the same recordings with their own texts under ``en_glasgow``, which
the base does not say. (A base that never saw a code cannot be taught it by LoRA: continued pretraining pushes
the tied embedding rows of unseen codes together, so they cannot be told apart.)
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.learning import world as W

pytestmark = pytest.mark.slow

SET_A = [  # memorised by continued pretraining
    W.Line("guten morgen", "de", "de", "anna"),
    W.Line("guten morgen", "en_scotland", "en-gb-scotland", "anna"),  # same text and voice, other tag
    W.Line("guten morgen", "de", "de+f4", "clara"),  # same text and tag, other voice
    W.Line("the boat is late", "en_scotland", "en-gb-scotland+m4", "clara"),
]
SET_B = [  # taught by LoRA afterwards, with a tag the base never saw
    W.Line("mind the step", "en_glasgow", "en-gb-scotland+m4", "clara"),
    W.Line("a cup of tea", "en_glasgow", "en-gb-scotland", "anna"),
]
# The base hears set B's recordings (so it has seen their codes) under other texts: a base that
# had them under their own texts says them under any tag of the same language, "en_glasgow"
# included (measured: one row word for word), and the LoRA would have nothing left to teach.
OTHER_TEXTS = ("the hills are green", "bring an umbrella")
BASE_LANGUAGE = [W.Line(other, "en_scotland", line.voice, line.speaker, said=line.text)
                 for other, line in zip(OTHER_TEXTS, SET_B)]
CPT_STEPS, CPT_LR = 200, 5e-3
LORA_STEPS, LORA_LR = 150, 5e-3
LORA = {"lora.targets": "all_linear", "lora.dropout": 0.0}
# Measured in this world: without replay the LoRA keeps none of set A's frames (generation leaves
# them from the first frame), with half the batches replayed all of them.
FORGOTTEN_BELOW, KEPT_ABOVE = 0.6, 0.9
CERTAIN = 0.9  # two rows the model cannot tell apart share about 0.5 where they part


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    voices = W.voices(SET_A + SET_B)
    rows_a, rows_b = W.rows(SET_A, voices), W.rows(SET_B, voices)
    data_a = W.write_dataset(rows_a, root / "set_a")
    data_b = W.write_dataset(rows_b, root / "set_b")
    pretraining = W.write_dataset(rows_a + W.rows(BASE_LANGUAGE, voices), root / "pretraining")
    W.train(root / "base_run", pretraining, "tiny", "full", CPT_STEPS, CPT_LR)
    base = W.export(root / "base_run", root / "base")
    return {"root": root, "a": rows_a, "b": rows_b, "data_a": data_a, "data_b": data_b,
            "base": base}


def test_the_rows_are_real_speech_codes_that_differ(world):
    codes = [W.codes_of(r) for r in world["a"]]
    assert all(len(c) >= 10 for c in codes)  # many frames per row, not one
    assert all(len(np.unique(c[:, 0])) >= len(c) // 2 for c in codes)
    same_text = codes[:3]
    assert all(len(a) != len(b) or not np.array_equal(a, b)
               for i, a in enumerate(same_text) for b in same_text[i + 1:])


def test_memorised_rows_are_said_back_exactly_and_stop_at_end_of_speech(world):
    out = world["root"] / "said"
    for row in world["a"]:
        got, want = W.generate(world["base"], row, out), W.codes_of(row)
        assert got.shape == want.shape and np.array_equal(got, want), row["text"]


def test_the_official_runtime_says_them_back_through_its_own_prompt_path(world):
    from kani_adapt.codec.tiny import cached_file
    from tests.conformance import official

    kani, player = official.runtime(world["base"], cached_file())
    for row in world["a"]:
        got = official.runtime_codes(kani, player, row["text"], row["tag"], row["speaker_emb"])
        want = W.codes_of(row)
        assert got.shape == want.shape and np.array_equal(got, want), row["text"]


def test_generation_follows_the_tag_and_the_speaker(world):
    first, other_tag, other_voice, _ = world["a"]
    out = world["root"] / "conditioning"
    with_tag = W.generate(world["base"], first, out, tag=other_tag["tag"])
    assert np.array_equal(with_tag, W.codes_of(other_tag))
    with_voice = W.generate(world["base"], first, out, speaker=other_voice)
    assert np.array_equal(with_voice, W.codes_of(other_voice))


def test_the_rows_are_memorised_through_their_conditioning_not_by_a_tie_break(world):
    """Greedy decoding can say both rows of one prompt back by luck when training ignored what
    tells them apart (a tie broken by an untrained projection): each token of each row is
    certain only when the tag and voice were learned."""
    assert min(W.least_likely(world["base"], row) for row in world["a"]) > CERTAIN


def _lora(world, name: str, **extra):
    root = world["root"]
    W.train(root / name, world["data_b"], world["base"], "lora", LORA_STEPS, LORA_LR,
            **LORA, **extra)
    merged = W.export(root / name, root / f"{name}_merged")
    out = root / f"{name}_said"
    learned = [W.frame_accuracy(W.generate(merged, r, out), W.codes_of(r)) for r in world["b"]]
    kept = [W.frame_accuracy(W.generate(merged, r, out), W.codes_of(r)) for r in world["a"]]
    return learned, float(np.mean(kept))


def test_the_base_does_not_say_a_new_tag_row_the_lora_then_teaches(world):
    """Measured: the base says set B's first recording frame for frame under the new tag, for a
    text it never read (also when it had heard that recording in the other set B speaker's
    voice): it is where this base goes for an unknown prompt. The second row it does not say,
    so the LoRA's teaching shows there (the LoRA test requires every row said back)."""
    out = world["root"] / "base_on_b"
    said = [W.frame_accuracy(W.generate(world["base"], r, out), W.codes_of(r)) for r in world["b"]]
    assert min(said) < 0.5, said


def test_lora_teaches_new_rows_and_forgets_old_ones_without_replay(world):
    learned, kept = _lora(world, "lora_plain")
    assert learned == [1.0] * len(world["b"])
    assert kept < FORGOTTEN_BELOW, f"set A kept {kept:.2f} of its frames without replay"


def test_replay_of_the_old_rows_keeps_them(world):
    learned, kept = _lora(world, "lora_replay", **{"data.replay": world["data_a"],
                                                   "data.replay_ratio": 0.5})
    assert min(learned) >= KEPT_ABOVE
    assert kept >= KEPT_ABOVE, f"set A kept only {kept:.2f} of its frames with replay"
