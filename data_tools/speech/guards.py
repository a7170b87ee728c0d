"""Guards against what an ASR model makes up (Whisper's fallback thresholds and more): each one
a reason code the transcribe stage rejects a clip with. ``cfg`` is the transcribe stage's section
(data_tools/stages/transcribe.py). Imports no stage."""
from __future__ import annotations

from data_tools.speech import consistency


def repeated_ngram(text: str, max_n: int = 4) -> tuple[str, int]:
    """The 1..max_n word n-gram repeated most often back to back, and how often."""
    words, best = text.lower().split(), ("", 0)
    for n in range(1, max_n + 1):
        for start in range(len(words) - n + 1):
            gram, count = words[start: start + n], 1
            while words[start + count * n: start + (count + 1) * n] == gram:
                count += 1
            if count > best[1]:
                best = (" ".join(gram), count)
    return best


def guard_reasons(t, duration: float, cfg) -> list[tuple[str, str]]:
    """Every hallucination guard one ASR transcript breaks, as (reason, detail). NaN figures
    (a recogniser that does not measure them) break nothing."""
    gram, count = repeated_ngram(t.text)
    rules = [
        (not t.text.strip(), "asr_empty", "the recogniser wrote nothing"),
        (t.no_speech_prob > cfg.max_no_speech_prob, "asr_no_speech",
         f"no-speech probability {t.no_speech_prob:.2f} > {cfg.max_no_speech_prob}"),
        (t.avg_logprob < cfg.min_avg_logprob, "asr_low_logprob",
         f"average log-probability {t.avg_logprob:.2f} < {cfg.min_avg_logprob}"),
        (t.compression_ratio > cfg.max_compression_ratio, "asr_compression_ratio",
         f"compression ratio {t.compression_ratio:.2f} > {cfg.max_compression_ratio}"),
        (count >= cfg.max_ngram_repeats, "asr_repeated_ngram",
         f"{gram!r} {count} times in a row (limit {cfg.max_ngram_repeats})"),
        (getattr(t, "truncated", False), "asr_truncated", f"{duration:.1f} s > Whisper's 30 s"),
    ]
    return [(code, detail) for broken, code, detail in rules if broken]


def rate_rejections(rates: dict[str, tuple[str, float]], cfg,
                    min_count: int = 5) -> dict[str, str]:
    """{id: detail} of ASR transcripts whose words/second lie outside the absolute range or
    more than ``wps_outlier_mads`` robust deviations from their speaker's median."""
    out = {i: f"{wps:.2f} words/s outside {cfg.min_words_per_second}..{cfg.max_words_per_second}"
           for i, (_, wps) in rates.items()
           if not cfg.min_words_per_second <= wps <= cfg.max_words_per_second}
    far = consistency.rate_outliers(rates, cfg.wps_outlier_mads, min_count)
    for i, (wps, median) in far.items():
        out.setdefault(i, f"{wps:.2f} words/s vs {rates[i][0]}'s median {median:.2f}")
    return out
