"""Self-contained HTML pages with audio players: the eval report, the data report and the codec
check share this kit. A page is one file that opens from disk; audio and pictures are files
beside it, named by relative links, so the folder can be copied or zipped as it is.

Pages come from a Jinja2 template (``pages/templates/page.html``) with autoescaping: every name
and text from data is escaped there, its control and bidi characters spelled out
(``core.untrusted.visible``). The summary on top is Markdown (eval.md and friends)
rendered by markdown-it-py with raw HTML off, then cleaned by nh3 (an allowlist sanitiser).
A Content-Security-Policy in the page lets only its own filter script (by hash) run, and
pictures and audio load only from local files (or the page's own server): nothing from the
network, no plugins, frames, forms or ``<base>``.

A table of clips gets one row per clip, players in its cells and filters (select boxes over
chosen columns) that hide the rows that do not match.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

TEMPLATES = Path(__file__).parent / "templates"
# Tags and attributes the summary Markdown may produce (headings, lists, tables, code, links,
# the report's histogram pictures); anything else is dropped by nh3.
SUMMARY_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "table", "thead",
                "tbody", "tr", "th", "td", "code", "pre", "em", "strong", "a", "img", "br", "hr",
                "blockquote"}
SUMMARY_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
# Our own marker comments in eval.md (the listening section) are not part of what is shown.
_MARKERS = re.compile(r"^<!-- [a-z]+:(begin|end) -->\n?", re.M)


@dataclass(frozen=True)
class Part:
    """One piece of a table cell: ``clip`` (a player and its spectrogram), ``heard`` (what ASR
    heard), a styled line (``muted``, ``flag``) or plain text (``kind`` empty)."""

    text: str = ""
    kind: str = ""
    audio: str = ""  # clip: relative URL of the sound
    picture: str = ""  # clip: relative URL of its spectrogram


def text(value, kind: str = "") -> Part:
    return Part(text="" if value is None else str(value), kind=kind)


def clip(audio: str, picture: str = "", name: str = "") -> Part:
    return Part(text=name, kind="clip", audio=audio, picture=picture)


def link(path: Path, base: Path) -> str:
    """A relative URL from the page's folder ``base`` to ``path`` (inside it)."""
    return quote(Path(path).resolve().relative_to(Path(base).resolve()).as_posix())


@dataclass
class ClipTable:
    """Rows of clips; ``filters`` names the row keys a select box filters on; a cell is a list
    of :class:`Part`."""

    columns: list[str]
    filters: list[str] = field(default_factory=list)
    rows: list[tuple[dict, dict]] = field(default_factory=list)  # (filter values, cells)

    def add(self, values: dict, cells: dict[str, list[Part]]) -> None:
        self.rows.append(({k: str(values.get(k, "")) for k in self.filters}, cells))

    def options(self) -> list[tuple[str, list[str]]]:
        return [(key, sorted({values[key] for values, _ in self.rows})) for key in self.filters]


@dataclass
class Section:
    heading: str
    intro: str
    table: ClipTable | None = None


def _shown(value):
    """Jinja's finalize: every printed value has its control and bidi characters spelled out
    (markup we made, already safe, passes as it is)."""
    from markupsafe import Markup

    from kani_adapt.core.untrusted import visible

    return value if isinstance(value, Markup) else visible(value)


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, finalize=_shown,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def policy(style: str, script: str | None) -> str:
    """The page's Content-Security-Policy: nothing by default; its own style and script by
    hash; pictures and audio from local files or the page's own origin. A meta policy cannot
    name a folder relative to the page, so ``file:`` (and ``'self'``, for a served folder) is
    as near as it gets; both keep everything off the network."""
    scripts = _sha256(script) if script else "'none'"
    return (f"default-src 'none'; script-src {scripts}; style-src {_sha256(style)}; "
            "img-src 'self' file:; media-src 'self' file:; object-src 'none'; frame-src 'none'; "
            "base-uri 'none'; form-action 'none'")


def markdown_html(source: str):
    """Our Markdown as safe HTML (a ``Markup``): raw HTML in it shows as text, links other than
    http(s), mailto and relative ones are not made, and nh3 keeps only the tags a report uses."""
    import nh3
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    from kani_adapt.core.untrusted import visible

    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    rendered = renderer.render(visible(_MARKERS.sub("", source), keep="\n\t"))
    return Markup(nh3.clean(rendered, tags=SUMMARY_TAGS, attributes=SUMMARY_ATTRIBUTES,
                            url_schemes={"http", "https", "mailto"}))


def page(title: str, summary_md: str, sections: list[Section]) -> str:
    """One HTML document: the summary Markdown, then each section (a heading, a line, a table);
    the filter script when a section has a table."""
    from markupsafe import Markup

    style = _asset("page.css")
    script = _asset("filters.js") if any(s.table for s in sections) else None
    return _environment().get_template("page.html").render(
        title=title, policy=policy(style, script), style=Markup(style),
        script=Markup(script) if script else None, summary=markdown_html(summary_md),
        sections=sections)


def write_page(path: Path, title: str, summary_md: str, sections: list[Section]) -> Path:
    from kani_adapt.core.atomic import write_text

    return write_text(path, page(title, summary_md, sections))
