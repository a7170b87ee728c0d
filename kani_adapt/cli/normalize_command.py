"""`kani-adapt normalize`: the text frontend on the command line (for the official runtime)."""
from __future__ import annotations

import sys
from pathlib import Path

from kani_adapt.core.cli_kit import Formatter


def add_normalize(sub) -> None:
    p = sub.add_parser(
        "normalize", formatter_class=Formatter,
        help="print texts as kani-adapt gives them to the model (numbers, dates spelled out)",
        description=(
            "Print each text as the kani-adapt text frontend reads it: Unicode NFC, invisible\n"
            "and control characters removed, whitespace folded, and numbers, dates, times,\n"
            "phone numbers, currencies, ordinals, abbreviations and symbols spelled out in the\n"
            "language. Training, generate, eval and recipe samples all read texts this way;\n"
            "use it to prepare texts for the official KaniTTS2 runtime, which does not.\n\n"
            "With --model, the frontend stored with that checkpoint or adapter\n"
            "(text_frontend.json) decides; --tag then picks the language."
        ),
        epilog=('examples:\n  kani-adapt normalize --language de "Am 3. Mai um 14:30 kostet es 5 €"\n'
                '  kani-adapt normalize --model exports/hessian --tag de_hessian "Nr. 7"\n'
                "  kani-adapt normalize --language en --file prompts.txt"),
    )
    p.add_argument("text", nargs="*", help="texts to normalise (one line of output each)")
    p.add_argument("--language", default="", help="language code: de, en, sw, ...")
    p.add_argument("--tag", default="", help="a tag such as de_hessian (its language is used)")
    p.add_argument("--model", type=Path, help="checkpoint or adapter folder whose stored frontend applies")
    p.add_argument("--file", type=Path, help="read texts from this file, one per line")
    p.set_defaults(func=run_normalize)


def run_normalize(args) -> int:
    from kani_adapt.text import frontend
    from kani_adapt.core.errors import ConfigError

    texts = list(args.text)
    if args.file:
        try:
            texts += args.file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"--file {args.file}: cannot read it as UTF-8 text ({err})") from None
    if not texts:
        raise ConfigError("normalize: give a text, or --file with one text per line")
    front = frontend.Frontend(args.language)
    if args.model:
        stored = frontend.read(args.model)
        if stored is None:
            print(f"{args.model}: no {frontend.FILE}; using the default frontend", file=sys.stderr)
        elif args.language:  # the stored settings, another language
            front = frontend.Frontend(args.language, numbers=stored.numbers, enabled=stored.enabled)
        else:
            front = stored
    if not (args.language or args.tag or front.languages):
        raise ConfigError("normalize: say which language (--language de, or --tag de_hessian)")
    for text in texts:
        print(front.apply(text, args.tag or None))
    return 0
