"""The listening pages and the eval report in a real browser: Debian's Chromium driven by
Playwright (no browser download). Screenshots go to $KANI_SCREENSHOTS, else a pytest tmp folder
(the path is printed)."""
import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from kani_adapt.listen.analysis import analyse
from kani_adapt.listen.design import PlanSettings
from kani_adapt.listen.material import ANCHOR, REFERENCE
from tests.listen.served import serving, token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PLAYED = re.compile(r"\bplayed\b")  # the page marks a slot once its audio started playing
ARGS = ["--no-sandbox", "--mute-audio", "--autoplay-policy=no-user-gesture-required"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                                   reason="needs Debian's chromium (scripts/bootstrap.sh installs it)")]
# What each listener prefers (higher is better); both find the hidden reference.
TASTE = {"anna": {REFERENCE: 100, "recording": 90, "adapted": 75, "codec_roundtrip": 55, "base": 20, ANCHOR: 10},
         "ben": {REFERENCE: 95, "recording": 60, "adapted": 30, "codec_roundtrip": 70, "base": 80, ANCHOR: 5}}


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("KANI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def _next_trial(app, name):
    listener = next(l for l in app.store.listeners() if l.name == name)
    done = app.store.answered(listener)
    return next(t for t in app.store.trials(listener) if t.id not in done)


async def _answer_page(page, app, name, given: list, shots: Path | None):
    """Play every slot, answer from the listener's taste (the test peeks at the store: the
    page itself knows no systems), submit, and wait for the progress to move."""
    from playwright.async_api import expect

    stored = _next_trial(app, name)
    trial, taste = stored.trial, TASTE[name]
    for button in await page.locator("#trial button.play").all():
        await button.click()
        await expect(button).to_have_class(PLAYED)
    if trial.design == "ab":
        a, b = trial.stimuli
        choice = "A" if taste[a] > taste[b] else "B"
        await page.check(f"input[name=choice][value={choice}]")
        given.append((name, trial.item, trial.check, a if choice == "A" else b, b if choice == "A" else a))
    else:  # mushra
        for slot, system in enumerate(trial.stimuli, 1):
            await page.eval_on_selector(f"input[type=range][name='{slot}']",
                                        "(r, v) => { r.value = v; r.dispatchEvent(new Event('input')); }",
                                        taste[system])
            given.append((name, trial.item, system, taste[system]))
    if shots is not None:
        await page.screenshot(path=str(shots / f"listen_{trial.design}_{name}.png"), full_page=True)
    before = await page.text_content("#count")
    await page.click("#submit")
    await expect(page.locator("#count")).not_to_have_text(before)


async def _listener(browser, app, port, name, given, shots, reopen_after: int | None = None):
    from playwright.async_api import expect

    link = f"http://127.0.0.1:{port}/l/{token(app, name)}"
    context = await browser.new_context(viewport={"width": 900, "height": 800})
    refused = []  # what the page's Content-Security-Policy blocked (nothing may be)
    context.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page = await context.new_page()
    await page.goto(link)
    await expect(page.locator("#intro")).to_be_visible()
    if shots is not None:
        await page.screenshot(path=str(shots / "listen_intro.png"), full_page=True)
    await page.click("#start")
    answered = 0
    while not await page.locator("#done").is_visible():
        designs_shot = shots if name == "anna" else None
        await _answer_page(page, app, name, given, designs_shot)
        answered += 1
        if answered == reopen_after:  # the tab is closed and the link opened again
            await page.close()
            page = await context.new_page()
            await page.goto(link)
            await expect(page.locator("#start")).to_have_text(f"Continue ({answered} of {len(app.store.trials(next(l for l in app.store.listeners() if l.name == name)))} done)")
            if shots is not None:
                await page.screenshot(path=str(shots / "listen_resume.png"), full_page=True)
            await page.click("#start")
    if shots is not None:
        await page.screenshot(path=str(shots / f"listen_done_{name}.png"), full_page=True)
    # a tampered submission from the page itself, and a traversal, are refused
    status = await page.evaluate("""async () => (await fetch(location.pathname + '/answer', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({trial: 1, answer: 'Z'})})).status""")
    assert status in (400, 404, 409)
    missing = await page.evaluate("async () => (await fetch(location.pathname + '/audio/../../../eval.json')).status")
    assert missing == 404
    assert refused == []  # the page's own script and style run under its policy
    # an inline script, as an injected one would be, does not run under the page's policy
    await page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.injected = 1'; document.body.append(s); }""")
    assert await page.evaluate("window.injected") is None and refused
    await context.close()


async def _panel(app, port, shots):
    from playwright.async_api import async_playwright

    given: list = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await asyncio.gather(_listener(browser, app, port, "anna", given, shots, reopen_after=2),
                                 _listener(browser, app, port, "ben", given, shots))
        finally:
            await browser.close()
    return given


def test_two_listeners_complete_ab_and_mushra_at_once_and_the_results_match_a_hand_count(eval_dir, shots):
    settings = PlanSettings(designs=("ab", "mushra"), per_design=3, checks=1)
    with serving(eval_dir, settings=settings) as (app, port):
        given = asyncio.run(_panel(app, port, shots))
        rows = app.store.judgements()
        res = analyse(rows, app.material, resamples=200)
    ab = [g for g in given if len(g) == 5]
    mushra = [g for g in given if len(g) == 4]
    # 3 AB pairs and a check; 3 MUSHRA pages of adapted, base, codec round trip, hidden reference, anchor
    assert len(ab) == 2 * (3 + 1) and len(mushra) == 2 * 3 * 5
    assert len(rows) == len(ab) + len(mushra)  # one row per judgement, none lost or doubled
    assert res["excluded"] == []
    for name, item, system, score in mushra:  # the stored rows are what the page sent
        assert any(r["listener_name"] == name and r["item"] == item and r["system_a"] == system
                   and r["answer"] == str(score) for r in rows)
    for system in {g[2] for g in mushra}:
        scores = [g[3] for g in mushra if g[2] == system]
        assert res["mushra"][system]["mean"] == pytest.approx(sum(scores) / len(scores))
    for key, v in res["ab"].items():
        p, q = v["pair"]
        won = [g[3] for g in ab if not g[2] and {g[3], g[4]} == {p, q}]
        assert v["prefer_first"]["mean"] == pytest.approx(won.count(p) / len(won))
        assert v["no_preference"]["mean"] == 0


def test_the_eval_report_opens_from_disk_with_a_playable_source_in_every_player(eval_dir, shots):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((eval_dir / "index.html").as_uri())
        page.wait_for_function("[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)")
        players = page.evaluate("[...document.querySelectorAll('audio')].map(a => ({src: a.currentSrc, "
                                "duration: a.duration, error: !!a.error}))")
        # 4 utterances x (recording, codec round trip, adapted, base)
        assert len(players) == 16
        assert all(p["src"].startswith(eval_dir.as_uri()) and not p["error"] and p["duration"] > 0.3 for p in players)
        page.screenshot(path=str(shots / "eval_index.png"), full_page=True)
        page.select_option("select[name=tag]", "de")
        assert page.locator("tr.clip:visible").count() == 2 and page.text_content("#shown") == "2 shown"
        page.select_option("select[name=tag]", "")
        page.select_option("select[name=speaker]", "anna")
        assert page.locator("tr.clip:visible").count() == 2
        images = page.evaluate("[...document.querySelectorAll('img.spec')].map(i => i.naturalWidth)")
        assert len(images) == 16 and min(images) > 10
        browser.close()


def test_a_listener_types_what_they_heard_rates_cmos_and_the_accent_named_by_the_recipe(eval_dir, shots):
    from playwright.sync_api import expect, sync_playwright

    settings = PlanSettings(designs=("intelligibility", "cmos", "accent"), per_design=1)
    with serving(eval_dir, listeners=("cara",), settings=settings) as (app, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(f"http://127.0.0.1:{port}/l/{token(app, 'cara')}")
        page.click("#start")
        typed = {}
        while not page.locator("#done").is_visible():
            trial = _next_trial(app, "cara").trial
            for button in page.locator("#trial button.play").all():
                button.click()
                expect(button).to_have_class(PLAYED)
            assert page.locator("#submit").is_disabled()  # nothing chosen yet
            if trial.design == "intelligibility":
                assert app.material.items[trial.item].text not in page.text_content("#trial")
                typed[trial.item] = app.material.items[trial.item].text.upper() + "!"
                page.fill("#transcript", typed[trial.item])
            elif trial.design == "cmos":
                page.check("input[name=choice][value='2']")
            else:
                tag = app.material.items[trial.item].tag
                assert f"sound like {app.material.describe(tag)}?" in page.text_content("#trial")
                page.check("input[name=choice][value='4']")
            page.screenshot(path=str(shots / f"listen_{trial.design}.png"), full_page=True)
            before = page.text_content("#count")
            page.click("#submit")
            expect(page.locator("#count")).not_to_have_text(before)
        app.store.close()  # the link, opened again, says why it no longer works
        assert page.goto(page.url).status == 410
        expect(page.locator("#error")).to_contain_text("this listening test was closed on")
        browser.close()
        res = analyse(app.store.judgements(), app.material, resamples=100, keep_all=True)
    assert len(typed) == 1  # per_design=1: one sentence
    # the right words in capitals with an exclamation mark: no character error
    assert all(v["mean"] == 0 for v in res["intelligibility"].values())
    assert [v["cmos"]["n"] for v in res["cmos"].values()] == [1]
    assert sum(v["all"]["n"] for v in res["accent"].values()) == 1


# How much each listener hears the accent (1-5), by system; "ben" hears the codec differently
ACCENT = {"anna": {"recording": 5, "codec_roundtrip": 3, "adapted": 4, "base": 1},
          "ben": {"recording": 4, "codec_roundtrip": 4, "adapted": 3, "base": 2}}


def test_listeners_accent_ratings_are_set_against_the_automatic_judges(judged_dir, shots):
    """Two listeners answer every accent question in the browser; `kani-adapt listen --results`
    then reports each judge's rank correlation with their ratings, per clip and per system,
    matching a hand computation (scipy) from what the pages sent and the eval's figures."""
    import pandas as pd
    from playwright.sync_api import expect, sync_playwright
    from scipy.stats import spearmanr

    from kani_adapt.cli.main import main
    from tests.listen.conftest import judge_columns

    given: dict[tuple[str, str], list[int]] = {}
    settings = PlanSettings(designs=("accent",))
    with serving(judged_dir, settings=settings) as (app, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name in ("anna", "ben"):
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(f"http://127.0.0.1:{port}/l/{token(app, name)}")
            page.click("#start")
            while not page.locator("#done").is_visible():
                trial = _next_trial(app, name).trial
                for button in page.locator("#trial button.play").all():
                    button.click()
                    expect(button).to_have_class(PLAYED)
                rating = ACCENT[name][trial.stimuli[0]]
                page.check(f"input[name=choice][value='{rating}']")
                given.setdefault((trial.stimuli[0], trial.item), []).append(rating)
                before = page.text_content("#count")
                page.click("#submit")
                expect(page.locator("#count")).not_to_have_text(before)
            page.close()
        browser.close()
    assert main(["listen", str(judged_dir), "--results", "--resamples", "200"]) == 0

    # by hand: the judges' figures of each clip, as the synthetic eval wrote them
    order = {i: n for n, i in enumerate(dict.fromkeys(pd.read_parquet(judged_dir / "utterances.parquet")
                                                      .query("checkpoint == 'adapted'")["item"]))}
    clips = sorted(given)
    ratings = [sum(given[c]) / len(given[c]) for c in clips]
    res = __import__("json").loads((judged_dir / "listening.json").read_text())["agreement"]
    assert len(clips) == 16 and set(res) == {"accent_posterior", "accent_shift", "per", "cer"}
    for judge in res:
        figures = [judge_columns(system, order[item])[judge] for system, item in clips]
        assert res[judge]["per_utterance"]["rho"] == pytest.approx(spearmanr(ratings, figures).statistic)
        assert res[judge]["per_utterance"]["n"] == 16
        systems = sorted({s for s, _ in clips})
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        by_system = spearmanr([mean([r for c, r in zip(clips, ratings) if c[0] == s]) for s in systems],
                              [mean([f for c, f in zip(clips, figures) if c[0] == s]) for s in systems])
        assert res[judge]["per_system"]["rho"] == pytest.approx(by_system.statistic)
        low, high = res[judge]["per_utterance"]["low"], res[judge]["per_utterance"]["high"]
        assert low <= res[judge]["per_utterance"]["rho"] <= high
    assert res["accent_posterior"]["per_utterance"]["rho"] > 0.5 > -0.5 > res["per"]["per_utterance"]["rho"]
    md = (judged_dir / "eval.md").read_text()
    assert "Automatic judges against listeners (accent ratings)" in md
    assert f"{res['accent_shift']['per_utterance']['rho']:+.2f} [" in md
    assert "Automatic judges against listeners" in (judged_dir / "index.html").read_text()
