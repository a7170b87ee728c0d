"""Pages written from hostile names and texts (tests/hostile/pages_world.py), opened from disk
in a real browser (Debian's Chromium driven by Playwright, as tests/listen/test_browser.py):
no payload runs, whether the page's Content-Security-Policy is honoured or bypassed (escaping
alone holds), a script slipped past escaping is still stopped by the policy, and the pages still
work: every player loads its file, every spectrogram shows, the filters run, the style applies,
control and bidi characters are spelled out."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.hostile import pages_world

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--mute-audio"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                                   reason="needs Debian's chromium (scripts/bootstrap.sh installs it)")]
# What each page is called by its writer; a payload that ran could change it.
TITLES = {"report": "Dataset report", "codec": "Codec readiness", "eval": "Evaluation: ",
          "listen-named": "Evaluation: ", "listen-described": "Evaluation: "}


@pytest.fixture(scope="session")
def hostile_pages(tmp_path_factory, tiny_nemo, tiny_generator, tiny_whisper) -> dict[str, Path]:
    """Every page the hostile world's commands wrote, by name."""
    root = tmp_path_factory.mktemp("hostile-pages")
    eval_dir = pages_world.evaluated(root, tiny_generator, tiny_whisper)
    named, described = pages_world.listened(eval_dir, root)
    return {"report": pages_world.prepared(root) / "report.html",
            "codec": pages_world.codec_checked(root, tiny_nemo) / "index.html",
            "eval": eval_dir / "index.html", "listen-named": named / "index.html",
            "listen-described": described / "index.html"}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, url: str, bypass_csp: bool = False) -> dict:
    """Load a page, wait for its players, and say what happened: dialogs opened, markers set,
    the title, policy violations, the players, pictures and filter count."""
    context = browser.new_context(bypass_csp=bypass_csp, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    seen = {"dialogs": [], "console": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: seen["console"].append(m.text))
    page.goto(url)
    page.wait_for_function("[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)",
                           timeout=30_000)
    page.wait_for_timeout(300)  # an onerror/onload/ontoggle payload has fired by now
    seen |= page.evaluate("""() => ({
        pwned: window.__pwned ?? null, title: document.title,
        handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
            .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
        scripts: document.scripts.length,
        players: [...document.querySelectorAll('audio')].map(a => ({src: a.currentSrc,
            error: !!a.error, duration: a.duration})),
        pictures: [...document.querySelectorAll('img.spec')].map(i => i.naturalWidth),
        rows: document.querySelectorAll('tr.clip').length,
        shown: document.getElementById('shown') ? document.getElementById('shown').textContent : null,
        collapse: getComputedStyle(document.querySelector('table')).borderCollapse,
        text: document.body.innerText})""")
    context.close()
    return seen


def _no_payload_ran(name: str, seen: dict) -> None:
    assert seen["dialogs"] == [], f"{name}: a payload opened dialogs {seen['dialogs']}"
    assert seen["pwned"] is None, f"{name}: a payload set window.__pwned={seen['pwned']}"
    assert seen["title"].startswith(TITLES[name]), seen["title"]
    assert seen["handlers"] == [], f"{name}: elements with event handlers {seen['handlers']}"


@pytest.mark.parametrize("name", list(TITLES))
def test_no_injected_script_runs_and_the_page_still_works(hostile_pages, browser, name):
    path = hostile_pages[name]
    seen = _open(browser, path.as_uri())
    _no_payload_ran(name, seen)
    assert seen["scripts"] == 1  # the filter script, and nothing a name made
    assert not [m for m in seen["console"] if "Content Security Policy" in m], seen["console"]
    # players load files of the page's folder; spectrograms show; filters and style apply
    assert seen["players"] and all(p["src"].startswith(path.parent.as_uri()) and not p["error"]
                                   and p["duration"] > 0.05 for p in seen["players"]), seen["players"]
    assert seen["pictures"] and min(seen["pictures"]) > 10
    assert seen["rows"] > 0 and seen["shown"] == f"{seen['rows']} shown" and seen["collapse"] == "collapse"
    # names are shown as typed, their bidi characters spelled out
    assert "\u202e" not in seen["text"] and "\u2066" not in seen["text"]
    shown = {"report": [pages_world.NAMES["img"], pages_world.NAMES["bidi"]],
             "codec": [pages_world.NAMES["svg"], pages_world.HOSTILE_TAG],
             "eval": [pages_world.NAMES["second ="], pages_world.TEXTS["script"]],
             "listen-named": [pages_world.LISTENER],
             "listen-described": [pages_world.DESCRIPTION]}[name]
    for text in shown:
        assert text.replace("\u202e", "\\u202e").replace("\u2066", "\\u2066") in seen["text"], text


@pytest.mark.parametrize("name", list(TITLES))
def test_escaping_alone_stops_every_payload_with_the_policy_bypassed(hostile_pages, browser, name):
    _no_payload_ran(name, _open(browser, hostile_pages[name].as_uri(), bypass_csp=True))


def test_the_policy_stops_a_script_that_escaping_let_through(hostile_pages, browser, tmp_path):
    """A second wall: markup spliced into a written page, as an escaping bug would leave it."""
    source = hostile_pages["eval"]
    folder = Path(shutil.copytree(source.parent, tmp_path / "eval"))
    page = folder / "index.html"
    spliced = ("<img src=x onerror=alert(101)><svg onload=alert(102)></svg>"
               "<script>window.__pwned=103</script><iframe src=\"javascript:alert(104)\"></iframe>"
               "<img src=\"http://127.0.0.1:9/beacon.png\">")
    page.write_text(re.sub("<h2>", spliced + "<h2>", page.read_text(encoding="utf-8"), count=1),
                    encoding="utf-8")
    seen = _open(browser, page.as_uri())
    assert seen["dialogs"] == [] and seen["pwned"] is None
    assert sum("Content Security Policy" in m for m in seen["console"]) >= 4, seen["console"]
    assert seen["players"] and not any(p["error"] for p in seen["players"])
    unguarded = _open(browser, page.as_uri(), bypass_csp=True)  # the splice is live without it
    assert unguarded["dialogs"] and unguarded["pwned"] == 103


MARKDOWN = {"report": "report.md", "codec": "codec_check.md", "eval": "eval.md",
            "listen-named": "eval.md", "listen-described": "eval.md"}


@pytest.mark.parametrize("name", list(MARKDOWN))
def test_the_markdown_files_make_no_markup_where_others_render_them(hostile_pages, name):
    """eval.md and friends are read elsewhere (GitHub, the Hub, an editor's preview): rendered
    with raw HTML on, the names in them stay text."""
    from markdown_it import MarkdownIt

    text = (hostile_pages[name].parent / MARKDOWN[name]).read_text(encoding="utf-8")
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    made = set(re.findall(r"<([a-z][a-z0-9]*)", rendered)) - {
        "h1", "h2", "h3", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code",
        "strong", "em", "img"}
    assert not made, made
    assert not re.search(r"<[^>]*\son\w+=", rendered) and "\u202e" not in text
    folder = hostile_pages[name].parent  # pictures: the report's histograms, beside it
    assert all((folder / src).is_file() for src in re.findall(r'<img src="([^"]+)"', rendered))
