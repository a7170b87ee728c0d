"""A tag's facts (kani_adapt/text/tags.py): one entry per tag, and the one resolver from a tag to
its language."""
import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kani_adapt.config.typed import from_dict
from kani_adapt.core.errors import ConfigError
from kani_adapt.text import frontend
from kani_adapt.text.tags import Tag, Tags, asr_language_of, facts, language_of, only

ROOT = Path(__file__).resolve().parents[1]


def test_a_tag_s_language_is_its_entry_s_else_the_one_given_else_its_first_part():
    tags = {"gsw_zurich": Tag(language="gsw", asr_language="de"), "de_hessian": Tag()}
    assert language_of("gsw_zurich", tags) == "gsw"
    assert language_of("de_hessian", tags) == language_of("de_hessian") == "de"
    assert language_of("en-GB") == "en" and language_of("EN_glasgow") == "en"
    assert language_of("en_glasgow", tags, default="de") == "de"  # one language for every tag
    assert language_of("gsw_zurich", tags, default="en") == "gsw"  # the tag's own wins
    assert language_of(None) == language_of("") == ""
    assert asr_language_of("gsw_zurich", tags) == "de"  # Whisper has no Swiss German
    assert asr_language_of("sw_ke", tags) == "sw" and asr_language_of(None, tags) is None
    assert language_of("hessisch", {"hessisch": "de"}) == "de"  # a stored frontend's map


def test_the_text_frontend_reads_each_tag_in_its_language():
    front = frontend.Frontend(languages={"gsw_zurich": "de"})
    assert front.apply("3 Katzen", "gsw_zurich") == front.apply("3 Katzen", "de") == "drei Katzen"
    assert front.apply("3 cats", "en_glasgow") == "three cats"


@dataclass
class Section:
    tags: Tags = field(default_factory=dict)


def test_a_tags_section_takes_the_plain_string_form_as_a_description():
    cfg = from_dict(Section, {"tags": {"de_hessian": "German with a Hessian accent",
                                       "gsw": {"language": "gsw", "asr_language": "de"}}})
    assert cfg.tags == {"de_hessian": Tag(description="German with a Hessian accent"),
                        "gsw": Tag(language="gsw", asr_language="de")}
    with pytest.raises(ConfigError) as err:
        from_dict(Section, {"tags": {"de": {"language": "German", "accent": "x"}, "en": 3}},
                  where="c")
    msg = str(err.value)
    assert "c.tags.de: unknown key 'accent'" in msg and "did you mean 'accent_label'" in msg
    with pytest.raises(ConfigError, match=r"c.tags.de: language: 'German' is not a language code"):
        from_dict(Section, {"tags": {"de": {"language": "German"}}}, where="c")


def test_facts_fill_in_each_tag_s_language_and_only_keeps_what_a_stage_reads():
    tags = {"de_hessian": Tag(description="Hessian", accent_label="hessian"),
            "gsw": Tag(language="gsw", asr_language="de")}
    assert facts({"en", ""}, tags) == {
        "de_hessian": {"language": "de", "description": "Hessian", "asr_language": "de",
                       "accent_label": "hessian"},
        "en": {"language": "en", "description": "", "asr_language": "en", "accent_label": ""},
        "gsw": {"language": "gsw", "description": "", "asr_language": "de", "accent_label": ""}}
    assert only(tags, "language", "asr_language") == {"de_hessian": Tag(),
                                                      "gsw": Tag(language="gsw", asr_language="de")}


def _resolvers(path: Path) -> list[str]:
    """Functions and classes of ``path`` that turn a tag into a language: defined as one, or
    splitting a tag at "_"/"-" the way a resolver does."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))
             and n.name in ("language_of", "LanguageMap", "asr_language_of", "language_for_tag")]
    text = path.read_text(encoding="utf-8")
    if 're.split(r"[_\\-]"' in text or "tag.split(\"_\")" in text or ".split('_')[0]" in text:
        found.append("splits a tag")
    return found


def test_the_text_wing_holds_the_only_resolver_from_a_tag_to_its_language():
    sources = [p for package in ("kani_adapt", "data_tools") for p in (ROOT / package).rglob("*.py")]
    found = {str(p.relative_to(ROOT)): r for p in sources if (r := _resolvers(p))}
    assert found == {"kani_adapt/text/tags.py": ["language_of", "asr_language_of", "splits a tag"]}
