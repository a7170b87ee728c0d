"""Self-contained HTML pages with audio players: the eval report, the data report and the codec
check share this kit. A page is one file that opens from disk; audio and pictures are files
beside it, named by relative links, so the folder can be copied or zipped as it is.

Markdown (the summary tables of eval.md and friends) becomes HTML through the ``markdown``
package; a table of clips gets one row per clip, players in its cells and filters (select boxes
over chosen columns) that hide the rows that do not match.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:110em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
vertical-align:top;font-size:.9em}th{background:#f3f3f3;text-align:left}
audio{width:15em;display:block}img.spec{width:15em;height:4em;display:block;image-rendering:pixelated}
.flag{color:#b00;font-weight:600}.muted{color:#777}.filters label{margin-right:1em}
.summary{margin-bottom:2em}.count{margin-left:1em;color:#555}
"""

FILTER_SCRIPT = """
function applyFilters(){
  const sel=[...document.querySelectorAll('.filters select')];
  let shown=0;
  document.querySelectorAll('tr.clip').forEach(tr=>{
    const ok=sel.every(s=>!s.value||tr.dataset[s.name]===s.value);
    tr.hidden=!ok; if(ok) shown++;});
  document.getElementById('shown').textContent=shown+' shown';
}
document.querySelectorAll('.filters select').forEach(s=>s.addEventListener('change',applyFilters));
applyFilters();
"""


def esc(text) -> str:
    return html.escape("" if text is None else str(text))


def link(path: Path, base: Path) -> str:
    """A relative URL from the page's folder ``base`` to ``path`` (inside it)."""
    return quote(Path(path).resolve().relative_to(Path(base).resolve()).as_posix())


def markdown_html(text: str) -> str:
    import markdown

    return markdown.markdown(text, extensions=["tables"], output_format="html")


def player(src: str) -> str:
    return f'<audio controls preload="metadata" src="{esc(src)}"></audio>'


def picture(src: str, alt: str) -> str:
    return f'<img class="spec" src="{esc(src)}" alt="{esc(alt)}">'


@dataclass
class ClipTable:
    """Rows of clips; ``filters`` names the row keys a select box filters on."""

    columns: list[str]
    filters: list[str] = field(default_factory=list)
    rows: list[tuple[dict, dict]] = field(default_factory=list)  # (filter values, cell HTML)

    def add(self, values: dict, cells: dict) -> None:
        self.rows.append(({k: str(values.get(k, "")) for k in self.filters}, cells))

    def html(self) -> str:
        boxes = []
        for key in self.filters:
            options = sorted({values[key] for values, _ in self.rows})
            opts = "".join(f'<option value="{esc(o)}">{esc(o) or "(none)"}</option>' for o in options)
            boxes.append(f'<label>{esc(key)} <select name="{esc(key)}"><option value="">all</option>'
                         f"{opts}</select></label>")
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = []
        for values, cells in self.rows:
            data = " ".join(f'data-{esc(k)}="{esc(v)}"' for k, v in values.items())
            tds = "".join(f"<td>{cells.get(c, '')}</td>" for c in self.columns)
            body.append(f'<tr class="clip" {data}>{tds}</tr>')
        return (f'<div class="filters">{"".join(boxes)}<span class="count" id="shown"></span></div>'
                f'<table class="clips"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
                "</tbody></table>")


def page(title: str, sections: list[str], tables: bool = True) -> str:
    """One HTML document: ``sections`` (HTML) in order; the filter script when it has clips."""
    script = f"<script>{FILTER_SCRIPT}</script>" if tables else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
            f"</title><style>{STYLE}</style></head><body>{''.join(sections)}{script}</body></html>")


def write_page(path: Path, title: str, sections: list[str], tables: bool = True) -> Path:
    from kani_adapt.core.atomic import write_text

    return write_text(path, page(title, sections, tables))
