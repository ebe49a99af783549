#!/bin/sh
# Batch norm in lockstep with PyTorch (docs/bn-gap.md): bench/bn_lockstep trains the report
# network with batch norm for one epoch on a small synthetic folder (the last batch partial),
# scripts/bn_lockstep.py repeats it in PyTorch on the same input bytes and checks that the
# first batch's loss, the last partial batch's running statistics (unbiased variance, momentum),
# num_batches_tracked and the test logits of libcnnlite's weights in both modes agree.
# usage: bn_lockstep.sh BN_LOCKSTEP CNNLITE_DATA SOURCE_ROOT [PYTHON]
# Exit 77 (skipped) when the Python interpreter, torch or numpy is missing.
lockstep=$1
data=$2
src=$3
py=${4:-/usr/bin/python3}
[ -x "$py" ] || { echo "$py not found: skipping"; exit 77; }
"$py" -c 'import torch, numpy' 2>/dev/null || { echo "torch or numpy is not installed for $py: skipping"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/cnnl-bnlock-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
# 96 images: 77 to train in batches of 16, the last one of 13.
"$data" synth "$dir/images" --count 96 --size 64 --seed 3 >"$dir/synth.log" 2>&1 || { cat "$dir/synth.log"; exit 1; }
"$lockstep" --data "$dir/images" --out "$dir/out" --size 64 --batch 16 --seed 2 --threads 2 >"$dir/run.log" 2>&1 ||
  { cat "$dir/run.log"; exit 1; }
"$py" "$src/scripts/bn_lockstep.py" compare "$dir/out" --threads 1 --check
