"""The listening app over HTTP: blind state, audio by trial and slot only, every value checked on
the server, 404 for everything else; the command line that serves it and writes the results."""
import json
import urllib.request

import pytest

from kani_adapt.cli.main import main
from kani_adapt.listen.design import PlanSettings
from tests.listen.served import request, serving, started, token, valid

SYSTEM_NAMES = ("adapted", "codec_roundtrip", "recording", "anchor", '"base"')


def answer_all(port: int, tok: str) -> list[dict]:
    states = []
    status, state = request(port, "GET", f"/l/{tok}/state")
    while state["trial"]:
        states.append(state)
        status, state = request(port, "POST", f"/l/{tok}/answer",
                                {"trial": state["trial"]["id"], "answer": valid(state["trial"]), "elapsed_ms": 900})
        assert status == 200, state
    return states + [state]


def test_a_listener_hears_every_slot_and_nothing_names_a_system(eval_dir):
    with serving(eval_dir) as (app, port):
        tok = token(app, "anna")
        status, page = request(port, "GET", f"/l/{tok}")
        assert status == 200 and b"Listening test" in page
        status, state = request(port, "GET", f"/l/{tok}/state")
        trial = state["trial"]
        for slot in trial["slots"] + ([trial["reference"]] if "reference" in trial else []):
            status, wav = request(port, "GET", f"/l/{tok}/audio/{trial['id']}/{slot}")
            assert status == 200 and wav[:4] == b"RIFF"
        states = answer_all(port, tok)
        assert states[-1]["trial"] is None and states[-1]["done"] == states[-1]["total"] == len(states) - 1
        shown = json.dumps(states)
        assert not [n for n in SYSTEM_NAMES if n in shown]
        assert {s["trial"]["design"] for s in states[:-1]} == {"ab", "cmos", "mushra", "accent", "intelligibility"}
        # intelligibility trials do not show the sentence
        assert all("text" not in s["trial"] for s in states[:-1] if s["trial"]["design"] == "intelligibility")
        rows = app.store.judgements()
        mushra_slots = sum(len(s["trial"]["slots"]) for s in states[:-1] if s["trial"]["design"] == "mushra")
        assert len(rows) == len(states) - 1 - sum(s["trial"]["design"] == "mushra" for s in states[:-1]) + mushra_slots


BAD = {
    "ab": ["C", 1, None, "a"],
    "cmos": [4, -4, 1.5, "1", True, None],
    "mushra": ["missing", "extra", 101, -1, "50", 50.5],
    "accent": [0, 6, "3", 2.5],
    "intelligibility": ["", "   ", "x" * 301, "two\nlines", 5, None],
}


def _bad_answer(trial: dict, bad):
    if trial["design"] != "mushra":
        return bad
    good = valid(trial)
    if bad == "missing":
        return dict(list(good.items())[1:])
    if bad == "extra":
        return {**good, "99": 50}
    return {**good, trial["slots"][0]: bad}


def test_tampered_submissions_are_refused_and_nothing_is_written(eval_dir):
    with serving(eval_dir) as (app, port):
        anna, ben = token(app, "anna"), token(app, "ben")
        _, bens = request(port, "GET", f"/l/{ben}/state")
        tried = set()
        status, state = request(port, "GET", f"/l/{anna}/state")
        while state["trial"]:
            trial, before = state["trial"], len(app.store.judgements())
            if trial["design"] not in tried:
                tried.add(trial["design"])
                for bad in BAD[trial["design"]]:
                    status, body = request(port, "POST", f"/l/{anna}/answer",
                                           {"trial": trial["id"], "answer": _bad_answer(trial, bad)})
                    assert status == 400 and body["error"], (trial["design"], bad)
                for body, want in (({"trial": bens["trial"]["id"], "answer": "A"}, 404),  # another's trial
                                   ({"trial": trial["id"] + 1, "answer": valid(trial)}, 409),  # not yet due
                                   ({"trial": str(trial["id"]), "answer": valid(trial)}, 400),
                                   ({"trial": trial["id"], "answer": valid(trial), "system": "x"}, 400),
                                   ({"trial": trial["id"], "answer": valid(trial), "elapsed_ms": -5}, 400)):
                    assert request(port, "POST", f"/l/{anna}/answer", body)[0] == want, body
                # anna's trial with ben's token, and a made-up token
                assert request(port, "POST", f"/l/{ben}/answer", {"trial": trial["id"], "answer": valid(trial)})[0] == 404
                assert request(port, "POST", "/l/not-a-real-token-123/answer", {"trial": trial["id"]})[0] == 404
                assert request(port, "POST", f"/l/{anna}/answer", raw=b"{not json")[0] == 400
                assert request(port, "POST", f"/l/{anna}/answer", raw=b" " * 20000)[0] == 413
                assert len(app.store.judgements()) == before
            status, state = request(port, "POST", f"/l/{anna}/answer",
                                    {"trial": trial["id"], "answer": valid(trial), "elapsed_ms": 10})
            assert status == 200
            again = request(port, "POST", f"/l/{anna}/answer", {"trial": trial["id"], "answer": valid(trial)})
            assert again[0] == 409  # answered already: a double click writes nothing
        assert tried == set(BAD)
        assert {r["listener_name"] for r in app.store.judgements()} == {"anna"}


def test_every_url_outside_the_routes_is_a_404(eval_dir):
    with serving(eval_dir) as (app, port):
        anna, ben = token(app, "anna"), token(app, "ben")
        _, mine = request(port, "GET", f"/l/{anna}/state")
        _, bens = request(port, "GET", f"/l/{ben}/state")
        assert request(port, "GET", f"/l/{anna}/audio/{mine['trial']['id']}/1")[0] == 200
        for path in ["/", "/eval.json", "/listening.sqlite", "/wavs/adapted/anna-0_s0.wav",
                     f"/l/{anna}/audio/../../eval.json", f"/l/{anna}/../../utterances.parquet",
                     f"/l/{anna}/audio/{mine['trial']['id']}/../../../../eval.json",
                     f"/l/{anna}/%2e%2e/%2e%2e/eval.json", f"/l/{anna}/audio/%2e%2e%2fwavs/A",
                     f"/l/{anna}/audio/{bens['trial']['id']}/1",  # ben's trial
                     f"/l/{anna}/audio/{mine['trial']['id']}/7", f"/l/{anna}/audio/999999/A",
                     f"/l/{anna}/judgements", f"/l/{anna}/results", "/l/unknown-token-xyz/state",
                     f"/l/{anna}/state/../../{ben}/state"]:
            status, _ = request(port, "GET", path)
            assert status == 404, path


def test_the_command_serves_on_localhost_prints_invites_and_stops_cleanly(eval_dir):
    with started(eval_dir, "--listeners", "2", "--expires", "2099-12-31") as (links, lines, proc):
        assert len(links) == 2 and {link[:2] for link in links} == {("http", "127.0.0.1")}, lines
        assert "the links work until 2100-01-01 00:00" in "".join(lines)
        _, host, port, tok = links[1]
        with urllib.request.urlopen(f"http://{host}:{port}/l/{tok}/state", timeout=30) as resp:
            assert json.load(resp)["listener"] == "listener-2"
        assert f"listen {eval_dir} --results" in lines[-1]
        assert "WARNING" not in "".join(lines)
    assert proc.returncode == 0 and "saved" in proc.rest


def test_results_are_printed_and_written_into_the_eval_folder(eval_dir, capsys):
    with serving(eval_dir, listeners=("anna",), settings=PlanSettings(designs=("ab", "mushra"))) as (app, port):
        answer_all(port, token(app, "anna"))
    assert main(["listen", str(eval_dir), "--results", "--resamples", "100"]) == 0
    printed = capsys.readouterr().out
    # 50 for the hidden reference and "A" for the checks: screened out, nothing left to report
    assert "## Listening test" in printed and "left out after the attention checks: anna" in printed
    assert "MUSHRA" not in printed
    assert main(["listen", str(eval_dir), "--results", "--resamples", "100", "--keep-all"]) == 0
    assert "MUSHRA" in capsys.readouterr().out
    res = json.loads((eval_dir / "listening.json").read_text())
    screened = res["screening"]["anna"]
    # 4 MUSHRA pages (hidden reference at 50) and 2 AB checks ("A" is right when the reference is A)
    assert screened["excluded"] and screened["checks"] == 6 and screened["failed"] >= 4
    # every AB answer was "A", every MUSHRA slot 50
    assert all(v["prefer_first"]["mean"] + v["prefer_second"]["mean"] == 1 for v in res["ab"].values())
    assert all(v["mean"] == 50 for v in res["mushra"].values())
    md = (eval_dir / "eval.md").read_text()
    assert md.count("## Listening test") == 1 and md.startswith("# Evaluation")
    assert "Listening test" in (eval_dir / "index.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--describe", "de_hessian"], "TAG=DESCRIPTION"),
    (["--designs", "ab,abx"], "choose from"),
])
def test_bad_options_end_in_one_line(eval_dir, capsys, args, message):
    assert main(["listen", str(eval_dir), *args, "--port", "0", "--listeners", "0"] +
                ([] if "--designs" in args else ["--results"])) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_folder_that_is_not_an_eval_is_named(tmp_path, capsys):
    assert main(["listen", str(tmp_path), "--results"]) == 2
    assert f"{tmp_path}: not an eval folder" in capsys.readouterr().err
