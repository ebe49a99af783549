#!/bin/sh
# Robustness table: the report's recipe against the robust recipe, several seeds each, clean
# test accuracy and accuracy under each perturbation of `cnnlite-metrics --perturb`
# (contrast, gamma, blur, noise, 224, rotation), as mean +- sample standard deviation.
#
# usage: scripts/robustness.sh [--build DIR] [--data DIR] [--size N] [--seeds "0 1 2"]
#                              [--threads N] [--jobs N] [--out DIR] [--recipes "report best"]
#
#   --build DIR    meson build folder with examples/cnnlite-train (default: build)
#   --data DIR     image folder DIR/<class>/<image> (default: ../shared/data/brain-tumor-mri)
#   --size N       input size of every run (default 256)
#   --seeds LIST   seeds (default "0 1 2"): initialisation, split, shuffling, augmentation
#   --threads N    compute threads per run (default 1; results depend on the thread count)
#   --jobs N       runs at once (default 2)
#   --out DIR      models, logs and tables (default robustness-out); runs whose table is
#                  already there are not repeated, so an interrupted call can be resumed
#   --recipes LIST which recipes (default "report best")
#
# The recipes (extra cnnlite-train options; --size and --seed are added):
#   report: the report's settings (Adam 1e-3, batch 32, dropout 0.2, 15 epochs, no batch norm)
#   best:   --augment --batchnorm --schedule cosine --aug-gamma 0.7 --epochs 30
#           --aug-contrast 0.5 (the augmentation preset with wider gamma and contrast ranges,
#           batch norm, a cosine schedule over 30 epochs)
# Set REPORT_ARGS or BEST_ARGS in the environment to try other options. Every run's
# commands are printed before it starts; the summary goes to stdout and OUT/summary.txt.
set -eu

BEST_DEFAULT="--augment --batchnorm --schedule cosine --aug-gamma 0.7 --aug-contrast 0.5 --epochs 30"
REPORT_ARGS=${REPORT_ARGS-}
BEST_ARGS=${BEST_ARGS-$BEST_DEFAULT}

build=build
data=../shared/data/brain-tumor-mri
size=256
seeds="0 1 2"
threads=1
jobs=2
out=robustness-out
recipes="report best"
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --recipes) recipes=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "robustness.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
train=$build/examples/cnnlite-train
metrics=$build/examples/cnnlite-metrics
for p in "$train" "$metrics"; do
    [ -x "$p" ] || { echo "robustness.sh: $p not found (build first, or give --build)" >&2; exit 2; }
done
[ -d "$data" ] || { echo "robustness.sh: data folder $data not found (give --data)" >&2; exit 2; }
mkdir -p "$out"

args_of() {
    case "$1" in
    report) echo "$REPORT_ARGS" ;;
    best) echo "$BEST_ARGS" ;;
    *) echo "robustness.sh: unknown recipe '$1' (report, best)" >&2; exit 2 ;;
    esac
}

# One run: train, then the perturbation table of the final weights.
one_run() {
    recipe=$1 seed=$2
    base=$out/$recipe-s$seed
    [ -s "$base.table" ] && return 0
    # shellcheck disable=SC2046 # the recipe's options are meant to be split into words
    set -- --data "$data" --size "$size" --seed "$seed" --threads "$threads" --quiet $(args_of "$recipe")
    echo "$train $* --save $base.safetensors" | tee "$base.cmd"
    "$train" "$@" --save "$base.safetensors" --history "$base.csv" > "$base.log" 2>&1
    echo "$metrics --model $base.safetensors --data $data --seed $seed --threads $threads --perturb all" |
        tee -a "$base.cmd"
    "$metrics" --model "$base.safetensors" --data "$data" --seed "$seed" --threads "$threads" \
        --perturb all > "$base.table.tmp" 2> "$base.metrics.log"
    mv "$base.table.tmp" "$base.table"
}

running=0
for recipe in $recipes; do
    args_of "$recipe" > /dev/null
    for seed in $seeds; do
        one_run "$recipe" "$seed" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
            wait
            running=0
        fi
    done
done
wait

# Summary: one row per recipe, mean +- sd over the seeds of each column.
{
    echo "size $size, seeds $seeds, $threads thread(s) per run"
    for recipe in $recipes; do
        echo "$recipe: cnnlite-train --size $size --seed S $(args_of "$recipe")"
    done
    printf '%-8s' recipe
    for k in clean contrast gamma blur noise 224 rotation; do printf ' %14s' "$k"; done
    echo
    for recipe in $recipes; do
        for seed in $seeds; do
            [ -s "$out/$recipe-s$seed.table" ] || { echo "robustness.sh: $out/$recipe-s$seed.table missing" >&2; exit 1; }
            cat "$out/$recipe-s$seed.table"
        done | awk -v r="$recipe" '
            $1 ~ /^(clean|contrast|gamma|blur|noise|224|rotation)$/ {
                n[$1]++; s[$1] += $2; q[$1] += $2 * $2
            }
            END {
                printf "%-8s", r
                split("clean contrast gamma blur noise 224 rotation", ks, " ")
                for (i = 1; i <= 7; i++) {
                    k = ks[i]; m = s[k] / n[k]
                    v = n[k] > 1 ? (q[k] - n[k] * m * m) / (n[k] - 1) : 0
                    printf " %7.2f +- %4.2f", m, sqrt(v > 0 ? v : 0)
                }
                printf "\n"
            }'
    done
} | tee "$out/summary.txt"
