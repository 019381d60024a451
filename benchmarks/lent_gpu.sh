#!/usr/bin/env bash
# Run benchmark commands side by side on a lent GPU machine, under one deadline, and pack what
# they wrote into one archive (the device tool brings back at most 8 files).
#
#   SEMIVAE_DATA=.gpu-data bash benchmarks/lent_gpu.sh JOBS SECONDS OUT_DIR
#
# JOBS holds one shell command per line (blank lines and # comments skipped); each runs in the
# background from the repository root with $RESULTS set to a folder for its rows, and is stopped
# at SECONDS. The light models are bound by kernel launches, not by the GPU's arithmetic, so up
# to one job per CPU core share the GPU well (docs/benchmarks.md, section 2). The code runs from
# source (PYTHONPATH=src). OUT_DIR/results.tar.gz then holds RESULTS/*.json, one log per job and
# the machine's description (gpu.txt).
set -uo pipefail
jobs_file=$1 seconds=$2 out=$3
export RESULTS=${RESULTS:-$(mktemp -d)/results} PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$RESULTS/logs" "$out"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU";
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; nproc; date -u; } \
  >"$RESULTS/gpu.txt" 2>&1
n=0
while IFS= read -r line; do
  [[ -z "${line// }" || "$line" == \#* ]] && continue
  n=$((n + 1))
  echo "$line" >"$RESULTS/logs/job-$n.cmd"
  (timeout "$seconds" bash -c "$line" >"$RESULTS/logs/job-$n.log" 2>&1; echo "exit $?" >>"$RESULTS/logs/job-$n.log") &
done <"$jobs_file"
echo "$n jobs started, deadline ${seconds}s"
wait
tail -n 3 "$RESULTS"/logs/job-*.log
tar -czf "$out/results.tar.gz" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")"
