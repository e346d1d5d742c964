#!/usr/bin/env bash
# One short GPU lease for one face per call: make the data on the lent machine's CPUs, then train the
# portrait model and the reference-conditioned joint model side by side on the GPU for TRAIN_S
# seconds (both from the shipped weights), re-sample corpus clips with the new joint model, train
# the restorer and the portrait cleaner for RESTORE_S seconds each, and bring back float16 weights.
# Run from the repository root on the GPU machine (nothing needs carrying: the corpus is made there):
#
#   OUT=/some/folder TRAIN_S=360 bash deploy/gpu/lease_face.sh
#
# Every stage is bounded by `timeout` (the trainers stop on SIGTERM, save and exit) and a failed stage
# does not stop the next. In $OUT: log.txt, release/<name>/ (float16 weights + cards, ready to copy
# into model/weights), results.tar.gz (loss curves, sample sheets, bench_reference / bench_portrait output).
# Settings: TRAIN_S (360), RESTORE_S (120), DEVICE (cuda), WORKERS (CPU processes for the data, 16),
# PORTRAIT_BATCH (128), REF_BATCH (32), REF_CROP (8).
set -u
OUT=${OUT:?set OUT to the folder for results}
TRAIN_S=${TRAIN_S:-360}
RESTORE_S=${RESTORE_S:-120}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-16}
PORTRAIT_BATCH=${PORTRAIT_BATCH:-128}
REF_BATCH=${REF_BATCH:-32}
REF_CROP=${REF_CROP:-8}
PY=${PY:-python3}
WORK=${WORK:-/tmp/textcall-face}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TEXTCALL_CORPUS_HOME=$WORK/corpus
mkdir -p "$OUT" "$WORK/runs" "$WORK/results"
exec > >(tee -a "$OUT/log.txt") 2>&1
t0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
TC="$PY -m sender"
C=$WORK/corpus

stamp "environment"
nvidia-smi -L 2>&1; nproc

stamp "data: two video corpora and the portraits, $WORKERS processes"
$TC corpus synth --out "$C/grid-synth" --workers "$WORKERS" > "$WORK/results/synth.log" 2>&1 &
$TC corpus synth --out "$C/grid-synth-s1" --female 40 --male 40 --sentences 12 --seed 1 --workers "$WORKERS" > "$WORK/results/synth1.log" 2>&1 &
$TC corpus stills --purpose portrait --workers "$WORKERS" > "$WORK/results/stills.log" 2>&1 &
wait
$TC corpus prepare "$C/grid-synth" --out "$C/cache64" --workers "$WORKERS" > "$WORK/results/prepare.log" 2>&1
$TC corpus prepare "$C/grid-synth-s1" --out "$C/cache64-s1" --workers "$WORKERS" >> "$WORK/results/prepare.log" 2>&1
DATA="$C/cache64,$C/cache64-s1"

train() {  # seconds, name, what, args...
  local seconds=$1 name=$2 what=$3; shift 3
  timeout -s TERM -k 90 "$seconds" $PY -m model.train_cli "$what" --out "$WORK/runs/$name" --device "$DEVICE" --no-progress "$@" \
    > "$WORK/results/$name.train.log" 2>&1
  echo "$name: training exited with $? (124 = stopped at the time limit, checkpoint saved)"
}

stamp "train the portrait model and the joint model side by side, $TRAIN_S s"
train "$TRAIN_S" portrait portrait --data "$C/stills-portrait" --batch-size "$PORTRAIT_BATCH" --steps 1000000 --save-every 500 &
train "$TRAIN_S" ref diffusion --data "$DATA" --config model/weights/diffusion/config.json --init model/weights/diffusion \
  --crop-frames "$REF_CROP" --batch-size "$REF_BATCH" --lr 2e-4 --ema-decay 0.999 --steps 1000000 --save-every 200 &
wait

stamp "re-sample corpus clips with the new joint model, then the restorer and the portrait cleaner, $RESTORE_S s each"
if [ -f "$WORK/runs/ref/model.safetensors" ]; then
  timeout 600 $TC corpus resample --diffusion "$WORK/runs/ref" --data "$DATA" --out "$WORK/runs/resampled" --clips 800 \
    > "$WORK/results/resample.log" 2>&1
  train "$RESTORE_S" restore restore --data "$DATA" --generated "$WORK/runs/resampled/generated.npz" --steps 1000000 --save-every 250 &
fi
if [ -f "$WORK/runs/portrait/model.safetensors" ]; then
  train "$RESTORE_S" portrait-clean portrait-clean --data "$C/stills-portrait" --portrait "$WORK/runs/portrait" --steps 1000000 --save-every 250 &
fi
wait

stamp "release float16 candidates"
[ -d "$WORK/runs/portrait-clean" ] && mkdir -p "$WORK/runs/portrait/clean" && cp "$WORK/runs/portrait-clean"/{model.safetensors,config.json} "$WORK/runs/portrait/clean/"
items=()
for pair in diffusion:ref portrait:portrait restore:restore; do
  [ -f "$WORK/runs/${pair#*:}/model.safetensors" ] && items+=("${pair%%:*}=$WORK/runs/${pair#*:}")
done
[ ${#items[@]} -gt 0 ] && $PY -m model.release "${items[@]}" --out "$OUT/release"
[ -d "$WORK/runs/portrait/clean" ] && mkdir -p "$OUT/release/portrait/clean" && \
  $PY -c "import sys; from model.release import release; from pathlib import Path; release('clean', Path(sys.argv[1]), Path(sys.argv[2]))" \
    "$WORK/runs/portrait/clean" "$OUT/release/portrait"

stamp "measure on $DEVICE"
W=$WORK/weights; mkdir -p "$W"
for d in model/weights/*/; do ln -sfn "$PWD/$d" "$W/$(basename "$d")"; done
for d in "$OUT"/release/*/; do ln -sfn "$d" "$W/$(basename "$d")"; done
timeout 300 $PY tests/benchmarks/bench_reference.py --weights "$W" --faces portrait --cache "$C/cache64" --threads 8 --png "$WORK/results/bench_reference.png" \
  2>&1 | tee "$WORK/results/bench_reference.txt"
timeout 300 $PY tests/benchmarks/bench_portrait.py --weights "$W/portrait" --caches "$DATA" --threads 8 --png "$WORK/results/bench_portrait.png" \
  2>&1 | tee "$WORK/results/bench_portrait.txt"

stamp "pack results"
for run in portrait ref restore portrait-clean; do
  mkdir -p "$WORK/results/$run"
  cp "$WORK/runs/$run"/{README.md,config.json,loss.csv,loss.png,samples.png} "$WORK/results/$run/" 2>/dev/null
done
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
ls -lR "$OUT/release" | head -40
stamp "done"
