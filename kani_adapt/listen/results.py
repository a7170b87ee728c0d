"""Listening results as files: ``listening.json`` and a section of ``eval.md`` (between
markers, replaced on every run) in the eval folder, whose ``index.html`` is then rebuilt; the
same Markdown goes into an adapter card at export (:func:`card_section`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from kani_adapt.core import atomic
from kani_adapt.core.untrusted import Md, md, md_table
from kani_adapt.eval.kept import RESULTS

JSON = RESULTS  # in the eval folder; kept when the eval runs again (kani_adapt.eval.kept)
BEGIN, END = "<!-- listening:begin -->", "<!-- listening:end -->"


def _fmt(i: dict | None, digits: int = 2) -> Md:
    if not i or not i.get("n") or i.get("mean") is None or math.isnan(i["mean"]):
        return Md("n/a")
    return Md(f"{i['mean']:.{digits}f} [{i['low']:.{digits}f}, {i['high']:.{digits}f}]")


def _rho(i: dict) -> Md:
    if i.get("rho") is None or math.isnan(i["rho"]):
        return Md("n/a (ranks all tied)")
    if i.get("low") is None or math.isnan(i["low"]):
        return Md(f"{i['rho']:+.2f}")
    return Md(f"{i['rho']:+.2f} [{i['low']:+.2f}, {i['high']:+.2f}]")


def _table(header: list[str], rows: list[list]) -> list[str]:
    """System names, tags and pairs are escaped (they come from eval folders and the CLI)."""
    return md_table(header, rows) + [""]


def screened_line(res: dict) -> str:
    """Who the attention checks left out, or who ``--keep-all`` kept although they failed."""
    failed = sorted(n for n, s in (res.get("screening") or {}).items() if s.get("excluded"))
    if res["excluded"] or not failed:
        names = ", ".join(md(name) for name in res["excluded"]) or "none"  # listener names
        return f"left out after the attention checks: {names}"
    return ("kept although they failed the attention checks (`--keep-all`): "
            + ", ".join(md(name) for name in failed))


def markdown(res: dict, level: int = 2) -> str:
    h = "#" * level
    lines = [f"{h} Listening test", "",
             f"{res['listeners']} listeners, {res['judgements']} judgements used; "
             f"{screened_line(res)}. Intervals: 95 % bootstrap over listeners and items."
             + (f" The test was closed on {res['closed']}; later answers were refused." if res.get("closed") else ""),
             ""]
    if res["excluded"] and not res["judgements"]:
        lines += ["Every listener failed the attention checks, so no figures; `--keep-all` shows "
                  "their answers anyway.", ""]
    bt = res.get("bradley_terry") or {}
    if bt:
        lines += [f"{h}# Bradley-Terry strengths (AB)", "", f"{bt['model']}; {bt['comparisons']} comparisons.", ""]
        ranked = sorted(bt["ratings"].items(), key=lambda kv: -kv[1]["mean"])
        lines += _table(["system", "strength"], [[s, _fmt(i)] for s, i in ranked])
    if res["ab"]:
        lines += [f"{h}# AB preference", ""]
        lines += _table(["first vs second", "first preferred", "second preferred", "no preference", "n"],
                        [[k, _fmt(v["prefer_first"]), _fmt(v["prefer_second"]), _fmt(v["no_preference"]),
                          v["prefer_first"]["n"]] for k, v in res["ab"].items()])
    if res["cmos"]:
        lines += [f"{h}# CMOS (positive: the first is better, -3..+3)", ""]
        lines += _table(["first vs second", "CMOS", "n"],
                        [[k, _fmt(v["cmos"]), v["cmos"]["n"]] for k, v in res["cmos"].items()])
    if res["mushra"]:
        lines += [f"{h}# MUSHRA (0-100; hidden reference and 3.5 kHz anchor)", ""]
        lines += _table(["system", "score", "n"], [[s, _fmt(i, 1), i["n"]] for s, i in res["mushra"].items()])
    if res["accent"]:
        tags = sorted({t for v in res["accent"].values() for t in v["tags"]})
        lines += [f"{h}# Accent (1-5: how much it sounds like the tag)", "",
                  "; ".join(f"{md(t)}: {md(res['tags'].get(t, t))}" for t in tags), ""]
        lines += _table(["system", "all", *tags],
                        [[s, _fmt(v["all"]), *(_fmt(v["tags"].get(t)) for t in tags)]
                         for s, v in res["accent"].items()])
    if res.get("agreement"):
        lines += [f"{h}# Automatic judges against listeners (accent ratings)", "",
                  "Spearman rank correlation with the listeners' mean accent rating, per clip and "
                  "per system; 95 % intervals over items. Expected sign: + for the accent "
                  "posterior and shift, - for PER and CER; near 0 or the wrong sign: that number "
                  "does not follow these listeners.", ""]
        lines += _table(["judge", "per clip", "clips", "per system", "systems", "expected sign"],
                        [[j, _rho(a["per_utterance"]), a["per_utterance"]["n"], _rho(a["per_system"]),
                          a["per_system"]["n"], "+" if a["expected_sign"] > 0 else "-"]
                         for j, a in res["agreement"].items()])
    if res["intelligibility"]:
        lines += [f"{h}# Intelligibility (CER of what listeners typed)", ""]
        lines += _table(["system", "CER", "n"],
                        [[s, _fmt(i, 3), i["n"]] for s, i in res["intelligibility"].items()])
    return "\n".join(lines)


def with_section(text: str, section: str) -> str:
    """``text`` with its listening section replaced (or appended)."""
    block = f"{BEGIN}\n{section}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1].lstrip("\n")
    return text.rstrip("\n") + "\n\n" + block


def write(folder: Path, res: dict) -> list[Path]:
    from kani_adapt.eval.page import write_index
    from kani_adapt.eval.report import write_json

    folder = Path(folder)
    write_json(folder / JSON, res)
    md = folder / "eval.md"
    atomic.write_text(md, with_section(md.read_text(encoding="utf-8"), markdown(res)))
    return [folder / JSON, md, write_index(folder)]


def card_section(path: Path) -> str:
    """The listening section of an adapter card from a ``listening.json`` ("" without one)."""
    path = Path(path)
    if not path.is_file():
        return ""
    return markdown(json.loads(path.read_text(encoding="utf-8")), level=2) + "\n"
