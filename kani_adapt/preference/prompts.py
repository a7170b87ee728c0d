"""Prompt sets for preference rounds: short-focused texts (1-6 words: words, numbers, names,
interjections, questions) where supervised models derail, and **regression anchors**
(already-good texts of every kind: casual, long, numbers and dates, punctuation-heavy) so a
round cannot trade one kind for another unseen. Each text carries its kind; the eval stage
reports failures by kind and by length bucket.

Built-in sets for German, English and Swahili; a user's own set is a JSONL file of
``{"text": "...", "kind": "short"}`` lines (``prompts.file``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kani_adapt.core.errors import DataError

SHORT_KINDS = ("short", "number", "name", "interjection", "question")
ANCHOR_KINDS = ("casual", "long", "numbers_dates", "punctuation", "resident")
KINDS = SHORT_KINDS + ANCHOR_KINDS
BUCKETS = ((1, 2), (3, 6), (7, 15), (16, 10_000))  # words, for the eval's length buckets


@dataclass(frozen=True)
class Prompt:
    text: str
    kind: str
    tag: str

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def bucket(self) -> str:
        low, high = next(b for b in BUCKETS if b[0] <= max(self.words, 1) <= b[1])
        return f"{low}-{high}" if high < 10_000 else f"{low}+"


BUILT_IN = {
    "de": {"short": ["Ja.", "Nein.", "Danke schön.", "Genau.", "Bis morgen.", "Alles klar.",
                     "Gute Nacht.", "Na gut."],
           "number": ["Zweiundvierzig.", "Um 7 Uhr.", "Seite 12.", "3,5 Kilo."],
           "name": ["Frau Schneider.", "Herr Öztürk?", "Frankfurt am Main."],
           "interjection": ["Ach so!", "Oje.", "Hm, naja.", "Prima!"],
           "question": ["Wirklich?", "Wie bitte?", "Wo bist du?", "Kommst du mit?"],
           "casual": ["Ich hab echt keine Lust mehr, heute noch einkaufen zu gehen."],
           "long": ["Der Zug nach Darmstadt fährt heute wegen Bauarbeiten erst um halb neun "
                    "ab, also haben wir noch genug Zeit für einen Kaffee am Bahnhof."],
           "numbers_dates": ["Am 3. Mai 2024 um 14:30 Uhr beginnt die Sitzung in Raum 12."],
           "punctuation": ["Moment – hast du das gehört? Nein... doch! Da war etwas."]},
    "en": {"short": ["Yes.", "No.", "Thanks.", "Got it.", "See you.", "Fine.", "Good night.",
                     "Right."],
           "number": ["Forty-two.", "At 7.", "Page 12.", "3.5 kilos."],
           "name": ["Mrs Patel.", "Mr O'Brien?", "Glasgow Central."],
           "interjection": ["Oh!", "Hmm.", "Well, well.", "Oops!"],
           "question": ["Really?", "Sorry?", "Where are you?", "Coming along?"],
           "casual": ["Honestly I can't be bothered going to the shops again today."],
           "long": ["The train to Edinburgh leaves late today because of the works on the line, "
                    "so we still have time for a coffee at the station."],
           "numbers_dates": ["On the 3rd of May 2024 at 2:30 pm the meeting starts in room 12."],
           "punctuation": ["Wait – did you hear that? No... yes! Something's there."]},
    "sw": {"short": ["Ndiyo.", "Hapana.", "Asante.", "Sawa.", "Karibu.", "Kwaheri.",
                     "Usiku mwema.", "Pole."],
           "number": ["Arobaini na mbili.", "Saa saba.", "Ukurasa 12.", "Kilo 3."],
           "name": ["Bi Wanjiru.", "Bwana Otieno?", "Dar es Salaam."],
           "interjection": ["Lo!", "Ehe.", "Haya basi.", "Kumbe!"],
           "question": ["Kweli?", "Samahani?", "Uko wapi?", "Utakuja?"],
           "casual": ["Leo sina hamu kabisa ya kwenda sokoni tena."],
           "long": ["Treni ya kwenda Morogoro itaondoka kwa kuchelewa leo kwa sababu ya "
                    "matengenezo ya reli, kwa hiyo bado tuna muda wa kunywa chai kituoni."],
           "numbers_dates": ["Tarehe 3 Mei 2024 saa nane na nusu mkutano utaanza chumba 12."],
           "punctuation": ["Subiri – umesikia hiyo? Hapana... ndiyo! Kuna kitu pale."]},
}


def built_in(language: str, tag: str) -> list[Prompt]:
    if language not in BUILT_IN:
        raise DataError(f"prompts.language {language!r}: no built-in set (there are "
                        f"{', '.join(sorted(BUILT_IN))}); give prompts.file, a JSONL of "
                        '{"text": ..., "kind": ...} lines')
    return [Prompt(text, kind, tag) for kind, texts in BUILT_IN[language].items() for text in texts]


def read_file(path: str | Path, tag: str) -> list[Prompt]:
    """A user's prompt set; a line that is not {"text": non-empty, "kind": one of KINDS} is a
    one-line error naming the file, the line and the fix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompts.file {path}: no such file")
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text, kind = str(item["text"]).strip(), str(item.get("kind", "short"))
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path} line {number}: not a JSON object with a text ({err})") from err
        if not text or kind not in KINDS:
            raise DataError(f"{path} line {number}: needs a non-empty text and a kind among "
                            f"{', '.join(KINDS)}")
        found.append(Prompt(text, kind, str(item.get("tag") or tag)))
    if not found:
        raise DataError(f"{path}: no prompts")
    return found


def split(found: list[Prompt], share: float, seed: int) -> tuple[list[Prompt], list[Prompt]]:
    """(train, eval): a seeded ``share`` of each kind's texts held out (at least one where a kind
    has two or more)."""
    import numpy as np

    rng = np.random.default_rng(seed + 7)
    train, held = [], []
    for kind in dict.fromkeys(p.kind for p in found):
        mine = [p for p in found if p.kind == kind]
        order = rng.permutation(len(mine))
        n = min(len(mine) - 1, max(1 if share > 0 else 0, int(round(share * len(mine)))))
        held += [mine[i] for i in order[:n]]
        train += [mine[i] for i in order[n:]]
    return train, held
