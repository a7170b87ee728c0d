"""The rules of the text frontend's step 2, in the order they run (see :mod:`kani_adapt.text.frontend`).

Each rule is a regular expression and a reading built from one :class:`Language`; earlier rules
take what later ones would misread (a currency amount before its decimals, a phone number
before its digits). Pure functions of the text.
"""
from __future__ import annotations

import re

from kani_adapt.text.languages import Language, digits

_NUM = r"\d+"


def _words(pattern: dict[str, str]) -> str:
    return "|".join(re.escape(k) for k in sorted(pattern, key=len, reverse=True))


def _number(text: str, lang: Language) -> str:
    """A written number (``1.234,5`` in German, ``1,234.5`` in English) in words."""
    whole, _, frac = text.replace(lang.group, "").partition(lang.decimal)
    said = lang.cardinal(int(whole))
    return said + (f" {lang.point} {digits(frac, lang)}" if frac else "")


def _number_pattern(lang: Language) -> str:
    g, d = re.escape(lang.group), re.escape(lang.decimal)
    # a digit run is never cut: "5.501990" is not "5.501" and "990"
    return rf"\d{{1,3}}(?:{g}\d{{3}})+(?!\d)(?:{d}\d+)?|\d+{d}\d+|\d+"


def abbreviations(text: str, lang: Language) -> str:
    if not lang.abbreviations:
        return text
    pattern = rf"(?<!\w)(?:{_words(lang.abbreviations)})(?!\w)"
    return re.sub(pattern, lambda m: lang.abbreviations[m.group()], text)


def currencies(text: str, lang: Language) -> str:
    if not lang.currencies:
        return text
    sym, num = _words(lang.currencies), _number_pattern(lang)
    before = rf"(?<!\w)({sym})\s?({num})(?!\d)"
    after = rf"(?<![\d{re.escape(lang.decimal)}])({num})\s?({sym})(?!\w)"

    def say(amount: str, unit: str) -> str:
        big, small = lang.currencies[unit]
        whole, _, cents = amount.replace(lang.group, "").partition(lang.decimal)
        first = lang.extra.get("unit_first")  # Swahili: "shilingi mia mbili"
        out = f"{big} {lang.cardinal(int(whole))}" if first else f"{lang.cardinal(int(whole))} {big}"
        if cents and int(cents):
            hundredths = lang.cardinal(int(cents.ljust(2, "0")[:2]))
            out += f" na {small} {hundredths}" if first else f" {hundredths} {small}"
        return out
    text = re.sub(before, lambda m: say(m.group(2), m.group(1)), text)
    return re.sub(after, lambda m: say(m.group(1), m.group(2)), text)


def _day(n: int, lang: Language, dative: bool) -> str:
    if lang.extra.get("day_cardinal"):
        return lang.cardinal(n)
    word = lang.ordinal(n)
    if lang.code == "de":  # "der dritte", "am dritten", "dritter Mai"
        return word + {"weak": "", "dative": "n"}.get(dative, "r")
    return word


def _ends_with_word(before: str, words) -> bool:
    return any(before.endswith(w) and (len(before) == len(w) or not before[-len(w) - 1].isalnum())
               for w in words)


def _is_dative(text: str, start: int, lang: Language):
    """The German ending an ordinal takes from the word before it: "dative" (-n), "weak"
    (after der/die/das: no ending) or False (-r)."""
    before = text[:start].rstrip().lower()
    if _ends_with_word(before, lang.dative):
        return "dative"
    return "weak" if _ends_with_word(before, ("der", "die", "das")) else False


def dates(text: str, lang: Language) -> str:
    if not lang.months:
        return text

    def iso(m: re.Match) -> str:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            return m.group()
        return lang.date(_day(d, lang, _is_dative(text, m.start(), lang)), lang.months[mo - 1],
                         lang.year(y))
    text = re.sub(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)", iso, text)
    months = "|".join(lang.months)
    if lang.code == "de":
        def dotted(m: re.Match) -> str:
            d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if not (1 <= mo <= 12 and 1 <= d <= 31):
                return m.group()
            return lang.date(_day(d, lang, _is_dative(text, m.start(), lang)),
                             lang.months[mo - 1], lang.year(y))
        text = re.sub(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?!\d)", dotted, text)
        text = re.sub(rf"(?<![\d.])(\d{{1,2}})\.\s?({months})(?:\s(\d{{4}}))?(?!\d)",
                      lambda m: lang.date(_day(int(m.group(1)), lang,
                                               _is_dative(text, m.start(), lang)),
                                          m.group(2), lang.year(int(m.group(3)))
                                          if m.group(3) else ""), text)
    elif lang.code == "en":
        suffix = r"(?:st|nd|rd|th)?"
        text = re.sub(rf"(?<!\d)(\d{{1,2}}){suffix}\s({months}),?(?:\s(\d{{4}}))?(?!\d)",
                      lambda m: lang.date(lang.ordinal(int(m.group(1))), m.group(2),
                                          lang.year(int(m.group(3))) if m.group(3) else ""), text)
        text = re.sub(rf"({months})\s(\d{{1,2}}){suffix}(?:,?\s(\d{{4}}))?(?!\d)",
                      lambda m: f"{m.group(1)} {lang.ordinal(int(m.group(2)))}"
                                + (f", {lang.year(int(m.group(3)))}" if m.group(3) else ""), text)
    elif lang.code == "sw":
        text = re.sub(rf"(?<!\d)(\d{{1,2}})\s({months})(?:\s(\d{{4}}))?(?!\d)",
                      lambda m: lang.date(lang.cardinal(int(m.group(1))), m.group(2),
                                          lang.year(int(m.group(3))) if m.group(3) else ""), text)
    return text


def times(text: str, lang: Language) -> str:
    # "9:05 Uhr": the reading says "Uhr" itself, so a written one is taken with the time
    said_after = r"(?:\s?Uhr(?!\w))?" if lang.code == "de" else ""
    return re.sub(rf"(?<![\d:.,])([01]?\d|2[0-3]):([0-5]\d)(?![\d:]){said_after}",
                  lambda m: lang.time(int(m.group(1)), int(m.group(2))), text)


def phones(text: str, lang: Language) -> str:
    """``+49 151 2345678``, ``0151-2345678``: a leading + or 0 and 7+ digits, said digit by digit."""
    def say(m: re.Match) -> str:
        found = m.group()
        if len(re.sub(r"\D", "", found)) < 7:
            return found
        plus = lang.symbols.get("+", "plus") + " " if found.startswith("+") else ""
        return plus + digits(found, lang)
    return re.sub(r"(?<![\w.,])(?:\+\d|0\d)[\d \-/]{4,}\d(?![\d.,]\d)", say, text)


def ordinals(text: str, lang: Language) -> str:
    if lang.code == "en":
        return re.sub(r"(?<!\w)(\d+)(st|nd|rd|th)(?!\w)",
                      lambda m: lang.ordinal(int(m.group(1))), text)
    if lang.code == "de":  # "3. Platz": a number with a dot before a capitalised word
        return re.sub(r"(?<![\w.,])(\d{1,3})\.(?=\s[A-ZÄÖÜ])",
                      lambda m: _day(int(m.group(1)), lang, _is_dative(text, m.start(), lang)),
                      text)
    return text


def units_and_symbols(text: str, lang: Language) -> str:
    num = _number_pattern(lang)
    if lang.units:
        text = re.sub(rf"({num})\s?({_words(lang.units)})(?!\w)",
                      lambda m: f"{m.group(1)} {lang.units[m.group(2)]}", text)
    if lang.extra.get("percent_before"):  # "asilimia kumi": the word comes first in Swahili
        text = re.sub(rf"({num})\s?%", lambda m: f"{lang.symbols['%']} {m.group(1)}", text)
    if lang.symbols:
        text = re.sub(_words(lang.symbols), lambda m: f" {lang.symbols[m.group()]} ", text)
    return text


def numbers(text: str, lang: Language) -> str:
    num = _number_pattern(lang)
    text = re.sub(rf"(?<![\w\d])-({num})", lambda m: f"{lang.minus} {m.group(1)}", text)

    def say(m: re.Match) -> str:
        value = m.group()
        plain = value.isdigit()
        if plain and len(value) > 1 and value.startswith("0"):  # "089", "007": a code, digit by digit
            return digits(value, lang)
        if plain and len(value) == 4 and 1100 <= int(value) <= 1999:
            return lang.year(int(value))
        return _number(value, lang)
    return re.sub(num, say, text)  # leftmost first: every digit run is read whole


# abbreviations twice: a symbol said as a word can free one that touched it ("°Cz.B.")
RULES = (abbreviations, currencies, dates, times, phones, ordinals, units_and_symbols, numbers,
         abbreviations)


def spell(text: str, lang: Language) -> str:
    for rule in RULES:
        text = rule(text, lang)
    for word in lang.extra.get("collapse", ()):  # "Tarehe 3 Mei": "tarehe" said once
        text = re.sub(rf"(?i)\b({word})(?:\s+{word}\b)+", r"\1", text)
    return text
