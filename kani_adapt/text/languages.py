"""The per-language readings of the text frontend (:mod:`kani_adapt.text.frontend`).

A language is one :class:`Language` entry: how it writes decimals and thousands, its words for
currencies, symbols and units, its abbreviations and months, and how it says a number, an
ordinal, a year and a clock time. Cardinals come from num2words where it knows the language;
Swahili, which num2words lacks, is spelled here (regular: ``elfu mbili na ishirini na nne``).
A language not listed keeps its digits (the frontend warns once).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable


def _n2w(n: int, lang: str, to: str = "cardinal") -> str:
    from num2words import num2words

    return num2words(n, lang=lang, to=to)


SW_UNITS = ["sifuri", "moja", "mbili", "tatu", "nne", "tano", "sita", "saba", "nane", "tisa"]
SW_TENS = {10: "kumi", 20: "ishirini", 30: "thelathini", 40: "arobaini", 50: "hamsini",
           60: "sitini", 70: "sabini", 80: "themanini", 90: "tisini"}


def swahili(n: int) -> str:
    """Swahili cardinal: 21 ``ishirini na moja``, 350 ``mia tatu na hamsini``, 2024 ``elfu mbili
    na ishirini na nne``."""
    if n < 0:
        return "hasi " + swahili(-n)
    if n < 10:
        return SW_UNITS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return SW_TENS[tens * 10] + (f" na {SW_UNITS[unit]}" if unit else "")
    for size, word in ((10**9, "bilioni"), (10**6, "milioni"), (1000, "elfu"), (100, "mia")):
        if n >= size:
            head, rest = divmod(n, size)
            text = f"{word} {swahili(head)}"
            return text + (f" na {swahili(rest)}" if rest and rest < 100 else
                           f" {swahili(rest)}" if rest else "")
    raise AssertionError(n)


def _de_year(n: int) -> str:
    if 1100 <= n < 2000:
        hundreds, rest = divmod(n, 100)
        return _n2w(hundreds, "de") + "hundert" + (_n2w(rest, "de") if rest else "")
    return _n2w(n, "de")


def _de_time(h: int, m: int) -> str:
    return f"{_n2w(h, 'de')} Uhr" + (f" {_n2w(m, 'de')}" if m else "")


def _en_time(h: int, m: int) -> str:
    if m == 0:
        return f"{_n2w(h, 'en')} o'clock"
    return f"{_n2w(h, 'en')} " + (f"oh {_n2w(m, 'en')}" if m < 10 else _n2w(m, "en"))


def _sw_time(h: int, m: int) -> str:
    # Clock reading as written (24-hour), not the Swahili day clock: says what the digits say.
    return f"saa {swahili(h)}" + (f" na dakika {swahili(m)}" if m else "")


@dataclass(frozen=True)
class Language:
    code: str
    cardinal: Callable[[int], str]
    ordinal: Callable[[int], str]
    year: Callable[[int], str]
    time: Callable[[int, int], str]
    decimal: str  # decimal separator
    group: str  # thousands separator
    point: str  # the word said for the decimal separator
    minus: str
    currencies: dict[str, tuple[str, str]]  # symbol or code -> (unit, hundredth)
    symbols: dict[str, str]  # said wherever they stand
    units: dict[str, str]  # said after a number
    abbreviations: dict[str, str]  # written form -> spoken form (case-sensitive)
    months: tuple[str, ...]
    date: Callable[[str, str, str], str]  # (day ordinal, month name, year words) -> reading
    dative: tuple[str, ...] = ()  # words after which a German ordinal takes -n
    extra: dict = field(default_factory=dict)


DE = Language(
    code="de", cardinal=lambda n: _n2w(n, "de"), ordinal=lambda n: _n2w(n, "de", "ordinal"),
    year=_de_year, time=_de_time, decimal=",", group=".", point="Komma", minus="minus",
    currencies={"€": ("Euro", "Cent"), "EUR": ("Euro", "Cent"), "$": ("Dollar", "Cent"),
                "USD": ("Dollar", "Cent"), "£": ("Pfund", "Pence"), "CHF": ("Franken", "Rappen")},
    symbols={"%": "Prozent", "&": "und", "§": "Paragraf", "°C": "Grad Celsius", "°": "Grad",
             "+": "plus", "=": "gleich", "@": "at"},
    units={"km/h": "Kilometer pro Stunde", "km": "Kilometer", "kg": "Kilogramm",
           "cm": "Zentimeter", "mm": "Millimeter", "m": "Meter", "g": "Gramm", "l": "Liter"},
    abbreviations={"z. B.": "zum Beispiel", "z.B.": "zum Beispiel", "d. h.": "das heißt",
                   "d.h.": "das heißt", "u. a.": "unter anderem", "u.a.": "unter anderem",
                   "usw.": "und so weiter", "bzw.": "beziehungsweise", "ca.": "circa",
                   "Nr.": "Nummer", "Dr.": "Doktor", "Prof.": "Professor", "Str.": "Straße",
                   "evtl.": "eventuell", "inkl.": "inklusive", "ggf.": "gegebenenfalls",
                   "Hr.": "Herr", "Fr.": "Frau"},
    months=("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
            "Oktober", "November", "Dezember"),
    date=lambda day, month, year: " ".join(p for p in (day, month, year) if p),
    dative=("am", "vom", "zum", "beim", "bis zum", "seit dem", "ab dem", "dem"),
)

EN = Language(
    code="en", cardinal=lambda n: _n2w(n, "en"), ordinal=lambda n: _n2w(n, "en", "ordinal"),
    year=lambda n: _n2w(n, "en", "year"), time=_en_time, decimal=".", group=",",
    point="point", minus="minus",
    currencies={"$": ("dollars", "cents"), "USD": ("dollars", "cents"), "£": ("pounds", "pence"),
                "GBP": ("pounds", "pence"), "€": ("euros", "cents"), "EUR": ("euros", "cents")},
    symbols={"%": "percent", "&": "and", "°C": "degrees Celsius", "°": "degrees", "+": "plus",
             "=": "equals", "@": "at"},
    units={"km/h": "kilometres per hour", "mph": "miles per hour", "km": "kilometres",
           "kg": "kilograms", "cm": "centimetres", "mm": "millimetres", "m": "metres",
           "g": "grams", "lb": "pounds"},
    abbreviations={"Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Dr.": "Doctor",
                   "Prof.": "Professor", "e.g.": "for example", "i.e.": "that is",
                   "etc.": "et cetera", "vs.": "versus", "No.": "number", "approx.": "approximately"},
    months=("January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December"),
    date=lambda day, month, year: f"the {day} of {month}" + (f" {year}" if year else ""),
)

SW = Language(
    code="sw", cardinal=swahili, ordinal=lambda n: "wa " + swahili(n), year=swahili,
    time=_sw_time, decimal=".", group=",", point="nukta", minus="hasi",
    currencies={"KSh": ("shilingi", "senti"), "TSh": ("shilingi", "senti"),
                "USh": ("shilingi", "senti"), "$": ("dola", "senti"), "€": ("yuro", "senti")},
    symbols={"%": "asilimia", "&": "na", "°C": "nyuzi joto", "+": "jumlisha", "=": "ni sawa na"},
    units={"km": "kilomita", "kg": "kilo", "m": "mita", "cm": "sentimita"},
    abbreviations={"k.m.": "kwa mfano", "n.k.": "na kadhalika", "Bw.": "Bwana", "Bi.": "Bibi",
                   "Dkt.": "Daktari", "Mh.": "Mheshimiwa"},
    months=("Januari", "Februari", "Machi", "Aprili", "Mei", "Juni", "Julai", "Agosti",
            "Septemba", "Oktoba", "Novemba", "Desemba"),
    # "tarehe tatu Mei": the day is a cardinal after "tarehe"
    date=lambda day, month, year: f"tarehe {day} {month}" + (f" {year}" if year else ""),
    extra={"day_cardinal": True, "percent_before": True, "unit_first": True,
           "collapse": ("tarehe", "saa", "asilimia")},
)

LANGUAGES = {lang.code: lang for lang in (DE, EN, SW)}


def num2words_language(code: str) -> Language | None:
    """A cardinal-only entry for a language num2words knows but this module does not list."""
    try:
        _n2w(1, code)
    except (ImportError, NotImplementedError, KeyError, OverflowError):
        return None
    return Language(code=code, cardinal=lambda n: _n2w(n, code),
                    ordinal=lambda n: _n2w(n, code), year=lambda n: _n2w(n, code),
                    time=lambda h, m: f"{_n2w(h, code)} {_n2w(m, code)}" if m else _n2w(h, code),
                    decimal=".", group="\u0000", point=".", minus="-", currencies={}, symbols={},
                    units={}, abbreviations={}, months=(), date=lambda d, m, y: f"{d} {m} {y}")


def language(code: str) -> Language | None:
    return LANGUAGES.get(code) or num2words_language(code)


def digits(text: str, lang: Language) -> str:
    """Every digit said on its own (phone numbers)."""
    return " ".join(lang.cardinal(int(c)) for c in re.sub(r"\D", "", text))
