"""kani-adapt: adapt KaniTTS2 to new languages and accents.

``from kani_adapt import normalize``: the text frontend every kani-adapt step applies (numbers,
dates, times, currencies, symbols spelled out per language), for users of the official runtime.
"""
from kani_adapt.text.frontend import normalize

__all__ = ["normalize"]
