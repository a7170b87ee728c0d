"""`kani-adapt listen`: a blinded listening test over eval folders, and its results."""
from __future__ import annotations

import socket
from pathlib import Path

from kani_adapt.core.cli_kit import Formatter
from kani_adapt.core.errors import ConfigError
from kani_adapt.core.stopping import Stopped

DESCRIPTION = """\
A listening test for a panel of listeners, built from one or more eval folders (what
`kani-adapt eval` or a recipe's eval stage wrote): base against adapted against the
recordings, several adapters at once. Each listener opens an invite link and gets, in
blocks:
  intelligibility  type what you heard (scored with the project's CER)
  ab               which of two is better, or no preference
  cmos             B against A from -3 to +3
  mushra           several samples rated 0-100 against a reference, with the reference
                   hidden among them and a 3.5 kHz low-passed anchor
  accent           "how much does this sound like <the tag's description>", 1-5
Order, sides and slots are drawn per listener; every clip is played at the same loudness
(BS.1770, pyloudnorm); attention checks (hidden reference vs anchor) screen listeners;
answers are saved as they go, so a closed tab resumes. The ratings are one SQLite file,
EVAL_DIR/listening.sqlite (the first folder's).

Serving binds 127.0.0.1: the listeners use this machine. For a remote panel give --host
0.0.0.0 (and --url with the address they reach) and send each listener their own link.
Audio is served by trial and slot only; a listener sees nothing of the others.

  kani-adapt listen runs/demo/eval --listeners 6
  kani-adapt listen runs/hessian/eval runs/hessian_r64/eval --listener anna --listener ben
  kani-adapt listen runs/demo/eval --results

--results prints the figures (preference rates, CMOS, MUSHRA means, accent per system and
tag, listeners' CER, Bradley-Terry strengths, all with 95 % intervals over listeners and
items) and writes EVAL_DIR/listening.json, a section of eval.md and index.html;
`kani-adapt export` puts them into the adapter card."""


def _describe(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        tag, sep, text = value.partition("=")
        if not sep or not tag.strip() or not text.strip():
            raise ConfigError(f"--describe {value!r}: write TAG=DESCRIPTION, e.g. "
                              "de_hessian='German with a Hessian accent'")
        out[tag.strip().lower()] = text.strip()
    return out


def add_listen(sub) -> None:
    from kani_adapt.listen.design import DESIGNS

    p = sub.add_parser("listen", formatter_class=Formatter, description=DESCRIPTION,
                       help="blinded listening test over eval folders (AB, CMOS, MUSHRA, accent, "
                            "intelligibility) and its results")
    p.add_argument("eval_dirs", nargs="+", type=Path, metavar="EVAL_DIR")
    p.add_argument("--results", action="store_true", help="print and write the results; serve nothing")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    p.add_argument("--url", default="", help="base URL printed in the invite links (default: from host and port)")
    p.add_argument("--listeners", type=int, default=0, metavar="N",
                   help="make sure N invite links exist (listener-1 ... listener-N)")
    p.add_argument("--listener", action="append", default=[], metavar="NAME",
                   help="an invite link for this listener (repeatable)")
    p.add_argument("--designs", default=",".join(DESIGNS), help="which tests, comma-separated")
    p.add_argument("--per-design", type=int, default=0, metavar="N",
                   help="trials per test and listener (0: all; the least judged come first)")
    p.add_argument("--checks", type=int, default=2, help="AB attention checks per listener")
    p.add_argument("--sample", type=int, default=0, help="which generated sample of each item to play")
    p.add_argument("--describe", action="append", default=[], metavar="TAG=TEXT",
                   help="what a tag stands for in the accent question (default: its description in "
                        "the eval config's or recipe's tags, kept in eval.json)")
    p.add_argument("--loudness", type=float, default=-26.0, metavar="LUFS", help="playback loudness")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (--results)")
    p.add_argument("--keep-all", action="store_true",
                   help="--results: keep listeners who failed the attention checks")
    p.set_defaults(func=run)


def _settings(args):
    from kani_adapt.listen.design import DESIGNS, PlanSettings

    designs = tuple(d.strip() for d in args.designs.split(",") if d.strip())
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown or not designs:
        raise ConfigError(f"--designs {args.designs!r}: choose from {', '.join(DESIGNS)}")
    if args.per_design < 0 or args.checks < 0:
        raise ConfigError("--per-design and --checks are 0 or more")
    return PlanSettings(designs, args.per_design, args.checks)


def run(args) -> int:
    from kani_adapt.listen import results as files
    from kani_adapt.listen.material import load_material
    from kani_adapt.listen.store import FILE, Store

    folders = [Path(f) for f in args.eval_dirs]
    material = load_material(folders, args.sample, _describe(args.describe))
    store = Store(folders[0] / FILE, material.fingerprint())
    if args.results:
        from kani_adapt.listen.analysis import analyse

        res = analyse(store.judgements(), material, args.resamples, args.keep_all)
        print(files.markdown(res))
        for path in files.write(folders[0], res):
            print(f"wrote {path}")
        return 0
    return serve(args, material, store)


def serve(args, material, store) -> int:
    from kani_adapt.listen.playback import Playback
    from kani_adapt.listen.server import App, make_server

    settings = _settings(args)
    names = list(args.listener) + [f"listener-{k}" for k in range(1, args.listeners + 1)]
    for name in names or ([] if store.listeners() else ["listener-1"]):
        store.add_listener(name)
    server = make_server(App(material, store, Playback(material, args.loudness), settings),
                         args.host, args.port)
    host, port = server.server_address[:2]
    base = args.url.rstrip("/") or f"http://{socket.gethostname() if host == '0.0.0.0' else host}:{port}"
    print(f"listening test over {', '.join(map(str, args.eval_dirs))}: {len(material.items)} items, "
          f"systems {', '.join(material.systems)}; ratings in {store.path}")
    for listener in store.listeners():
        print(f"  {listener.name}: {base}/l/{listener.token}")
    print(f"Ctrl-C stops; then: kani-adapt listen {' '.join(map(str, args.eval_dirs))} --results",
          flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, Stopped):  # the way a listening session ends: nothing is unfinished
        print("stopped; every answer given so far is saved")
    finally:
        server.server_close()
    return 0
