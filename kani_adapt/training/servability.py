"""Whether an exported LoRA adapter can be served unmerged by vLLM, SGLang and llama.cpp.

Decided from the adapter's target modules and the full tensors it carries, with what the
engines document (read 2026-12): vLLM's LFM2 takes LoRA on q/k/v (packed) and w1/w3 (packed)
but refuses adapters holding full ``lm_head``/embedding tensors (vllm#9280, #32599); SGLang's
LFM2 LoRA covers q/k/v only (until its PR #30056); llama.cpp's LoRA converter refuses embedding
tensors (#11554). ``kani_extras.safetensors`` (speaker projection, RoPE scales) is applied only
by a merged export or kani-adapt's ``load_adapter``: an engine serving the adapter unmerged
leaves those tensors as the base had them. Single trained rows of the tied embedding/LM head
(``lora.stop_row``: PEFT's trainable tokens, inside the adapter file) are in no engine's LoRA
support either: such an adapter is served merged. Modules an engine's documentation does not name are
"unverified", not "yes".
"""
from __future__ import annotations

from dataclasses import dataclass

QKV = {"q_proj", "k_proj", "v_proj"}
ENGINES = {  # engine: (modules it takes on LFM2, refuses full embedding/lm_head tensors)
    "vLLM": (QKV | {"w1", "w3"}, True),
    "SGLang": (QKV, True),
    "llama.cpp": (None, True),  # the converter's module list for LFM2 is not documented
}


@dataclass(frozen=True)
class Verdict:
    engine: str
    answer: str  # yes, no, unverified
    why: str


def verdicts(targets: list[str], full_tensors: list[str], extras: list[str],
             rows: list[str] = ()) -> list[Verdict]:
    leaves = {t.rsplit(".", 1)[-1] for t in targets}
    embedding = [t for t in full_tensors if "embed" in t or "lm_head" in t]
    out = []
    for engine, (takes, no_embeddings) in ENGINES.items():
        if embedding and no_embeddings:
            out.append(Verdict(engine, "no", f"it refuses full tensors {', '.join(embedding)}"))
        elif extras:
            out.append(Verdict(engine, "no", f"it would not apply {', '.join(extras)} "
                                             "(kani_extras); serve the merged export"))
        elif rows:
            out.append(Verdict(engine, "no", f"it would not apply {', '.join(rows)} (PEFT "
                                             "trainable tokens); serve the merged export"))
        elif takes is None:
            out.append(Verdict(engine, "unverified", "no embedding tensors (its known refusal "
                                                     "does not apply); LFM2 modules untested"))
        elif leaves <= takes:
            out.append(Verdict(engine, "yes", f"it takes LoRA on {', '.join(sorted(leaves))}"))
        else:
            out.append(Verdict(engine, "no", f"its LFM2 LoRA does not cover "
                                             f"{', '.join(sorted(leaves - takes))}"))
    return out


def markdown(found: list[Verdict]) -> str:
    rows = "\n".join(f"| {v.engine} | {v.answer} | {v.why} |" for v in found)
    return ("| engine | serves this adapter unmerged | why |\n|---|---|---|\n" + rows + "\n\n"
            "Merged exports (`kani-adapt export RUN_DIR --merge`) serve everywhere a KaniTTS2 "
            "checkpoint does. `lora.targets: servable` (or `qv`) without `lora.stop_row` keeps to "
            "q/k/v, which all three take.\n")
