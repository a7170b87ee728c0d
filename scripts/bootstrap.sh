#!/usr/bin/env bash
# Idempotent install: system packages, .venv, pinned Python dependencies, kani-adapt (editable).
# Re-running skips what is already done; a changed pyproject.toml triggers a re-install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
# torch 2.13.0 (CPU build where a local wheel exists). GPU users: install your CUDA torch into
# .venv first (or set KANI_TORCH=skip); any torch >= 2.13 already there is kept.
TORCH_SPEC="${KANI_TORCH:-torch==2.13.0}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_apt+=(sox)
# the browser the listening-page tests drive (Playwright pointed at /usr/bin/chromium)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
"$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[bootstrap] installing Debian packages: ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || { echo "[bootstrap] creating .venv"; "$PY" -m venv .venv; }
stamp=.venv/.kani-adapt-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
if [ "$TORCH_SPEC" != skip ] && ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "[bootstrap] installing $TORCH_SPEC"
  "${pip[@]}" "$TORCH_SPEC"
fi
echo "[bootstrap] installing kani-adapt and its pinned dependencies (a few minutes the first time)"
"${pip[@]}" -e '.[test,ray,curator]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import kani_adapt, transformers, peft, lightning, datasets, soundfile, ray, nemo_curator, pyloudnorm, choix, jinja2, markdown_it, nh3, playwright" \
  || { echo "[bootstrap] install failed: see the pip output above" >&2; exit 1; }
# Every pin installs beside every other. The official runtime (below, --no-deps) is left out:
# on a second run it is already here and names its own older pins, on purpose unmet.
if ! found="$(.venv/bin/python -m pip check 2>&1)"; then
  rest="$(printf '%s\n' "$found" | grep -v '^kani-tts-2 ' || true)"
  [ -z "$rest" ] || { printf '%s\n' "$rest" >&2; echo "[bootstrap] pip check failed" >&2; exit 1; }
fi
# The official runtime, for conformance tests only: its model.py and speaker_embedder.py import
# with our transformers; --no-deps keeps its older NeMo/transformers pins out. Never imported by
# kani-adapt itself.
"${pip[@]}" --no-deps "kani-tts-2==0.0.5"
echo "$want" > "$stamp"
