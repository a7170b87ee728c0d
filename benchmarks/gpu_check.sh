#!/usr/bin/env bash
# The prepared GPU run: every gpu-marked test and every benchmark's GPU row, within a time
# budget (8 minutes by default), figures written in the format of benchmarks/README.md with
# the card's name. Run it the moment a CUDA machine is at hand:
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--budget SECONDS]
#   bash benchmarks/gpu_check.sh --dry-run      # the same sequence on the CPU, tiny sizes
#
# On a GPU machine it first makes sure the venv's torch sees CUDA (installing the CUDA build
# of the same torch version from the PyTorch index when it does not). Each step has its own
# time limit; a step that fails or runs out of time is recorded as such and the next one
# runs. Writes DIR/rows.md (one table per step: date, machine, command, result, figures),
# DIR/summary.tsv and DIR/<step>.log. Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0; out="runs/gpu_check"; budget=480
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --out) out="$2"; shift ;;
    --budget) budget="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
py="${KANI_PYTHON:-.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1

has_cuda() { "$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; }
if [ "$dry" = 0 ] && ! has_cuda; then
  if ! command -v nvidia-smi >/dev/null; then
    echo "gpu_check.sh: no CUDA GPU here (no nvidia-smi); use --dry-run on a CPU" >&2; exit 3
  fi
  version="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')"
  echo "installing the CUDA build of torch $version into the venv"
  for cu in cu128 cu126 cu130; do
    "$py" -m pip install -q "torch==$version" --index-url "https://download.pytorch.org/whl/$cu" \
      && has_cuda && break
  done
  has_cuda || { echo "gpu_check.sh: torch still sees no GPU; install a CUDA torch by hand" >&2; exit 3; }
fi

if [ "$dry" = 1 ]; then
  machine="CPU dry run ($(nproc) cores, tiny sizes)"
else
  machine="$(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | \
             awk '{n=$1; $1=""; printf "%s%s x%d", sep, substr($0,2), n; sep=", "}')"
fi
gpus="$("$py" -c 'import torch; print(torch.cuda.device_count())')"
today="$(date +%Y-%m-%d)"
deadline=$(( $(date +%s) + budget ))
failed=0
: > "$out/summary.tsv"
printf '# GPU check %s\n\nmachine: %s\n' "$today" "$machine" > "$out/rows.md"

# step NAME LIMIT_SECONDS COMMAND...: run it within its limit and what is left of the budget
step() {
  local name="$1" limit="$2"; shift 2
  local left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 15 ]; then
    printf '%s\tskipped\t0\t%s\n' "$name" "$*" >> "$out/summary.tsv"; failed=1
    printf '\n## %s\n\nskipped: the time budget was spent\n' "$name" >> "$out/rows.md"; return
  fi
  [ "$limit" -gt "$left" ] && limit="$left"
  local start=$(date +%s) rc result
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1; rc=$?
  local took=$(( $(date +%s) - start ))
  case "$rc" in 0) result=ok ;; 124|137) result="timeout after ${limit} s" ;; *) result="failed ($rc)" ;; esac
  [ "$rc" = 0 ] || failed=1
  printf '%s\t%s\t%s\t%s\n' "$name" "$result" "$took" "$*" >> "$out/summary.tsv"
  echo "$name: $result in ${took} s"
  local figures
  figures="$(grep -E '[0-9]' "$out/$name.log" | grep -vE 'Warning|warn\(|^\s+(File|from|import)' | \
             tail -n 8 | tr '|' '/' | sed 's/^ *//' | paste -sd ';' | sed 's/;/; /g')"
  { printf '\n## %s\n\n' "$name"
    printf '| date | machine | command | result | figures |\n|---|---|---|---|---|\n'
    printf '| %s | %s | `%s` | %s in %s s | %s |\n' "$today" "$machine" "$*" "$result" "$took" \
      "${figures:-(none)}"; } >> "$out/rows.md"
}

b=benchmarks
if [ "$dry" = 1 ]; then
  # Every step of the GPU sequence, each as small as still runs its code paths and prints its
  # figures: a check that the script works, not a measurement. The gpu tests
  # are collected from the files that mark any (collecting the whole suite takes longer than
  # the rest); on the CPU they are skipped, which is what the step's result then says.
  gpu_files="$(grep -rlE 'mark\.gpu' tests --include='*.py' | sort | tr '\n' ' ')"
  step gpu_tests 240 "$py" -m pytest -q -m gpu -p no:cacheprovider $gpu_files
  # the three training rows in one run; compiling is switched off (it takes minutes on a CPU),
  # so what runs is the trainer.compile code path, not the compiler
  step generator_throughput 240 env TORCH_COMPILE_DISABLE=1 "$py" $b/generator_throughput.py \
    --size tiny --steps 2 --utterances 4 --max-seconds 2 --budget auto --compile
  step generator_memory 240 "$py" $b/generator_memory.py --size tiny --modes lora --seconds 2 \
    --checkpointing on --chunk 64
  step generation_speed 240 "$py" $b/generation_speed.py --sizes tiny --batches 1 2 --tokens 8 \
    --repeats 1
  step data_throughput 240 "$py" $b/data_throughput.py --clips 2 --vad-seconds 2 --max-batch 2
  step asr_throughput 240 "$py" $b/asr_throughput.py --shape twin --clips 2 --tokens 4
  step eval_throughput 240 "$py" $b/eval_throughput.py --items 2 --max-frames 4 --batch-size 2 --judges twin
  step codec_step 240 "$py" $b/codec_step.py --size tiny --batch-size 1 --seconds 0.5 \
    --discriminators mrd
  step data_engines 240 "$py" $b/data_engines.py --clips 3 --cpus 1 --workers 1
  step short_prompts 240 "$py" $b/short_prompts.py --steps 2 --seeds 1 --texts 2
  step preference 240 "$py" $b/preference.py --size tiny --rollouts 2 --batch 2 --frames 2 --pairs 1
else
  step gpu_tests 120 "$py" -m pytest -q -m gpu -p no:cacheprovider tests
  step generator_throughput 60 "$py" $b/generator_throughput.py --size 350m --steps 20 --utterances 200
  step token_budget_auto 45 "$py" $b/generator_throughput.py --size 350m --steps 10 --utterances 200 --budget auto
  step trainer_compile 60 "$py" $b/generator_throughput.py --size 350m --steps 20 --utterances 200 --compile
  step generator_memory 90 "$py" $b/generator_memory.py --size 350m --seconds 10 20 40 --checkpointing on --chunk 64
  step generation_speed 45 "$py" $b/generation_speed.py --sizes 350m --batches 1 16 --repeats 1
  step data_throughput 30 "$py" $b/data_throughput.py --codec nano --clips 48
  step asr_throughput 30 "$py" $b/asr_throughput.py --shape tiny --clips 64 --device cuda
  step preference 60 "$py" $b/preference.py --size 350m --rollouts 32 --batch 32 --frames 100 --pairs 8 --device cuda
  step eval_throughput 45 "$py" $b/eval_throughput.py --items 100 --max-frames 100 --device cuda
  step eval_judges 120 "$py" $b/eval_throughput.py --items 64 --max-frames 50 --device cuda --judges full
  step codec_step 30 "$py" $b/codec_step.py --device cuda --batch-size 8
  # CPU, not GPU: the card's host is the one many-core machine at hand, where Ray's scaling
  # with workers shows (last, so it is what a short budget drops)
  step data_engines 90 "$py" $b/data_engines.py --clips 64 --cpus 12 --workers 1 4 12
  step short_prompts 300 "$py" $b/short_prompts.py --steps 200 --seeds 8  # the tiny world, CPU
  if [ "$gpus" -ge 2 ]; then  # FSDP over two cards (its test is among the gpu tests too)
    step fsdp_two_gpus 60 "$py" -m pytest -q -p no:cacheprovider tests/training/test_fsdp.py
  fi
fi
echo "figures: $out/rows.md"
exit "$failed"
