#!/bin/sh
# Run cnnlite-bench and bench/torch_bench.py back to back, ROUNDS times, same threads and
# shapes, and print each pair's JSON lines and the ratios (libcnnlite / PyTorch).
# usage: bench/compare_torch.sh BUILD_DIR [ROUNDS] [extra options for both, e.g. --batchnorm]
set -eu
build=${1:?usage: compare_torch.sh BUILD_DIR [ROUNDS] [options]}
rounds=${2:-3}
shift; [ $# -gt 0 ] && shift
here=$(dirname "$0")
opts="--threads 2 --batch 32 --size 512 --steps 5 --json $*"
i=1
while [ "$i" -le "$rounds" ]; do
    c=$("$build/examples/cnnlite-bench" $opts | tail -n 1)
    t=$(/usr/bin/python3 "$here/torch_bench.py" $opts | tail -n 1)
    echo "round $i cnnlite $c"
    echo "round $i torch   $t"
    /usr/bin/python3 -c '
import json, sys
c, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("round %s ratio   train %.2fx  infer %.2fx" % (sys.argv[3], c["train_img_s"] / t["train_img_s"],
      c["infer_img_s"] / t["infer_img_s"]))' "$c" "$t" "$i"
    i=$((i + 1))
done
