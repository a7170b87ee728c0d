"""A tiny world where a supervised generator derails on short prompts, and the double of a
recogniser that reads memorised code sequences back to their words.

Every word of a small lexicon is one fixed frame of codes; an utterance is its words' frames in
order (12.5 frames/s: 0.08 s a word). The supervised generator is trained (maximum likelihood of
the utterances under its sampling policy, end of speech included) on texts of 3 to 9 words
only, as a corpus of read sentences is; on one-word prompts it runs on well past their length,
which is the derailment upstream measured on one-word prompts.
"""
from __future__ import annotations

import numpy as np
import torch

from kani_adapt import dataset, tokens
from kani_adapt.models.generator.bundle import Generator
from kani_adapt.models.generator.checkpoint import save_checkpoint
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training import trajectory
from tests.helpers import tiny_generator

TAG = "de"
WORDS = "ama bel cor dun eli fam gor hin ilo jup kar lem".split()


class World:
    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.lexicon = {w: rng.integers(0, tokens.CODEBOOK_SIZE, 4) for w in WORDS}
        self.long = [" ".join(rng.choice(WORDS, n)) for n in (6, 7, 8, 9, 6, 7)]
        self.medium = [" ".join(rng.choice(WORDS, n)) for n in (3, 4, 3, 4)]
        self.voices = {f"v{k}": (v / np.linalg.norm(v)).astype(np.float32)
                       for k, v in enumerate(rng.standard_normal((2, 128)))}
        # one-word prompts (where upstream's supervised model failed 91.5 %), never trained on
        order = rng.permutation(WORDS).tolist()
        self.short_train, self.short_held = order[:6], order[6:]

    def codes(self, text: str) -> np.ndarray:
        return np.stack([self.lexicon[w] for w in text.split()]).astype(np.int64)

    def rows(self) -> list[dict]:
        out = []
        for k, text in enumerate(self.long + self.medium):
            name = sorted(self.voices)[k % 2]
            codes = self.codes(text)
            out.append(dataset.make_row(text, TAG, codes, name, self.voices[name], self.voices[name],
                                        len(codes) / tokens.FRAMES_PER_SECOND, f"tiny/{k}"))
        return out

    def transcribe(self, codes, tags) -> list[str]:
        """The recogniser double: each frame read back as the word it is, an unknown frame as a
        mumble (a real recogniser writes something for babble too), nothing for no frames."""
        by_code = {tuple(v.tolist()): w for w, v in self.lexicon.items()}
        return [" ".join(by_code.get(tuple(f.tolist()), "mm") for f in np.asarray(c).reshape(-1, 4))
                for c in codes]


def supervised(world: World, steps: int = 60, seed: int = 0):
    """The tiny generator trained on the world's sentences (both voices) until it speaks them."""
    model, tok = tiny_generator(seed=seed)
    rolls = [trajectory.Rollout(tokens.prompt_ids(encode_text(tok, text, TAG)), world.codes(text),
                                False, world.voices[name])
             for text in world.long + world.medium for name in world.voices]
    batch = trajectory.batch(rolls)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        (-trajectory.logprobs(model, batch, floor=0.0).combined().mean()).backward()
        opt.step()
    model.eval()
    return Generator(model, tok)


def frame_accuracy(model, tok, world: World, texts: list[str]) -> float:
    """Teacher-forced share of codes the model ranks first (the constrained policy's argmax)."""
    hits = total = 0
    for name in world.voices:
        rolls = [trajectory.Rollout(tokens.prompt_ids(encode_text(tok, t, TAG)), world.codes(t),
                                    False, world.voices[name]) for t in texts]
        batch = trajectory.batch(rolls)
        with torch.no_grad():
            hidden = model.hidden_states(input_ids=batch["input_ids"],
                                         attention_mask=batch["attention_mask"],
                                         speaker_emb=batch["speaker_emb"])
        for i, r in enumerate(rolls):
            start = int(batch["audio_start"][i])
            for f, frame in enumerate(r.codes):
                for c in range(4):
                    at = start - 1 + 4 * f + c + 1  # + 1: the speaker slot
                    rows = trajectory.head_rows(model, torch.arange(tokens.CODEBOOK_SIZE)
                                                + tokens.AUDIO_TOKENS_START + c * tokens.CODEBOOK_SIZE)
                    hits += int(int((hidden[i, at] @ rows.T).argmax()) == int(frame[c]))
                    total += 1
    return hits / total


def save(world: World, generator: Generator, folder) -> tuple[str, str]:
    """(policy folder, dataset folder)."""
    from kani_adapt.core.atomic import write_folder

    policy = save_checkpoint(generator, folder / "sft", dtype="fp32", language_tags=[TAG])
    table = dataset.to_table(world.rows())
    data = folder / "data"
    write_folder(data, lambda tmp: table.save_to_disk(str(tmp)))
    return str(policy), str(data)
