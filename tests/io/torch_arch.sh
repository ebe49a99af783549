#!/bin/sh
# PyTorch both ways for descriptions: networks trained by cnnlite-train --arch (small.json and
# the depthwise-residual.json acceptance run) give the same probabilities in cnnlite-predict and
# in PyTorch (scripts/cnnlite_torch.py, built from the file's description, strict load), and
# networks PyTorch initialised and saved (including one with dilation, groups and padded pools)
# give the same probabilities in cnnlite-predict. Tolerance 1e-4 on every probability.
# usage: torch_arch.sh CNNLITE_TRAIN CNNLITE_PREDICT SOURCE_ROOT [PYTHON]
# Exit 77 (skipped) when the Python interpreter or torch is missing.
train=$1
predict=$2
src=$3
py=${4:-/usr/bin/python3}
[ -x "$py" ] || { echo "$py not found: skipping"; exit 77; }
"$py" -c 'import torch' 2>/dev/null || { echo "torch is not installed for $py: skipping"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/cnnl-arch-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
script=$src/scripts/cnnlite_torch.py

# Three 64x64 colour images and one gray image (binary PNM: decoded identically on both sides).
"$py" - "$dir" <<'PY' || exit 1
import random, sys
r = random.Random(5)
for i in range(3):
    with open(f"{sys.argv[1]}/img{i}.ppm", "wb") as f:
        f.write(b"P6\n64 64\n255\n" + bytes(r.randrange(256) for _ in range(64 * 64 * 3)))
with open(f"{sys.argv[1]}/gray.pgm", "wb") as f:
    f.write(b"P5\n64 64\n255\n" + bytes((x * 3 + y) % 256 for y in range(64) for x in range(64)))
PY
images="$dir/img0.ppm $dir/img1.ppm $dir/img2.ppm $dir/gray.pgm"

compare() { # ours.jsonl theirs.jsonl label
  "$py" - "$1" "$2" "$3" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 4, (len(a), len(b))
err = max(abs(x - y) for p, q in zip(a, b) for x, y in zip(p["probs"], q["probs"]))
# The same winning class (unless two probabilities are within the tolerance).
def wins(p):
    top = max(p["probs"])
    return {k for k, v in enumerate(p["probs"]) if v >= top - 1e-4}
same = all(wins(p) & wins(q) for p, q in zip(a, b))
print(f"{sys.argv[3]}: max |p_cnnlite - p_torch| = {err:.3g} over {len(a)} images, classes agree: {same}")
sys.exit(0 if err <= 1e-4 and same else 1)
PY
}

status=0
# libcnnlite -> PyTorch: a trained network (one short epoch on the synthetic set).
"$train" --arch "$src/examples/nets/small.json" --count 64 --epochs 1 --batch 16 --quiet \
    --save "$dir/ours.safetensors" >"$dir/train.log" 2>&1 || { cat "$dir/train.log"; exit 1; }
"$predict" --model "$dir/ours.safetensors" --json $images >"$dir/ours.jsonl" || exit 1
"$py" "$script" predict "$dir/ours.safetensors" $images >"$dir/torch.jsonl" || exit 1
compare "$dir/ours.jsonl" "$dir/torch.jsonl" "small.json trained by cnnlite-train" || status=1

# The issue's example network (strided Conv2d, BatchNorm2d, a Residual around a depthwise
# convolution, global average pooling, Dropout, Linear), as the acceptance runs it: three
# epochs at 64x64 on the synthetic set, then the saved file alone in both programs.
"$train" --arch "$src/examples/nets/depthwise-residual.json" --size 64 --epochs 3 --quiet \
    --save "$dir/dw.safetensors" >"$dir/train-dw.log" 2>&1 || { cat "$dir/train-dw.log"; exit 1; }
"$predict" --model "$dir/dw.safetensors" --json $images >"$dir/dw-ours.jsonl" || exit 1
"$py" "$script" predict "$dir/dw.safetensors" $images >"$dir/dw-torch.jsonl" || exit 1
compare "$dir/dw-ours.jsonl" "$dir/dw-torch.jsonl" "depthwise-residual.json trained by cnnlite-train" || status=1

# Every option of the generic convolution and the padded pools in one network.
cat >"$dir/options.json" <<'JSON'
{"input": [3, 64, 64], "layers": [
 {"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 2, "dilation": 2},
 {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
 {"type": "Conv2d", "out_channels": 12, "kernel_size": 3, "padding": 1, "groups": 3, "bias": false},
 {"type": "BatchNorm2d"}, {"type": "ReLU"},
 {"type": "Residual", "layers": [
   {"type": "Conv2d", "out_channels": 12, "kernel_size": 3, "padding": 2, "dilation": 2, "groups": 12},
   {"type": "Tanh"}]},
 {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
 {"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Flatten"},
 {"type": "Linear", "out_features": 4}]}
JSON

# PyTorch -> libcnnlite: networks initialised and saved by PyTorch.
for net in small global-pool depthwise-residual options; do
  desc=$src/examples/nets/$net.json
  [ "$net" = options ] && desc=$dir/options.json
  "$py" "$script" export "$desc" "$dir/$net.safetensors" --seed 3 || exit 1
  "$predict" --model "$dir/$net.safetensors" --json $images >"$dir/$net-ours.jsonl" || exit 1
  "$py" "$script" predict "$dir/$net.safetensors" $images >"$dir/$net-torch.jsonl" || exit 1
  compare "$dir/$net-ours.jsonl" "$dir/$net-torch.jsonl" "$net.json saved by PyTorch" || status=1
done
exit $status
