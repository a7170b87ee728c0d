"""Names and free text that came from data (speaker, tag, source and file names, transcripts,
descriptions, listener names, card fields), made safe for where they are shown: the one place.

- :func:`visible` spells out control and bidi characters (``\\u202e``), so a name cannot reorder
  or hide what follows it on a page or a terminal, nor forge a new console line;
  :func:`visible_name` also the zero-width ones, for names (which :func:`hidden_in_name` flags).
- :func:`md` escapes what Markdown would read as markup (raw HTML, links, code, table cells),
  because eval.md, report.md and the Hub card are rendered by whatever their readers use.
- :class:`Md` marks Markdown that is ours (formatting we wrote), which :func:`md_table` keeps.

Pages escape HTML through their templates' autoescaping (``kani_adapt.pages.html``), which calls
:func:`visible` on every value it prints.
"""
from __future__ import annotations

import re
import unicodedata

# Bidi_Control characters (they reorder text) and the line/paragraph separators; every C0 and
# C1 control (DEL included) is spelled out too.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
SEPARATORS = "\u2028\u2029"
_HIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI}{SEPARATORS}]")
# Markdown: backslash escapes for what starts code, links, emphasis, strikethrough and table
# cells; entities for what starts raw HTML. An underscore inside a word (de_hessian) is never
# emphasis. At the start of a line (a list item), what would open a heading, a list or code.
_MD = re.compile(r"[\\`*~\[\]|]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LEADING = re.compile(r"^(?: |[#+-]|\d{1,9}(?=[.)]))", re.M)


def visible(text, keep: str = "") -> str:
    """``text`` with control and bidi characters spelled out as ``\\uXXXX`` (those in ``keep``,
    e.g. newlines of a whole document, stay); None is the empty string."""
    if text is None:
        return ""
    return _HIDDEN.sub(lambda m: m.group() if m.group() in keep else f"\\u{ord(m.group()):04x}",
                       str(text))


# What a name a stranger chose may not hold: every character not shown as itself (controls,
# bidi and zero-width format characters, line and paragraph separators); in a speaker or file
# name they make one name look like another. Free text keeps its zero-width joiners (scripts
# need them), so only names are held to this.
NAME_HIDDEN = ("Cc", "Cf", "Zl", "Zp")


def hidden_in_name(name: str) -> list[str]:
    """The characters of ``name`` not shown as themselves, as ``\\uXXXX``."""
    return [f"\\u{ord(c):04x}" for c in name if unicodedata.category(c) in NAME_HIDDEN]


def visible_name(name) -> str:
    """``name`` with every character :func:`hidden_in_name` finds written out (U+200B as
    ``\\u200b``), so what a contributor named is what a reviewer reads."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in NAME_HIDDEN else c
                   for c in visible(name))


class Md(str):
    """Markdown we wrote ourselves (``**Warning:**``, a code span made by :func:`md_code`):
    passed through unescaped where untrusted text would be escaped."""


def md(text, keep: str = "", line_start: bool = True) -> Md:
    """Untrusted text as Markdown that shows exactly that text: nothing in it becomes HTML, a
    link, code, emphasis or a new table cell, nor (``line_start``: it may begin a line) a
    heading, list or code block; controls spelled out (newlines too, unless kept)."""
    if isinstance(text, (Md, int, float)):
        return Md(text)
    text = re.sub("[&<>]", lambda m: _ENTITIES[m.group()], visible(text, keep))
    text = _MD.sub(lambda m: "\\" + m.group(), text)
    return Md(_LEADING.sub(_leading, text) if line_start else text)


def _leading(found: re.Match) -> str:
    """A leading space as an entity (no code block), ``#``/``-``/``+`` escaped, ``1.`` as
    ``1\\.`` (no list)."""
    mark = found.group()
    return "&#32;" if mark == " " else mark + "\\" if mark[0].isdigit() else "\\" + mark


def md_code(text) -> Md:
    """Untrusted text as a Markdown code span (a path, a hub id): its fence is longer than any
    run of backticks inside it. Code spans take no entities, so ``<`` and ``&`` show as typed."""
    text = visible(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Md(f"{fence}{pad}{text}{pad}{fence}")


def md_table(header: list, rows: list[list]) -> list[str]:
    """A Markdown table whose cells are escaped (:class:`Md` cells are kept as written)."""
    def row(cells) -> str:
        return "| " + " | ".join(md(c, line_start=False) for c in cells) + " |"
    return [row(header), "|" + "---|" * len(header)] + [row(r) for r in rows]


# The contributor's own Markdown (a dataset card body): kept as Markdown, but raw HTML shows as
# text and only web and mail links stay (javascript:, vbscript:, data:, file: ... are dropped).
LINK_SCHEMES = ("http", "https", "mailto")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # what opens an HTML tag, comment or declaration
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_REFERENCE = re.compile(r"^ {0,3}\[(?:\\.|[^\]\\])+\]:[ \t]*\n?[ \t]*(<[^>\n]*>|\S+)[^\n]*\n?",
                        re.M)


def _allowed(destination: str) -> bool:
    """Whether a link target is relative or uses a web or mail scheme, read the way a renderer
    and a browser read it (entities and backslash escapes decoded, tabs, newlines and controls
    dropped, case ignored)."""
    import html

    url = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", html.unescape(destination.strip("<>")))
    url = re.sub(r"[\x00-\x20\x7f]", "", url)
    scheme = _SCHEME.match(url)
    return scheme is None or scheme.group(1).lower() in LINK_SCHEMES


def _destination_end(text: str, start: int) -> int:
    """The end of a link destination starting at ``start`` (after ``](`` and blanks)."""
    if text.startswith("<", start):
        close = text.find(">", start)
        return len(text) if close < 0 else close + 1
    depth, i = 0, start
    while i < len(text) and not text[i].isspace():
        if text[i] == "\\":
            i += 1
        elif text[i] == "(":
            depth += 1
        elif text[i] == ")":
            if depth == 0:
                break
            depth -= 1
        i += 1
    return i


def _drop_inline_links(text: str) -> str:
    out, pos = [], 0
    for found in re.finditer(r"\]\(", text):
        if found.start() < pos:
            continue
        start = found.end() + len(re.match(r"\s*", text[found.end():]).group())
        end = _destination_end(text, start)
        if _allowed(text[start:end]):
            continue
        close = text.find(")", end)  # the link's end, after an optional title
        stop = close + 1 if close >= 0 and "\n\n" not in text[end:close] else end
        out += [text[pos:found.start() + 1]]  # keep the link text, drop "(target ...)"
        pos = stop
    return "".join(out) + text[pos:]


def safe_markdown(text: str) -> str:
    """A contributor's Markdown, safe to publish: raw HTML (``<script>``, ``<img onerror>``,
    comments) is escaped so it shows as typed, links and images whose target is not
    http(s), mailto or relative lose their target (their text stays), and control and bidi
    characters are spelled out (newlines and tabs stay)."""
    text = visible(text, keep="\n\t")
    text = _REFERENCE.sub(lambda m: m.group() if _allowed(m.group(1)) else "", text)
    text = _drop_inline_links(text)
    return _TAG_START.sub("&lt;", text)
