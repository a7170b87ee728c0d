"""`kani-adapt listen`: a blinded listening test over eval folders, and its results."""
from __future__ import annotations

import socket
import ssl
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from kani_adapt.core.cli_kit import Formatter
from kani_adapt.core.errors import ConfigError
from kani_adapt.core.stopping import Stopped
from kani_adapt.core import console

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
EVAL_DIR/listening.sqlite (the first folder's). An eval run again into that folder moves
it aside first, ratings, clips and notes together, to EVAL_DIR.kept-<when it was written>
(--results reads it there); while a test serves, no eval moves it.

Serving binds 127.0.0.1: the listeners use this machine. For a remote panel give --host
0.0.0.0 with --certfile/--keyfile (HTTPS; without it the links and answers cross the
network readable, and the command warns), --url with the address they reach, and send each
listener their own link. Audio is served by trial and slot only; a listener sees nothing of
the others. Requests from pages of other sites or to other host names are refused; slow or
idle connections are closed after seconds.

  kani-adapt listen runs/demo/eval --listeners 6 --expires 2026-06-30
  kani-adapt listen runs/hessian/eval runs/hessian_r64/eval --listener anna --listener ben
  kani-adapt listen runs/demo/eval --host 0.0.0.0 --certfile cert.pem --keyfile key.pem
  kani-adapt listen runs/demo/eval --results

--results closes the test, then prints the figures (preference rates, CMOS, MUSHRA means,
accent per system and tag, listeners' CER, Bradley-Terry strengths, all with 95 % intervals
over listeners and items) and writes EVAL_DIR/listening.json, a section of eval.md and
index.html; `kani-adapt export` puts them into the adapter card. A closed test (--results or
--close) takes no more answers (410 Gone, also after a restart), so the published figures
stay what they are; so does a test past its --expires date."""


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
    p.add_argument("--results", action="store_true",
                   help="close the test, print and write the results; serve nothing")
    p.add_argument("--close", action="store_true", help="close the test: later answers get 410; serve nothing")
    p.add_argument("--expires", default=None, metavar="YYYY-MM-DD",
                   help="the links work through this day (or until YYYY-MM-DDTHH:MM), then get 410")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    p.add_argument("--url", default="", help="base URL printed in the invite links (default: from host and port)")
    p.add_argument("--certfile", type=Path, default=None, help="serve HTTPS: a PEM certificate (chain)")
    p.add_argument("--keyfile", type=Path, default=None, help="the certificate's PEM private key")
    p.add_argument("--max-connections", type=int, default=200, metavar="N",
                   help="open connections at once; more get 503")
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
    with _reading([Path(f) for f in args.eval_dirs]):
        return _run(args)


@contextmanager
def _reading(folders: list[Path]):
    """Hold each eval folder's lock shared while the test serves or writes its results, so no
    eval run moves its clips or ratings away meanwhile (a folder another user's, whose lock
    cannot be written here, is read without)."""
    from kani_adapt.core.locks import hold_output

    with ExitStack() as held:
        for k, folder in enumerate(folders):
            if not folder.is_dir():  # the material names what is missing
                continue
            try:
                held.enter_context(hold_output(folder, "kani-adapt listen", shared=True))
            except OSError:
                if k == 0:  # the ratings are written there: its lock must be writable too
                    raise
        yield


def _run(args) -> int:
    from kani_adapt.listen.material import load_material
    from kani_adapt.listen.store import FILE, Store

    folders = [Path(f) for f in args.eval_dirs]
    material = load_material(folders, args.sample, _describe(args.describe))
    if (args.results or args.close) and not (folders[0] / FILE).is_file():
        raise ConfigError(f"{folders[0]}: no listening test here yet ({FILE}); serve one first")
    store = Store(folders[0] / FILE, material.fingerprint())
    if args.results:
        return results(args, material, store)
    if args.close:
        store.close()
        print(f"{store.path}: {store.closed()}. Later answers get 410; the results: "
              f"kani-adapt listen {' '.join(map(str, folders))} --results")
        return 0
    return serve(args, material, store)


def results(args, material, store) -> int:
    """Close the test, then print and write its results (the same on every later run)."""
    from kani_adapt.listen import results as files
    from kani_adapt.listen.analysis import analyse

    closed = store.close()
    res = analyse(store.judgements(), material, args.resamples, args.keep_all)
    res["closed"] = _when(closed)
    print(files.markdown(res))
    for path in files.write(Path(args.eval_dirs[0]), res):
        print(f"wrote {path}")
    return 0


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _expiry(text: str) -> float:
    """The UNIX time at which links given ``--expires`` stop working."""
    try:
        when = datetime.fromisoformat(text)
        if len(text) == 10:  # a date: the links work through that day
            when = datetime.combine(date.fromisoformat(text) + timedelta(days=1), datetime.min.time())
    except ValueError:
        raise ConfigError(f"--expires {text!r}: write a date, YYYY-MM-DD (the links work through that "
                          "day), or YYYY-MM-DDTHH:MM") from None
    if when.timestamp() <= time.time():
        raise ConfigError(f"--expires {text}: that is past already; give a later date")
    return when.timestamp()


def _check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    if (certfile is None) != (keyfile is None):
        raise ConfigError("give --certfile and --keyfile together (a PEM certificate and its private key)")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise ConfigError(f"{path}: no such file (--certfile/--keyfile: a PEM certificate and its private key)")


def _open_for_answers(args, store) -> None:
    """Set ``--expires``, refuse a test that ended, make sure the invites exist."""
    closed, _ = store.ending()
    if args.expires and closed is None:
        store.expire_at(_expiry(args.expires))
    if store.closed():
        raise ConfigError(f"{store.path}: {store.closed()}: its results stay as published; move the file "
                          "away to start a new test" + ("" if closed else ", or give a later --expires"))
    names = list(args.listener) + [f"listener-{k}" for k in range(1, args.listeners + 1)]
    for name in names or ([] if store.listeners() else ["listener-1"]):
        store.add_listener(name)


def serve(args, material, store) -> int:
    from kani_adapt.listen.playback import Playback
    from kani_adapt.listen.server import App, Limits, make_server

    settings = _settings(args)
    if args.max_connections < 1:
        raise ConfigError("--max-connections is 1 or more")
    _check_tls(args.certfile, args.keyfile)
    _open_for_answers(args, store)
    try:
        server = make_server(App(material, store, Playback(material, args.loudness), settings),
                             args.host, args.port, Limits(max_connections=args.max_connections),
                             certfile=args.certfile, keyfile=args.keyfile, url=args.url)
    except ssl.SSLError as err:
        raise ConfigError(f"--certfile {args.certfile} --keyfile {args.keyfile}: not a PEM certificate "
                          f"and its private key ({err})") from None
    host, port = server.server_address[:2]
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    base = args.url.rstrip("/") or f"{'https' if server.tls else 'http'}://{shown}:{port}"
    print(f"listening test over {', '.join(map(str, args.eval_dirs))}: {len(material.items)} items, "
          f"systems {', '.join(material.systems)}; ratings in {store.path}")
    expires = store.ending()[1]
    if expires is not None:
        print(f"the links work until {_when(expires)} (this machine's time)")
    for listener in store.listeners():
        print(f"  {console.shown(listener.name)}: {base}/l/{listener.token}")
    if server.beyond_loopback and not server.tls:
        sys.stdout.flush()
        print(f"WARNING: serving on {host} over plain HTTP: anyone on the way between a listener and "
              "this machine can read the invite links and the answers, and answer in their place. "
              "Give --certfile and --keyfile, or bind 127.0.0.1 behind an HTTPS proxy.",
              file=sys.stderr, flush=True)
    print(f"Ctrl-C stops (serving again goes on); closing the test and its results: "
          f"kani-adapt listen {' '.join(map(str, args.eval_dirs))} --results", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, Stopped):  # the way a listening session ends: nothing is unfinished
        print("stopped; every answer given so far is saved")
    finally:
        server.server_close()
    return 0
