#!/bin/bash
# The speed table of one run: libcnnlite float32 and bfloat16, libcnnlite limited to AVX2,
# earlier builds of libcnnlite, ONNX Runtime (inference) and PyTorch, ROUNDS rounds taken
# alternately so that every engine sees the same machine, then the median of each column.
#
# usage: bench/speed_table.sh BUILD_DIR [ROUNDS] [OLD_BUILD_DIR ...]
#   BUILD_DIR      a build of this tree (its examples/cnnlite-bench)
#   ROUNDS         rounds (default 3)
#   OLD_BUILD_DIR  builds of earlier versions to time beside it (e.g. 0.1.0's)
# Environment: BENCH_THREADS (default 2), BENCH_STEPS (default 5), SPEED_TABLE_SKIP="ort torch"
# to leave engines out. ONNX Runtime comes from bench/compare_ort.sh's cache (it installs
# onnxruntime-node with npm on first use); PyTorch is Debian's python3-torch.
# Batch 32, 512x512, the report's network (no batch norm), float32 unless the row says bf16.
set -eu
build=${1:?usage: speed_table.sh BUILD_DIR [ROUNDS] [OLD_BUILD_DIR ...]}
rounds=${2:-3}
shift; [ $# -gt 0 ] && shift
olds=("$@")
here=$(cd "$(dirname "$0")" && pwd)
threads=${BENCH_THREADS:-2} steps=${BENCH_STEPS:-5}
skip=" ${SPEED_TABLE_SKIP:-} "
bench="$build/examples/cnnlite-bench"
common=(--threads "$threads" --batch 32 --size 512 --steps "$steps" --json)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ort_model=""
if [[ "$skip" != *" ort "* ]]; then
    # compare_ort.sh exports the model and installs onnxruntime-node; one short round of it.
    BENCH_STEPS=1 sh "$here/compare_ort.sh" "$build" 1 >/dev/null
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/cnnlite-bench
    ort_model="$cache/report-b32-s512.onnx"
    ort_module="$cache/ort/node_modules/onnxruntime-node"
fi

row() { # row NAME COMMAND...: appends the command's last (JSON) line to NAME's file
    local name=$1; shift
    "$@" | tail -n 1 >>"$out/$name"
}

for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    row fp32 "$bench" "${common[@]}" --peak
    row bf16 "$bench" "${common[@]}" --precision bf16 || echo '{"error": "bf16 not supported here"}' >>"$out/bf16"
    row avx2 env ONEDNN_MAX_CPU_ISA=AVX2 CNNLITE_ISA=avx2 "$bench" "${common[@]}"
    i=0
    for o in "${olds[@]}"; do
        row "old$i" "$o/examples/cnnlite-bench" "${common[@]}"
        i=$((i + 1))
    done
    if [ -n "$ort_model" ]; then
        row ort env ORT_NODE_MODULE="$ort_module" node "$here/ort_bench.js" "$ort_model" --threads "$threads" \
            --steps "$steps" --json
    fi
    if [[ "$skip" != *" torch "* ]]; then
        row torch /usr/bin/python3 "$here/torch_bench.py" "${common[@]}"
    fi
done

names=(fp32 bf16 avx2)
labels=("libcnnlite float32" "libcnnlite bfloat16" "libcnnlite, oneDNN and own kernels limited to AVX2")
i=0
for o in "${olds[@]}"; do
    names+=("old$i")
    labels+=("earlier build: $o")
    i=$((i + 1))
done
[ -n "$ort_model" ] && names+=(ort) && labels+=("ONNX Runtime (onnxruntime-node), inference")
[[ "$skip" != *" torch "* ]] && names+=(torch) && labels+=("PyTorch (python3-torch)")

/usr/bin/python3 - "$out" "$threads" "${#names[@]}" "${names[@]}" "${labels[@]}" <<'PY'
import json, statistics, sys
out, threads, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names, labels = sys.argv[4:4 + n], sys.argv[4 + n:4 + 2 * n]
def rows(name):
    try:
        with open(f"{out}/{name}") as f:
            return [json.loads(l) for l in f if l.strip().startswith("{")]
    except FileNotFoundError:
        return []
def med(rs, key):
    v = [r[key] for r in rs if key in r and r[key]]
    return statistics.median(v) if v else None
def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v
fp = rows("fp32")
peak = med(fp, "peak_gflops")
print(f"{threads} threads, batch 32, 512x512, medians of {len(fp)} alternating rounds; "
      f"float32 FMA peak measured in the same runs: {fmt(peak)} GFLOP/s")
print()
print("| | train img/s | train GFLOP/s (share of peak) | infer img/s | infer GFLOP/s (share of peak) | peak RSS MB | rounds (train / infer img/s) |")
print("|---|---|---|---|---|---|---|")
for name, label in zip(names, labels):
    rs = rows(name)
    tr, inf = med(rs, "train_img_s"), med(rs, "infer_img_s")
    tg, ig = med(rs, "train_gflops"), med(rs, "infer_gflops")
    share = lambda g: "" if g is None or not peak else " (%.0f%%)" % (100 * g / peak)
    each = ", ".join("%s / %s" % (fmt(r.get("train_img_s")), fmt(r.get("infer_img_s"))) for r in rs)
    print(f"| {label} | {fmt(tr)} | {fmt(tg)}{share(tg)} | {fmt(inf)} | {fmt(ig)}{share(ig)} | "
          f"{fmt(med(rs, 'peak_rss_mb'), '%.0f')} | {each} |")
f, o, b = rows("fp32"), rows("ort"), rows("bf16")
if f and o:
    ratios = [x["infer_img_s"] / y["infer_img_s"] for x, y in zip(f, o)]
    print()
    print("inference, libcnnlite float32 / ONNX Runtime, per round: " + ", ".join("%.3f" % r for r in ratios)
          + "; median %.3f" % statistics.median(ratios))
if f and b and all("train_img_s" in x for x in b):
    ratios = [y["train_img_s"] / x["train_img_s"] for x, y in zip(f, b)]
    print("training, bfloat16 / float32, per round: " + ", ".join("%.3f" % r for r in ratios)
          + "; median %.3f" % statistics.median(ratios))
PY
