#!/bin/sh
# Acceptance: cnnlite-train with the report's settings on the real MRI images reaches a best
# test accuracy of at least 80 %, and cnnlite-metrics on the saved model reproduces the final
# test accuracy training printed. Skips (exit 77) when the data is absent.
# Usage: acceptance-train.sh BUILD_EXAMPLES_DIR
set -u
bin="$1"
root="${CNNLITE_SOURCE_ROOT:-.}"
data="${CNNLITE_DATA:-${CNNLITE_DATA_DEFAULT:-$root/../shared/data/brain-tumor-mri}}"
if [ ! -d "$data" ]; then
  echo "SKIP: no data at $data (set CNNLITE_DATA)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnlite-acceptance.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
"$bin/cnnlite-train" --data "$data" --size 512 --dropout 0.2 --batch 32 --lr 1e-3 --epochs 15 \
  --seed 0 --split 0.8 --threads 2 --save "$tmp/model.safetensors" --history "$tmp/history.csv" > "$tmp/train.out" ||
  { echo "FAIL: cnnlite-train exited non-zero"; cat "$tmp/train.out"; exit 1; }
end=$(date +%s)
cat "$tmp/train.out"
echo "training took $((end - start)) s"
best=$(sed -n 's/^Best Test Accuracy: \([0-9.]*\)$/\1/p' "$tmp/train.out")
final=$(grep '^Epoch \[15/15\]' "$tmp/train.out" | sed 's/.*Test Accuracy: \([0-9.]*\)%$/\1/')
[ -n "$best" ] && [ -n "$final" ] || { echo "FAIL: no best or final accuracy"; exit 1; }
if ! awk -v b="$best" 'BEGIN { exit !(b >= 80) }'; then
  echo "FAIL: best test accuracy $best < 80"
  exit 1
fi
"$bin/cnnlite-metrics" --model "$tmp/model.safetensors" --data "$data" --seed 0 --split 0.8 --threads 2 > "$tmp/metrics.out" ||
  { echo "FAIL: cnnlite-metrics exited non-zero"; exit 1; }
cat "$tmp/metrics.out"
if ! grep -q "^Test Accuracy: $final% " "$tmp/metrics.out"; then
  echo "FAIL: cnnlite-metrics does not reproduce the final test accuracy $final%"
  exit 1
fi
echo "PASS: best $best%, final $final% reproduced by cnnlite-metrics"
