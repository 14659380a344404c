#!/usr/bin/env bash
# Runs `glassbox bench` (and, when LLAMA_BENCH points to a llama-bench
# binary, llama-bench) on every *.gguf in a folder, alternating the two
# engines model by model so that both see the same machine load. JSON
# results go to OUT_DIR; bench/scripts/compare.py turns them into a table.
#
# Usage: bench/scripts/run_bench.sh MODEL_DIR [OUT_DIR]
# Environment: GLASSBOX (default build/glassbox), LLAMA_BENCH (optional),
#              THREADS (default 2), P (default 512), N (default 128),
#              REPS (default 3), ROUNDS (default 1: passes over all models),
#              SETTLE (default 4: seconds of rest before each run),
#              GLASSBOX_ARGS (more options for glassbox bench, e.g. "--isa avx2").
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
glassbox=${GLASSBOX:-$repo/build/glassbox}
model_dir=${1:?usage: run_bench.sh MODEL_DIR [OUT_DIR]}
out_dir=${2:-$model_dir/results}
threads=${THREADS:-2}
p=${P:-512}
n=${N:-128}
reps=${REPS:-3}
rounds=${ROUNDS:-1}
settle=${SETTLE:-4}

# A rest before each run: on a virtual machine the memory the previous run
# freed (a gigabyte or more of weights, KV cache and probe buffer) is handed
# back to the host about two seconds after it is freed (virtio-balloon free
# page reporting), and the host's work on it stalls the guest's CPUs for tens
# of milliseconds at a time, which would land in the next run's timings.
rest() { sleep "$settle"; }

mkdir -p "$out_dir"
for round in $(seq 1 "$rounds"); do
  for model in "$model_dir"/*.gguf; do
    name=$(basename "$model" .gguf)
    echo "== round $round: $name" >&2
    rest
    # shellcheck disable=SC2086 # GLASSBOX_ARGS is a list of words
    "$glassbox" bench -m "$model" -p "$p" -n "$n" -t "$threads" -r "$reps" --json ${GLASSBOX_ARGS:-} \
      > "$out_dir/$name.glassbox.$round.json"
    if [ -n "${LLAMA_BENCH:-}" ]; then
      # llama-bench's defaults otherwise (F16 KV cache, weight repacking on).
      rest
      "$LLAMA_BENCH" -m "$model" -p "$p" -n "$n" -t "$threads" -r "$reps" -o json \
        > "$out_dir/$name.llama.$round.json"
    fi
  done
done
echo "results in $out_dir" >&2
