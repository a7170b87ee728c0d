"""`kani-adapt speaker-emb`: a voice file (128 floats) from reference recordings."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.atomic import write_npy
from kani_adapt.core.cli_kit import Formatter, add_device
from kani_adapt.config.defaults import SPEAKER_EMBEDDER_HUB_ID as DEFAULT_MODEL
from kani_adapt.core.errors import ConfigError


def add_speaker_emb(sub) -> None:
    p = sub.add_parser(
        "speaker-emb", formatter_class=Formatter,
        help="make a voice file (.npy, 128 floats) from reference recordings",
        description=(
            "Embed one or more reference recordings of a speaker into the 128-d voice vector\n"
            "that KaniTTS2 is conditioned on, and save it with numpy.\n\n"
            "The file is what `kani-adapt generate --speaker-emb` takes, and what the official\n"
            "runtime takes as its speaker embedding (numpy.load, then a [1, 128] tensor).\n"
            "Any sample rate and channel count are accepted (mixed to mono, resampled to\n"
            "16 kHz); only the first 30 s of each file count. With several references the\n"
            "result is the mean of their embeddings, scaled back to unit length.\n\n"
            "The embedder is WavLM with a statistics-pooling head in the layout of\n"
            f"{DEFAULT_MODEL} (a local copy of it works offline)."
        ),
        epilog=("examples:\n  kani-adapt speaker-emb anna.wav --out voices/anna.npy\n"
                "  kani-adapt speaker-emb a1.flac a2.flac a3.flac --model ./speaker-emb-tbr "
                "--out voices/a.npy"),
    )
    p.add_argument("refs", nargs="+", type=Path, metavar="REF",
                   help="reference recording(s) of one speaker (wav, flac, ogg, ...)")
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="PATH_OR_ID",
                   help="speaker-embedder folder or hub id; `tiny`: a random one (tests and "
                        "demos, as `speaker_embedder: tiny` in a recipe)")
    p.add_argument("--out", type=Path, required=True, help="output .npy file (128 float32)")
    add_device(p, "the speaker embedder")
    p.set_defaults(func=run_speaker_emb)


def run_speaker_emb(args) -> int:
    import numpy as np

    from kani_adapt.core.devices import resolve
    from kani_adapt.models.speaker import embedder
    from kani_adapt.models.speaker.voice import mean_voice

    if args.out.suffix != ".npy":
        raise ConfigError(f"--out {args.out}: use a .npy file name")
    clips = [read_reference(path) for path in args.refs]  # all files checked before the model
    if args.model == "tiny":  # random weights, seed 0: the recipes' tiny embedder
        model = embedder.build(seed=0).to(resolve(args.device)).eval()
    else:
        model = embedder.load(args.model, resolve(args.device))
    vectors = np.concatenate([model.embed([audio], rate) for audio, rate in clips])
    voice = mean_voice(vectors)
    write_npy(args.out, voice)
    spread = f", lowest cosine to the mean {float((vectors @ voice).min()):.3f}" \
        if len(vectors) > 1 else ""
    print(f"wrote {args.out}: {voice.shape[0]} floats from {len(vectors)} reference(s){spread}")
    return 0


def read_reference(path: Path):
    from kani_adapt.audio import read

    got = read(path)  # unreadable, empty or NaN: one line naming the file
    return got.audio, got.sample_rate

