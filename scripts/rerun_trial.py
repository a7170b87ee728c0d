"""The second-run trial on the demo recipe: run, a listening test, a report-only change, rerun.

    python benchmarks/rerun_trial.py [--out runs/rerun_trial] [--answers 6]
                                     [--baseline TREE] [--eval-change eval.resamples=100]

In a tree (this one, then ``--baseline TREE``: another checkout of kani-adapt, such as
``git archive walls | tar -x -C /tmp/walls``), each in its own work folder:

1. ``kani-adapt run recipes/demo/demo.yaml`` (timed);
2. ``kani-adapt listen WORK/eval`` in a process of its own with two listeners, each answering
   ``--answers`` trials over HTTP as the page does, then Ctrl-C;
3. ``kani-adapt run ... codec_check.max_clips=6`` (a report-only option; timed): which stages
   ran, and the judgements found afterwards in ``WORK/eval`` and any folder set aside;
4. with ``--eval-change`` (this tree only): a rerun that does rerun eval, and
   ``kani-adapt listen KEPT --results`` on the folder its judgements were moved to.

Prints one table row per tree and step.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
LINK = re.compile(r"http://127\.0\.0\.1:(\d+)/l/([\w-]+)")
STAGE_LINE = re.compile(r"^\[(\w+)\] (.*)$")


def kani(tree: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "kani_adapt.cli.main", *args], cwd=tree, env=env,
                          capture_output=True, text=True, **kw)


def run_recipe(tree: Path, work: Path, *overrides: str) -> tuple[float, list[tuple[str, str]]]:
    """Wall seconds and the (stage, line) pairs a run printed."""
    start = time.time()
    done = kani(tree, "run", "recipes/demo/demo.yaml", f"work_dir={work}", *overrides)
    seconds = time.time() - start
    if done.returncode:
        sys.exit(f"run failed in {tree}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    lines = [(m[1], m[2]) for line in done.stdout.splitlines() if (m := STAGE_LINE.match(line))]
    return seconds, lines


def ran(lines: list[tuple[str, str]]) -> list[str]:
    """The stages a run's lines say ran (an earlier kani-adapt: every stage not "skipped")."""
    names = []
    for stage, text in lines:
        if not text.startswith(("skipped", "its output")) and stage not in names:
            names.append(stage)
    return names


def request(port: int, method: str, path: str, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    resp = conn.getresponse()
    payload = json.loads(resp.read())
    conn.close()
    return resp.status, payload


def answer_for(trial: dict):
    """What a listener's page sends for a trial."""
    return {"ab": "A", "cmos": 1, "accent": 4, "intelligibility": "guten morgen",
            "mushra": {s: 50 for s in trial.get("slots", [])}}[trial["design"]]


def listen(tree: Path, eval_dir: Path, answers: int) -> tuple[float, int]:
    """Two listeners each answer up to ``answers`` trials over HTTP; (seconds, answered)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "kani_adapt.cli.main", "listen", str(eval_dir),
                             "--port", "0", "--listener", "anna", "--listener", "ben"], cwd=tree,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answered = 0
    try:
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Ctrl-C"):
                break
        links = LINK.findall("".join(printed))
        if not links:
            sys.exit("listen printed no links:\n" + "".join(printed))
        for port, token in links:
            for _ in range(answers):
                status, state = request(int(port), "GET", f"/l/{token}/state")
                trial = state.get("trial")
                if status != 200 or not trial:
                    break
                status, _ = request(int(port), "POST", f"/l/{token}/answer",
                                    {"trial": trial["id"], "answer": answer_for(trial), "elapsed_ms": 900})
                answered += status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    return time.time() - start, answered


def judgements(work: Path) -> dict[str, int]:
    """Judgements in each ratings file under the work folder, by folder name."""
    import sqlite3

    found = {}
    for db in sorted(work.glob("eval*/listening.sqlite")):
        con = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
        try:
            found[db.parent.name] = con.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
        finally:
            con.close()
    return found


def trial(tree: Path, work: Path, answers: int, eval_change: str, out) -> None:
    label = "this tree" if tree == HERE else str(tree)
    if work.exists():
        shutil.rmtree(work)
    seconds, lines = run_recipe(tree, work)
    out(f"| {label} | first run | {seconds:.0f} s | {', '.join(ran(lines))} | |")
    seconds, answered = listen(tree, work / "eval", answers)
    out(f"| {label} | listening test, 2 listeners over HTTP | {seconds:.0f} s | "
        f"{answered} answers | {judgements(work)} |")
    seconds, lines = run_recipe(tree, work, "codec_check.max_clips=6")
    out(f"| {label} | rerun, codec_check.max_clips 12 -> 6 | {seconds:.0f} s | "
        f"{', '.join(ran(lines)) or 'nothing'} | {judgements(work) or 'none left'} |")
    if eval_change and tree == HERE:
        seconds, lines = run_recipe(tree, work, "codec_check.max_clips=6", eval_change)
        kept = sorted(work.glob("eval.kept-*"))
        read = kani(tree, "listen", str(kept[-1]), "--results", "--resamples", "100") if kept else None
        readable = "read by listen --results" if read is not None and read.returncode == 0 else (
            f"listen --results failed: {read.stderr.strip()[-200:]}" if read else "no folder kept")
        out(f"| {label} | rerun, {eval_change} | {seconds:.0f} s | "
            f"{', '.join(ran(lines)) or 'nothing'} | {judgements(work)}; {readable} |")
        for stage, text in lines:
            out(f"    [{stage}] {text}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/rerun_trial"))
    p.add_argument("--answers", type=int, default=6, help="trials each listener answers")
    p.add_argument("--baseline", type=Path, default=None, help="another kani-adapt tree to compare")
    p.add_argument("--eval-change", default="eval.resamples=100",
                   help="an eval option for a rerun that does redo eval ('' : none)")
    args = p.parse_args()
    print("| tree | step | wall time | stages that ran / answers | judgements (folder: count) |")
    print("|---|---|---|---|---|")
    out = lambda line: print(line, flush=True)  # noqa: E731
    trial(HERE, args.out.resolve() / "this", args.answers, args.eval_change, out)
    if args.baseline:
        trial(args.baseline.resolve(), args.out.resolve() / "baseline", args.answers, "", out)


if __name__ == "__main__":
    main()
