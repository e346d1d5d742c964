#!/usr/bin/env bash
# One short GPU lease, prepared ahead: continue the embedded small-mel model and train the paper
# configuration side by side on one GPU for TRAIN_S seconds, then benchmark on CUDA and bring back
# what is worth keeping. Run from the repository root on the GPU machine:
#
#   python deploy/gpu/pack_corpus.py pack ~/.cache/textcall/corpus/cache64 .gpu/corpus.pack --clips 620  # here
#   OUT=/some/folder bash deploy/gpu/lease.sh                                                           # there
#
# Each stage is bounded by `timeout` (training stops on SIGTERM, saves and exits: model/diffusion/train.py),
# a failed stage does not stop the next, and everything lands in $OUT:
#   log.txt, mel_mid.safetensors / mel_end.safetensors (small-mel EMA weights, float16, at half time
#   and at the end), results.tar.gz (both runs' cards, loss.csv, loss.png, contact sheets, benchmark).
# Settings (environment): TRAIN_S (default 300), DEVICE (cuda), PAPER_CONFIG (paper), PAPER_BATCH (16),
# MEL_BATCH (32), MEL_ALONE (audio-alone steps per joint step, 4), PACK (.gpu/corpus.pack), PAPER=0 to
# give the GPU to small-mel alone (side by side on 2026-11-30 the two kept the GPU at 100 % and shared it).
set -u
OUT=${OUT:?set OUT to the folder for results}
TRAIN_S=${TRAIN_S:-300}
DEVICE=${DEVICE:-cuda}
PAPER_CONFIG=${PAPER_CONFIG:-paper}
PAPER_BATCH=${PAPER_BATCH:-16}
MEL_BATCH=${MEL_BATCH:-32}
MEL_ALONE=${MEL_ALONE:-4}
PAPER=${PAPER:-1}
PACK=${PACK:-.gpu/corpus.pack}
PY=${PY:-python3}
WORK=${WORK:-/tmp/textcall-lease}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK/runs" "$WORK/results"
exec > >(tee -a "$OUT/log.txt") 2>&1
t0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }

stamp "environment"
{ nvidia-smi -L 2>&1; $PY -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__,
  "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'; nproc; } \
  | tee "$WORK/results/env.txt"

stamp "unpack corpus"
$PY deploy/gpu/pack_corpus.py unpack "$PACK" "$WORK/cache" || { stamp "no corpus, stopping"; exit 1; }

train() {  # name, extra args...
  local name=$1; shift
  timeout -s TERM -k 90 "$TRAIN_S" $PY -m model.train_cli diffusion --data "$WORK/cache" --out "$WORK/runs/$name" \
    --device "$DEVICE" --steps 1000000 --log-every 20 --no-progress "$@" > "$WORK/results/$name.train.log" 2>&1
  echo "$name: training exited with $? (124 = stopped at the time limit, checkpoint saved)"
}

stamp "train small-mel (from the shipped weights)$([ "$PAPER" != 0 ] && echo " and $PAPER_CONFIG (from scratch), side by side"), ${TRAIN_S} s"
train mel --init model/weights/diffusion --config model/weights/diffusion/config.json --crop-frames 0 \
  --batch-size "$MEL_BATCH" --lr 2e-4 --audio-lr-scale 5 --audio-alone-steps "$MEL_ALONE" --audio-alone-batch 64 --save-every 200 &
mel_pid=$!
pids=($mel_pid)
if [ "$PAPER" != 0 ]; then
  train paper --config "$PAPER_CONFIG" --crop-frames 0 --batch-size "$PAPER_BATCH" --lr 1e-4 --save-every 500 &
  pids+=($!)
fi
running() { for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
# a second small-mel candidate at about half time (the trainer saves every 200 steps; take the latest)
for _ in $(seq $(( TRAIN_S / 10 ))); do  # half time in 5 s ticks, or until every run has exited
  sleep 5
  running || break
done
stamp "half time"
if kill -0 $mel_pid 2>/dev/null && [ -f "$WORK/runs/mel/model.safetensors" ]; then
  cp -r "$WORK/runs/mel" "$WORK/runs/mel-mid" && rm -f "$WORK/runs/mel-mid"/train_state.*
fi
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>&1 | tee -a "$WORK/results/env.txt"
wait "${pids[@]}"
stamp "training done"
tail -n 3 "$WORK/runs/mel/loss.csv" "$WORK/runs/paper/loss.csv" 2>&1

for pair in mel-mid:mel_mid mel:mel_end; do
  run=${pair%%:*}
  if [ -f "$WORK/runs/$run/model.safetensors" ]; then
    $PY -m model.release "diffusion=$WORK/runs/$run" --out "$WORK/release-$run"
    cp "$WORK/release-$run/diffusion/model.safetensors" "$OUT/${pair##*:}.safetensors"
  fi
done

stamp "contact sheets"
for run in mel paper; do
  [ -f "$WORK/runs/$run/model.safetensors" ] && timeout 120 $PY deploy/gpu/sample_sheet.py "$WORK/runs/$run" \
    "$WORK/results/$run-sheet.png" --clips 6 --steps 20 --device "$DEVICE" | tee "$WORK/results/$run-sheet.jsonl"
done

stamp "benchmark on $DEVICE"
timeout 150 $PY tests/benchmarks/bench_diffusion.py --device "$DEVICE" --configs "small-mel,$PAPER_CONFIG" --repeats 5 \
  2>&1 | tee "$WORK/results/bench_diffusion.txt"

stamp "pack results"
for run in mel paper; do
  mkdir -p "$WORK/results/$run"
  cp "$WORK/runs/$run"/{README.md,config.json,loss.csv,loss.png} "$WORK/results/$run/" 2>/dev/null
done
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
ls -l "$OUT"
stamp "done"
