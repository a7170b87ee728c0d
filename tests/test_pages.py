"""The page kit and the one place untrusted text is made safe: Markdown that shows what was
typed wherever it is rendered, pages whose policy lets only their own script run, contributor
Markdown without raw HTML or script links. (Whole pages in a real browser:
tests/hostile/test_pages_in_browser.py.)"""
import base64
import hashlib
import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kani_adapt.pages import html as pages
from kani_adapt.core.untrusted import (
    BIDI, Md, md, md_code, md_table, safe_markdown, visible,
)

HOSTILE = ["<img src=x onerror=window.__pwned=1>", "<svg onload=window.__pwned=2>",
           '"><script>window.__pwned=3</script>', "<img src=x onerror=a=1;window.__pwned=4 alt=a=b>",
           "<a href=javascript:alert(1)>x</a>", "[x](javascript:alert(1))", "`code` | pipe",
           "a\u202eevil\u2066", "line\nbreak\x1b[2J", "&lt;img&gt; &amp;", "**bold** _em_ ~~gone~~",
           "[site](https://example.org) ![beacon](http://127.0.0.1:9/b.png)", "<div onmouseover=alert(1) x",
           "<script src=x", "<!-- hide the rest", "<https://example.org>"]
# What a stranger's renderer does with our Markdown: CommonMark with raw HTML on, GFM tables and
# strikethrough (what GitHub and the Hub show), and one that also trusts every link target as
# written (markdown-it refuses javascript: itself; other renderers may not).
STRANGERS = {}


def stranger(text: str, trusting: bool = False) -> str:
    if trusting not in STRANGERS:
        from markdown_it import MarkdownIt
        renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
        if trusting:
            renderer.validateLink = lambda url: True
            renderer.normalizeLink = lambda url: url
        STRANGERS[trusting] = renderer
    return STRANGERS[trusting].render(text)


def tags(rendered: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<([A-Za-z][A-Za-z0-9]*)", rendered)}


def test_visible_spells_out_control_and_bidi_characters_and_keeps_the_rest():
    assert visible("a\u202eb") == "a\\u202eb" and visible("x\x1b[0m\x00\x85") == "x\\u001b[0m\\u0000\\u0085"
    assert all(visible(c) == f"\\u{ord(c):04x}" for c in BIDI + "\u200e\u200f\u2028\x7f")
    assert visible("a\nb\tc", keep="\n") == "a\nb\\u0009c" and visible(None) == ""
    # what is printable stays: accents, other scripts, joiners inside words, emoji
    for text in ("Grüße aus Köln", "مرحبا بالعالم", "नमस्ते", "می\u200cخواهم", "👩\u200d🔬"):
        assert visible(text) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_an_escaped_cell_shows_exactly_what_was_typed_and_makes_no_element(text):
    rendered = stranger("\n".join(md_table(["name", "n"], [[text, 1]])), trusting=True)
    assert tags(rendered) == {"table", "thead", "tbody", "tr", "th", "td"}
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.S)
    assert html.unescape(cells[0]) == visible(text) and cells[1] == "1"
    # at the start of a line (a list item: the verdicts, the speakers of eval.md)
    item = stranger(f"- {md(text)}\n\nafter\n", trusting=True)
    assert tags(item) == {"ul", "li", "p"}
    assert html.unescape(re.search(r"<li>(.*?)</li>", item, re.S).group(1)) == visible(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>&|\\`*_~[]()!#-+:;=\"' ab1\u202e\n\t")), max_size=24))
def test_any_text_in_a_table_cell_or_a_sentence_is_shown_as_typed(text):
    rendered = stranger("\n".join(md_table(["a"], [[text]])))
    assert tags(rendered) == {"table", "thead", "tbody", "tr", "th", "td"}
    cell = re.search(r"<tbody>\s*<tr>\s*<td>(.*?)</td>", rendered, re.S)
    assert html.unescape(cell.group(1) if cell else "") == visible(text).strip(" \t")
    sentence = stranger(f"Speaker {md(text)} was kept.", trusting=True)
    assert tags(sentence) == {"p"} and html.unescape(sentence) == f"<p>Speaker {visible(text)} was kept.</p>\n"
    item = stranger(f"- {md(text)}\n", trusting=True)
    assert tags(item) <= {"ul", "li"}


def test_our_own_markdown_passes_and_code_spans_hold_any_backticks():
    assert md(Md("**Warning:**")) == "**Warning:**" and md_table(["x"], [[Md("`a`")]])[2] == "| `a` |"
    for text in ("a`b", "``x``", "`", "<img src=x>", "a\u202e"):
        rendered = stranger(f"file {md_code(text)} ok")
        assert re.fullmatch(r"<p>file <code>(.*)</code> ok</p>\n", rendered, re.S)
        assert html.unescape(re.search("<code>(.*)</code>", rendered).group(1)).strip() == visible(text).strip()


def test_the_summary_of_a_page_keeps_tables_and_drops_raw_html_and_script_links():
    rendered = str(pages.markdown_html(
        "# Report\n\n<img src=x onerror=window.__pwned=1>\n\n<!-- listening:begin -->\n"
        "[x](javascript:alert(1)) [ok](https://example.org)\n\n| a |\n|---|\n| <b>x</b> |\n"
        "<!-- listening:end -->\n\n![hist](hist.png)\n\nbad\u202eside\n"))
    assert "<h1>Report</h1>" in rendered and "<table>" in rendered and "<td>&lt;b&gt;x&lt;/b&gt;</td>" in rendered
    assert "&lt;img src=x onerror=window.__pwned=1&gt;" in rendered and "<img src=\"x\"" not in rendered
    assert "javascript:" not in re.sub(r"\[x\]\(javascript:alert\(1\)\)", "", rendered)
    assert 'href="https://example.org"' in rendered and '<img src="hist.png" alt="hist">' in rendered
    assert "listening:" not in rendered and "bad\\u202eside" in rendered and "\u202e" not in rendered


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_a_page_allows_only_its_own_script_and_style_and_nothing_from_the_network(tmp_path):
    table = pages.ClipTable(["clip", "audio"], filters=["speaker"])
    name = '"><script>window.__pwned=1</script>\u202e'
    table.add({"speaker": name}, {"clip": [pages.text(name), pages.text(name, "flag")],
                                  "audio": [pages.clip("a%20b.wav", "a.png", name)]})
    doc = pages.page("<b>title</b>", "# Sum", [pages.Section("Listen", name, table)])
    head = doc.split("<head>", 1)[1]
    assert head.lstrip().startswith('<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy"')
    policy = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', doc).group(1))
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    scripts = re.findall(r"<script>(.*?)</script>", doc, re.S)
    styles = re.findall(r"<style>(.*?)</style>", doc, re.S)
    assert len(scripts) == 1 and len(styles) == 1  # the payload made no script element
    assert directives["script-src"] == _sha(scripts[0]) and directives["style-src"] == _sha(styles[0])
    assert directives["default-src"] == directives["object-src"] == directives["base-uri"] == "'none'"
    assert "unsafe" not in policy and "http" not in policy and "data:" not in policy
    assert directives["media-src"] == directives["img-src"] == "'self' file:"
    assert "<title>&lt;b&gt;title&lt;/b&gt;</title>" in doc and "\u202e" not in doc
    assert doc.count("&#34;&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;\\u202e") == 7  # every place it shows
    assert '<audio controls preload="metadata" src="a%20b.wav"></audio>' in doc
    # a page without tables has no script at all
    bare = pages.page("t", "x", [pages.Section("s", "i")])
    assert "<script" not in bare and "script-src 'none'" in html.unescape(bare)


CARD_BODIES = {
    "script": "<script>alert(1)</script>",
    "img": "Hi <img src=x onerror=alert(1)> there",
    "svg block": "<svg onload=alert(1)>\n\ntext",
    "comment": "<!-- <script>alert(1)</script> -->",
    "link": "[click](javascript:alert(1))",
    "upper": "[click](JaVaScRiPt:alert(1))",
    "entity": "[click](javascript&#58;alert(1))",
    "tab": "[click](<java\tscript:alert(1)>)",
    "escaped colon": "[click](javascript\\:alert(1))",
    "angle": "[click](<javascript:alert(1)>)",
    "spaces": "[click](   vbscript:msgbox(1) \"t\")",
    "data image": "![x](data:image/svg+xml;base64,PHN2Zz4=)",
    "nested text": "[a [b] c](javascript:alert(1))",
    "reference": "[click][r]\n\n[r]: javascript:alert(1)",
    "reference next line": "[click][r]\n\n[r]:\n  javascript:alert(1) 'title'",
    "autolink": "<javascript:alert(1)>",
    "raw anchor": '<a href="javascript:alert(1)">x</a>',
    "after a list fence": "- item\n\n   ```\n<script>alert(1)</script>\n",
}


@pytest.mark.parametrize("body", CARD_BODIES.values(), ids=CARD_BODIES)
def test_a_contributors_card_body_loses_raw_html_and_script_links(body):
    rendered = stranger(safe_markdown(body), trusting=True)
    assert not tags(rendered) - {"p", "a", "ul", "li", "pre", "code", "em", "strong", "img"}
    for target in re.findall(r'(?:href|src)="([^"]*)"', rendered):
        url = re.sub(r"[\t\n\r]", "", html.unescape(target)).strip("\x00- ")  # as a browser reads it
        assert not re.match(r"(javascript|vbscript|data):", url, re.I), target
    assert not re.search(r"<[^>]*\son\w+=", rendered)


def test_a_dropped_link_keeps_its_text_and_loses_its_whole_target():
    assert safe_markdown("[click](javascript:alert(1)) and [x](<vbscript:y> 't') end") == "[click] and [x] end"


def test_a_card_body_keeps_its_markdown_and_web_links():
    body = ("# Glasgow speech\n\nRead by **three** people; see [the site](https://example.org/a_(b)) "
            "and [mail](mailto:x@example.org), [notes](docs/notes.md).\n\n| speaker | hours |\n"
            "|---|---|\n| s1 | 1.0 |\n\n> quoted\n\n```\nplain code\n```\n")
    kept = safe_markdown(body)
    assert kept == body
    rendered = stranger(kept)
    assert {"h1", "strong", "a", "table", "blockquote", "pre"} <= tags(rendered)
    assert 'href="https://example.org/a_(b)"' in rendered and 'href="docs/notes.md"' in rendered


@pytest.mark.parametrize("page", ["eval", "codec"])
def test_a_pages_picture_of_a_long_recording_is_drawn_from_its_start_in_bounded_memory(
        tmp_path, page):
    """The eval and codec-check pages picture a reference of minutes (or hours) by its first
    PICTURE_SECONDS, decoded no further, while the player keeps the whole file."""
    import tracemalloc

    import numpy as np
    import soundfile as sf

    from kani_adapt.codec.page import _cell
    from kani_adapt.eval.page import clip_cell

    rate, seconds = 22050, 300  # drawn whole: some 700 MB of spectrogram arrays
    wav = tmp_path / "wavs" / "recording" / "long.wav"
    wav.parent.mkdir(parents=True)
    with sf.SoundFile(wav, "w", rate, 1, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(np.zeros(10 * rate, np.float32))
    tracemalloc.start()
    try:
        parts = (clip_cell if page == "eval" else _cell)(tmp_path, wav)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2 ** 20, f"{peak / 2 ** 20:.0f} MB"
    assert parts[0].audio == "wavs/recording/long.wav"  # the whole file plays
    assert (tmp_path / parts[0].picture).stat().st_size > 0
