#!/bin/sh
# One example program under valgrind's memcheck on tiny inputs, in its normal use and on bad
# options and bad files. Every run must exit with the status the program documents and
# memcheck must report no error: no invalid read or write, no use of an uninitialised value,
# no bad free, no definitely or indirectly lost block. Inputs (image folders, a model) are
# made by the programs running natively, so that only the program under test pays for
# valgrind.
#
# Usage: valgrind.sh PROGRAM EXAMPLES_DIR SANITIZE
#   PROGRAM   hello, data, train, metrics, predict, compare or bench
#   SANITIZE  the build's b_sanitize option: anything but "none" skips (ASan and valgrind
#             do not mix)
# Exit status: 0 passed, 1 failed, 77 skipped.
set -u
prog=$1 bin=$2 sanitize=${3:-none}

if [ "$sanitize" != none ] && [ -n "$sanitize" ]; then
  echo "skip: the build uses -Db_sanitize=$sanitize"
  exit 77
fi
if ! command -v valgrind > /dev/null 2>&1; then
  echo "skip: valgrind not found"
  exit 77
fi

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnlite-valgrind.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
runs=0

# Under valgrind the threads run one at a time: libgomp's idle workers must sleep rather
# than spin (spinning makes a run several times slower).
OMP_WAIT_POLICY=passive
export OMP_WAIT_POLICY

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# vg STATUS CMD...: run CMD under memcheck; it must exit with STATUS and memcheck must find
# nothing. The error exit code 99 is one no program uses.
vg() {
  want=$1
  shift
  runs=$((runs + 1))
  log="$tmp/memcheck.$runs.log"
  valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --suppressions="$here/libgomp.supp" --log-file="$log" "$@" > "$tmp/out" 2> "$tmp/err"
  got=$?
  echo "run $runs: exit $got: $*"
  if [ "$got" -eq 99 ] || ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
    fail "memcheck reports errors for: $*"
    cat "$log"
  elif [ "$got" -ne "$want" ]; then
    fail "$*: exit $got, want $want; stderr: $(cat "$tmp/err")"
  fi
}

# must_say NEEDLE: the last run's stderr contains NEEDLE (the failure it was given).
must_say() {
  grep -q -- "$1" "$tmp/err" || fail "run $runs: stderr lacks '$1': $(cat "$tmp/err")"
}

# Native helpers that make the inputs.
make_data() {
  "$bin/cnnlite-data" synth "$tmp/data" --count 16 --size 32 > /dev/null 2>&1 || fail "cnnlite-data synth (native)"
}
make_model() {
  make_data
  "$bin/cnnlite-train" --data "$tmp/data" --size 32 --batch 4 --epochs 1 --quiet --save "$tmp/m.safetensors" \
    > /dev/null 2>&1 || fail "cnnlite-train (native)"
  head -c 100 "$tmp/m.safetensors" > "$tmp/cut.safetensors"
}

case "$prog" in
hello)
  vg 0 "$bin/cnnlite-hello"
  grep -q '= \[\[19 22\] \[43 50\]\]' "$tmp/out" || fail "cnnlite-hello: $(cat "$tmp/out")"
  ;;
data)
  vg 0 "$bin/cnnlite-data" synth "$tmp/data" --count 8 --size 32 --seed 3
  [ "$(find "$tmp/data" -type f | wc -l)" -eq 8 ] || fail "synth wrote $(find "$tmp/data" -type f | wc -l) files, want 8"
  vg 0 "$bin/cnnlite-data" load "$tmp/data" --size 32 --channels 1 --write "$tmp/gray"
  [ "$(find "$tmp/gray" -type f | wc -l)" -eq 8 ] || fail "load --write wrote $(find "$tmp/gray" -type f | wc -l) files, want 8"
  vg 0 "$bin/cnnlite-data" split "$tmp/data" "$tmp/split.txt" --fraction 0.5
  [ "$(grep -c '^test	' "$tmp/split.txt")" -eq 4 ] || fail "split file: $(cat "$tmp/split.txt")"
  printf 'not an image' > "$tmp/data/glioma/broken.png"
  vg 0 "$bin/cnnlite-data" load "$tmp/data" --size 32
  must_say "broken.png"
  vg 1 "$bin/cnnlite-data" load "$tmp/missing" --size 32
  must_say "$tmp/missing"
  vg 2 "$bin/cnnlite-data" load "$tmp/data" --bogus 1
  ;;
train)
  make_data
  common="--data $tmp/data --size 32 --batch 4 --quiet"
  # shellcheck disable=SC2086
  vg 0 "$bin/cnnlite-train" $common --epochs 1 --save "$tmp/m.safetensors" --save-best "$tmp/best.safetensors" \
    --checkpoint "$tmp/ck" --history "$tmp/h.json" --plot "$tmp/p.svg" --confusion-plot "$tmp/c.svg"
  for f in m.safetensors best.safetensors ck h.json p.svg c.svg; do
    [ -s "$tmp/$f" ] || fail "cnnlite-train did not write $f"
  done
  grep -q '^Epoch \[1/1\], Train Loss: ' "$tmp/out" || fail "no epoch line: $(cat "$tmp/out")"
  # shellcheck disable=SC2086
  vg 0 "$bin/cnnlite-train" $common --epochs 2 --resume "$tmp/ck" --history "$tmp/h.csv"
  [ "$(grep -c '^Epoch \[[12]/2\]' "$tmp/out")" -eq 2 ] || fail "resume epoch lines: $(cat "$tmp/out")"
  head -c 300 "$tmp/ck" > "$tmp/cut.ck"
  # shellcheck disable=SC2086
  vg 1 "$bin/cnnlite-train" $common --epochs 2 --resume "$tmp/cut.ck"
  must_say "cut.ck"
  # the built-in synthetic set, gray input, no batch norm
  vg 0 "$bin/cnnlite-train" --count 8 --size 32 --batch 4 --epochs 1 --channels 1 --no-batchnorm --dropout 0 --quiet
  grep -q '^Best Test Accuracy: ' "$tmp/out" || fail "no best accuracy line: $(cat "$tmp/out")"
  vg 1 "$bin/cnnlite-train" --data "$tmp/missing" --size 32 --quiet
  must_say "$tmp/missing"
  vg 2 "$bin/cnnlite-train" --size 100
  must_say "not a multiple of 32"
  vg 2 "$bin/cnnlite-train" --bogus
  must_say "unknown option '--bogus'"
  ;;
metrics)
  make_model
  vg 0 "$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --data "$tmp/data" --plot "$tmp/cm.svg"
  grep -q '^Test Accuracy: ' "$tmp/out" || fail "no accuracy line: $(cat "$tmp/out")"
  [ -s "$tmp/cm.svg" ] || fail "cnnlite-metrics --plot wrote nothing"
  vg 0 "$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --data "$tmp/data" --all --batch 5
  vg 1 "$bin/cnnlite-metrics" --model "$tmp/cut.safetensors" --data "$tmp/data"
  must_say "cut.safetensors"
  vg 1 "$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --data "$tmp/missing"
  must_say "$tmp/missing"
  vg 2 "$bin/cnnlite-metrics" --data "$tmp/data"
  must_say "--model FILE is required"
  ;;
predict)
  make_model
  img=$(find "$tmp/data/glioma" -type f | head -n 1)
  printf 'not an image' > "$tmp/fake.png"
  vg 0 "$bin/cnnlite-predict" --model "$tmp/m.safetensors" "$img"
  grep -q ': \(glioma\|meningioma\|notumor\|pituitary\) (' "$tmp/out" || fail "predict output: $(cat "$tmp/out")"
  vg 1 "$bin/cnnlite-predict" --json --model "$tmp/m.safetensors" "$img" "$tmp/fake.png" "$tmp/nope.png" "$img"
  [ "$(grep -c '^{"file": ' "$tmp/out")" -eq 2 ] || fail "predict --json output: $(cat "$tmp/out")"
  must_say "fake.png"
  must_say "nope.png"
  vg 1 "$bin/cnnlite-predict" --model "$tmp/cut.safetensors" "$img"
  must_say "cut.safetensors"
  vg 2 "$bin/cnnlite-predict" --model "$tmp/m.safetensors"
  must_say "no IMAGE given"
  ;;
compare)
  make_data
  vg 0 "$bin/cnnlite-compare" --data "$tmp/data" --size 32 --epochs 1 --seeds 1 --study batch --quiet \
    --csv "$tmp/runs.csv" --plot "$tmp/cmp.svg"
  [ "$(grep -c '^batch 16 ' "$tmp/out")" -eq 1 ] || fail "compare table: $(cat "$tmp/out")"
  for f in runs.csv cmp.svg; do
    [ -s "$tmp/$f" ] || fail "cnnlite-compare did not write $f"
  done
  vg 2 "$bin/cnnlite-compare" --study x
  must_say "unknown study 'x'"
  ;;
bench)
  vg 0 "$bin/cnnlite-bench" --size 32 --batch 2 --steps 1 --json
  tail -n 1 "$tmp/out" | grep -q '^{.*}$' || fail "no JSON line: $(cat "$tmp/out")"
  vg 0 "$bin/cnnlite-bench" --size 32 --batch 2 --steps 1 --batchnorm --threads 1
  vg 2 "$bin/cnnlite-bench" --size 100
  must_say "not a multiple of 32"
  ;;
*)
  echo "valgrind.sh: unknown program '$prog'"
  exit 1
  ;;
esac

echo "$runs runs under memcheck, $failures failures"
[ "$failures" -eq 0 ]
