#!/bin/sh
# Inference of the report's network with libcnnlite and with ONNX Runtime (npm onnxruntime-node,
# CPU), alternately, ROUNDS times: batch 32, 512x512, float32, 2 threads (ONNX Runtime: 2
# intra-op threads, 1 inter-op thread). Prints each round's figures and ratio, then the median
# ratio libcnnlite / ONNX Runtime.
#
# usage: bench/compare_ort.sh BUILD_DIR [ROUNDS] [--weights FILE.safetensors] [--batchnorm]
#   --weights  export a libcnnlite model file's weights (else random weights, seed 0)
# Environment: CNNLITE_BENCH_CACHE, the folder for onnxruntime-node and the exported model
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/cnnlite-bench); BENCH_STEPS timed steps per run
# (default 5); BENCH_THREADS (default 2); BENCH_BATCH (default 32); BENCH_SIZE (default 512).
# Needs nodejs + npm and python3-torch (apt). onnxruntime-node is installed once into the cache
# with ONNXRUNTIME_NODE_INSTALL=skip (its CPU library ships inside the package).
set -eu
build=${1:?usage: compare_ort.sh BUILD_DIR [ROUNDS] [--weights FILE] [--batchnorm]}
rounds=${2:-3}
shift; [ $# -gt 0 ] && shift
weights= bn=
while [ $# -gt 0 ]; do
    case $1 in
        --weights) weights=${2:?--weights needs a file}; shift 2 ;;
        --batchnorm) bn=--batchnorm; shift ;;
        *) echo "compare_ort.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
cache=${CNNLITE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnnlite-bench}
steps=${BENCH_STEPS:-5} threads=${BENCH_THREADS:-2} batch=${BENCH_BATCH:-32} size=${BENCH_SIZE:-512}
bench="$build/examples/cnnlite-bench"
[ -x "$bench" ] || { echo "compare_ort.sh: no $bench (build first)" >&2; exit 1; }

ort="$cache/ort/node_modules/onnxruntime-node"
if [ ! -f "$ort/package.json" ]; then
    echo "installing onnxruntime-node into $cache/ort"
    mkdir -p "$cache/ort"
    (cd "$cache/ort" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent onnxruntime-node)
fi

model="$cache/report-b$batch-s$size${bn:+-bn}.onnx"
/usr/bin/python3 "$here/export_onnx.py" "$model" --batch "$batch" --size "$size" $bn ${weights:+--weights "$weights"} \
    2>/dev/null | tail -n 1

ratios=
i=1
while [ "$i" -le "$rounds" ]; do
    c=$("$bench" --infer-only --threads "$threads" --batch "$batch" --size "$size" --steps "$steps" $bn --json | tail -n 1)
    o=$(ORT_NODE_MODULE="$ort" node "$here/ort_bench.js" "$model" --threads "$threads" --steps "$steps" --json | tail -n 1)
    r=$(/usr/bin/python3 -c '
import json, sys
c, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%.3f %.1f %.1f %.2e" % (c["infer_img_s"] / o["infer_img_s"], c["infer_img_s"], o["infer_img_s"],
                                o["max_abs_diff_vs_torch"]))' "$c" "$o")
    set -- $r
    echo "round $i: libcnnlite $2 img/s, ONNX Runtime $3 img/s, ratio $1 (ONNX Runtime vs PyTorch logits: max diff $4)"
    ratios="$ratios $1"
    i=$((i + 1))
done
/usr/bin/python3 -c '
import statistics, sys
r = [float(v) for v in sys.argv[1:]]
print("median ratio libcnnlite / ONNX Runtime, inference: %.3f over %d rounds" % (statistics.median(r), len(r)))' $ratios
