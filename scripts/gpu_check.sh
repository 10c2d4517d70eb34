#!/usr/bin/env bash
# One prepared check of owbench on one GPU, under 8 minutes (GitHub issues 19 item 5 and 21):
# the smoke suite on CUDA, paper-preset update timings (bf16 autocast on and off through each config's `amp`,
# peak GPU memory), host syncs per update (bf16 and TF32 on and off), a CUDA checkpoint reloaded on the CPU,
# 2-job sweeps on Ray and the local executor, and hours per job of every suite's paper profile. Each section
# runs in its own process under its own time limit (benchmark/gpu_check.py); JSON and Markdown go to $OUT
# (or ./gpu-check). No torch.compile timings: issue 21 removed the option from every config (the compiled RSSM
# recompiled past the limit and fell back to eager silently; CoWorld and Vid2Act never ran the compiled
# actor-critic), so there is nothing to compile.
#
#   scripts/gpu_check.sh                          # on the GPU machine, from any folder
#   scripts/gpu_check.sh --device cpu --tiny      # the CPU path (smoke presets; tests/benchmark/test_gpu_check.py)
#   scripts/gpu_check.sh --only updates,sync      # some sections
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}"
out="${OUT:-gpu-check}"
# the sections' limits add up to 450 s; this outer limit (470 s) only catches a hang in the driver itself
exec timeout --kill-after=5 470 "${PYTHON:-python}" -m benchmark.gpu_check --out "$out" "$@"
