#!/bin/sh
# The example programs end to end on a tiny synthetic image folder: outputs, files, agreement
# of cnnlite-metrics with training, resumption, and one clear message plus a non-zero exit for
# every kind of bad input. Usage: programs.sh BUILD_EXAMPLES_DIR
set -u
bin="$1"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnlite-programs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect STATUS NEEDLE CMD...: exit status STATUS, exactly one stderr line containing NEEDLE
# (after a usage error, the program's "usage: " synopsis may follow it).
expect() {
  want=$1 needle=$2
  shift 2
  "$@" > "$tmp/out" 2> "$tmp/err"
  got=$?
  lines=$(grep -vc '^usage: ' "$tmp/err")
  if [ "$got" -ne "$want" ]; then
    fail "$*: exit $got, want $want; stderr: $(cat "$tmp/err")"
  elif ! grep -q -- "$needle" "$tmp/err"; then
    fail "$*: stderr lacks '$needle': $(cat "$tmp/err")"
  elif [ "$want" -ne 0 ] && [ "$lines" -ne 1 ]; then
    fail "$*: $lines stderr lines, want one: $(cat "$tmp/err")"
  fi
}

# --help, --version and bad options, in every program
version=$("$bin/cnnlite-hello" | sed -n 's/^libcnnlite \([^,]*\),.*/\1/p')
for p in cnnlite-train cnnlite-compare cnnlite-metrics cnnlite-predict cnnlite-data cnnlite-bench \
         cnnlite-classify cnnlite-hello cnnlite-explain; do
  "$bin/$p" --help > "$tmp/out" 2> "$tmp/err" || fail "$p --help exits non-zero"
  grep -q "^usage: $p" "$tmp/out" || fail "$p --help prints no usage on stdout"
  [ -s "$tmp/err" ] && fail "$p --help writes to stderr: $(cat "$tmp/err")"
  "$bin/$p" --version > "$tmp/out" 2> "$tmp/err" || fail "$p --version exits non-zero"
  [ "$(cat "$tmp/out")" = "$p (libcnnlite) $version" ] || fail "$p --version: $(cat "$tmp/out")"
  "$bin/$p" --bogus > "$tmp/out" 2> "$tmp/err"
  st=$?
  [ "$st" -eq 2 ] || fail "$p --bogus: exit $st, want 2"
  [ -s "$tmp/out" ] && fail "$p --bogus writes to stdout: $(cat "$tmp/out")"
  grep -q "^usage: $p" "$tmp/err" || fail "$p --bogus: no usage on stderr: $(cat "$tmp/err")"
done
for p in cnnlite-train cnnlite-compare cnnlite-metrics cnnlite-predict cnnlite-data cnnlite-bench cnnlite-explain; do
  expect 2 "unknown option '--bogus'" "$bin/$p" --bogus
done
expect 2 "option --json takes no value" "$bin/cnnlite-predict" --json=1 --model m x.png
expect 2 "unexpected argument 'extra'" "$bin/cnnlite-train" extra
expect 2 "--precision 'fp16': give fp32 or bf16" "$bin/cnnlite-train" --precision fp16
# bfloat16 without the engine that runs it is an error, never a silent float32 run
expect 1 "bfloat16" env CNNLITE_CONV_ENGINE=portable "$bin/cnnlite-train" --precision bf16 --epochs 1 \
  --count 16 --size 32 --quiet
# cnnlite-data: whole numbers within range, one message naming the path once
expect 2 "--count: '3x' is not an integer" "$bin/cnnlite-data" synth "$tmp/s" --count 3x
expect 2 "--threads: -1 is out of range" "$bin/cnnlite-data" load "$tmp" --threads -1
expect 2 "--size: '32abc' is not an integer" "$bin/cnnlite-data" load "$tmp" --size 32abc
expect 2 "--fraction: '0.5.1' is not a number" "$bin/cnnlite-data" split "$tmp" "$tmp/s.txt" --fraction 0.5.1
expect 2 "--seed: '-3' is not a non-negative integer" "$bin/cnnlite-data" synth "$tmp/s" --seed -3
expect 2 "unknown command 'frob'" "$bin/cnnlite-data" frob "$tmp"
expect 2 "split takes a folder and a split file" "$bin/cnnlite-data" split "$tmp"
for cmd in "cnnlite-data load $tmp/missing" "cnnlite-train --quiet --data $tmp/missing" \
           "cnnlite-predict --model $tmp/missing.safetensors x.png"; do
  # shellcheck disable=SC2086
  "$bin/"$cmd > /dev/null 2> "$tmp/err"
  [ "$(grep -o "$tmp/missing" "$tmp/err" | wc -l)" -eq 1 ] || fail "$cmd: the path is not named once: $(cat "$tmp/err")"
done
expect 2 "--epochs: 'abc' is not an integer" "$bin/cnnlite-train" --epochs abc
expect 2 "--epochs: '3x' is not an integer" "$bin/cnnlite-train" --epochs 3x
expect 2 "--size: 100 is not a multiple of 32" "$bin/cnnlite-train" --size 100
expect 2 "--lr: '' is not a number" "$bin/cnnlite-train" --lr=
expect 2 "--dropout: 1 is out of range" "$bin/cnnlite-train" --dropout 1
expect 2 "--split: 0 is out of range" "$bin/cnnlite-train" --split 0
expect 2 "--seed: '-1' is not a non-negative integer" "$bin/cnnlite-train" --seed -1
expect 2 "option --batch needs a value" "$bin/cnnlite-train" --batch
expect 2 "--study: unknown study 'x'" "$bin/cnnlite-compare" --study x
expect 2 "--model FILE is required" "$bin/cnnlite-metrics" --data "$tmp"
expect 2 "no IMAGE given" "$bin/cnnlite-predict" --model "$tmp/none"
expect 1 "$tmp/missing" "$bin/cnnlite-train" --data "$tmp/missing" --quiet

# a tiny data set
"$bin/cnnlite-data" synth "$tmp/data" --count 48 --size 32 > /dev/null 2>&1 || fail "cnnlite-data synth"
common="--data $tmp/data --size 32 --batch 8 --quiet"

# outputs that cannot be written are reported before any training (--epochs 100000 would
# otherwise run for hours)
# shellcheck disable=SC2086
for opt in save save-best checkpoint history plot confusion-plot; do
  expect 1 "--$opt: $tmp/nowhere/f: cannot write in $tmp/nowhere" "$bin/cnnlite-train" $common --epochs 100000 --$opt "$tmp/nowhere/f"
done
expect 1 "--plot: $tmp: is a folder" "$bin/cnnlite-train" $common --epochs 100000 --plot "$tmp"
expect 1 "--csv: $tmp/nowhere/c.csv: cannot write" "$bin/cnnlite-compare" $common --epochs 100000 --csv "$tmp/nowhere/c.csv"
expect 1 "--plot: $tmp/nowhere/c.svg: cannot write" "$bin/cnnlite-metrics" --model "$tmp/none" --plot "$tmp/nowhere/c.svg"
expect 1 "$tmp/nowhere/s.txt: cannot write" "$bin/cnnlite-data" split "$tmp/data" "$tmp/nowhere/s.txt"

# files are created 0644 less the umask (split files and image folders too)
for mask in 022 077; do
  want=$([ "$mask" = 022 ] && echo 644 || echo 600)
  rm -rf "$tmp/u"
  mkdir "$tmp/u"
  (umask $mask
   # shellcheck disable=SC2086
   "$bin/cnnlite-train" $common --epochs 1 --save "$tmp/u/m.st" --history "$tmp/u/h.csv" --plot "$tmp/u/p.svg" \
     --checkpoint "$tmp/u/ck" > /dev/null 2>&1
   "$bin/cnnlite-data" split "$tmp/data" "$tmp/u/split.txt" > /dev/null 2>&1
   "$bin/cnnlite-data" load "$tmp/data" --size 16 --write "$tmp/u/png" > /dev/null 2>&1)
  for f in m.st h.csv p.svg ck split.txt "png/glioma/$(ls "$tmp/data/glioma" | head -n 1 | sed 's/\.[^.]*$/.png/')"; do
    m=$(stat -c %a "$tmp/u/$f" 2> /dev/null)
    [ "$m" = "$want" ] || fail "umask $mask: $f has mode '$m', want $want"
  done
done

# past the file size limit (ulimit -f, SIGXFSZ): an error naming the file, no temporary file
# shellcheck disable=SC2086
(ulimit -f 8 && "$bin/cnnlite-train" $common --epochs 1 --save "$tmp/u/big.st" > /dev/null 2> "$tmp/err")
st=$?
[ "$st" -eq 1 ] || fail "ulimit -f: exit $st, want 1: $(cat "$tmp/err")"
grep -q "$tmp/u/big.st: .*File too large" "$tmp/err" || fail "ulimit -f message: $(cat "$tmp/err")"
ls -a "$tmp/u" | grep -q 'big' && fail "ulimit -f: file left behind: $(ls -a "$tmp/u")"

# little address space (ulimit -v): an out-of-memory message and exit 1, never a hang inside
# OpenBLAS's allocator (a sanitizer's shadow memory needs more than any such limit)
if ldd "$bin/cnnlite-predict" 2> /dev/null | grep -q 'libasan\|libtsan'; then
  echo "SKIP: ulimit -v (sanitizer build)"
else
  img="$tmp/data/glioma/$(ls "$tmp/data/glioma" | head -n 1)"
  (ulimit -v 150000 && timeout 120 "$bin/cnnlite-predict" --model "$tmp/u/m.st" "$img" > /dev/null 2> "$tmp/err")
  st=$?
  [ "$st" -eq 1 ] || fail "ulimit -v predict: exit $st, want 1: $(cat "$tmp/err")"
  grep -q "out of memory" "$tmp/err" || fail "ulimit -v predict message: $(cat "$tmp/err")"
  # shellcheck disable=SC2086
  (ulimit -v 150000 && timeout 120 "$bin/cnnlite-train" $common --epochs 1 > /dev/null 2> "$tmp/err")
  st=$?
  [ "$st" -eq 1 ] || fail "ulimit -v train: exit $st, want 1: $(cat "$tmp/err")"
  grep -q "out of memory" "$tmp/err" || fail "ulimit -v train message: $(cat "$tmp/err")"
fi

# a full disk: a small tmpfs when we may mount one
mkdir "$tmp/full"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=64k tmpfs "$tmp/full" 2> /dev/null; then
  for out in "--history $tmp/full/h.csv" "--plot $tmp/full/p.svg" "--save $tmp/full/m.st"; do
    head -c 1000000 /dev/zero > "$tmp/full/filler" 2> /dev/null
    # shellcheck disable=SC2086
    "$bin/cnnlite-train" $common --epochs 1 $out > /dev/null 2> "$tmp/err"
    st=$?
    f=${out#* }
    [ "$st" -eq 1 ] || fail "full disk, $out: exit $st, want 1: $(cat "$tmp/err")"
    grep -q "$f: .*No space left on device" "$tmp/err" || fail "full disk, $out: message: $(cat "$tmp/err")"
    [ "$(ls -A "$tmp/full")" = filler ] || fail "full disk, $out: left behind: $(ls -A "$tmp/full")"
    rm -f "$tmp/full/filler"
  done
  umount "$tmp/full"
else
  echo "SKIP: full disk (a tmpfs needs root and mount permission)"
fi

# training: the report's lines, files, checkpoint
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common --epochs 2 --save "$tmp/m.safetensors" --history "$tmp/h.json" \
  --plot "$tmp/p.svg" --confusion-plot "$tmp/c.svg" --checkpoint "$tmp/ck" > "$tmp/train.out" 2> "$tmp/train.err" ||
  fail "cnnlite-train: $(cat "$tmp/train.err")"
[ -s "$tmp/train.err" ] && fail "cnnlite-train --quiet wrote to stderr: $(cat "$tmp/train.err")"
[ "$(grep -c '^Epoch \[[12]/2\], Train Loss: [0-9.]*, Train Accuracy: [0-9.]*%, Test Loss: [0-9.]*, Test Accuracy: [0-9.]*%$' "$tmp/train.out")" -eq 2 ] ||
  fail "epoch lines: $(cat "$tmp/train.out")"
grep -q '^Best Test Accuracy: [0-9]*\.[0-9][0-9]$' "$tmp/train.out" || fail "no Best Test Accuracy line"
for k in 'Macro Accuracy' 'Macro Precision' 'Macro Recall' 'Macro F1 Score'; do
  grep -q "^$k: [0-9.e-]*$" "$tmp/train.out" || fail "no '$k' line"
done
for f in m.safetensors h.json p.svg c.svg ck; do
  [ -s "$tmp/$f" ] || fail "cnnlite-train did not write $f"
done
grep -q '"best_epoch": [12],' "$tmp/h.json" || fail "history JSON: $(head -c 200 "$tmp/h.json")"

# metrics on the saved model reproduce the final test accuracy
final=$(grep '^Epoch \[2/2\]' "$tmp/train.out" | sed 's/.*Test Accuracy: \([0-9.]*\)%$/\1/')
"$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --data "$tmp/data" --plot "$tmp/cm.svg" > "$tmp/metrics.out" 2> /dev/null ||
  fail "cnnlite-metrics failed"
grep -q "^Test Accuracy: $final% " "$tmp/metrics.out" || fail "metrics: want $final%: $(grep '^Test Acc' "$tmp/metrics.out")"
grep -q '^glioma  *[0-9]* *[0-9]* *[0-9]* *[0-9]*$' "$tmp/metrics.out" || fail "no confusion row for glioma"
[ -s "$tmp/cm.svg" ] || fail "cnnlite-metrics --plot wrote nothing"

# resuming the checkpoint continues to epoch 3
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common --epochs 3 --resume "$tmp/ck" > "$tmp/resume.out" 2> "$tmp/resume.err" ||
  fail "resume: $(cat "$tmp/resume.err")"
[ "$(grep -c '^Epoch \[[123]/3\]' "$tmp/resume.out")" -eq 3 ] || fail "resume epoch lines: $(cat "$tmp/resume.out")"
# shellcheck disable=SC2086
expect 1 "used --seed 0; this run gives --seed 1" "$bin/cnnlite-train" $common --seed 1 --epochs 3 --resume "$tmp/ck"
# the resumed run's history file begins byte for byte as the history file of the run that wrote
# the checkpoint (the history is kept as float64 in checkpoints)
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common --epochs 2 --checkpoint "$tmp/h2.ck" --history "$tmp/h2.csv" > /dev/null 2>&1 ||
  fail "run with --history and --checkpoint"
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common --epochs 3 --resume "$tmp/h2.ck" --history "$tmp/h3.csv" > /dev/null 2>&1 ||
  fail "resume with --history"
[ "$(wc -l < "$tmp/h3.csv")" -eq 4 ] || fail "resumed history: $(cat "$tmp/h3.csv")"
head -n 3 "$tmp/h3.csv" | cmp -s - "$tmp/h2.csv" ||
  fail "resumed history differs from the original run's: $(cat "$tmp/h2.csv") vs $(cat "$tmp/h3.csv")"
# options that contradict the checkpoint's are refused, naming both values
# shellcheck disable=SC2086
expect 1 "used --lr 0.001; this run gives --lr 0.002" "$bin/cnnlite-train" $common --lr 0.002 --epochs 3 --resume "$tmp/ck"
# shellcheck disable=SC2086
expect 1 "used --dropout 0.2; this run gives --dropout 0.5" "$bin/cnnlite-train" $common --dropout 0.5 --epochs 3 --resume "$tmp/ck"
# shellcheck disable=SC2086
expect 1 "used --batch" "$bin/cnnlite-train" $common --batch 7 --epochs 3 --resume "$tmp/ck"
grep -q "this run gives --batch 7" "$tmp/err" || fail "batch mismatch message: $(cat "$tmp/err")"

# Ctrl-C: stops after the current batch, writes the checkpoint, exits 130; resuming from the
# middle of the epoch gives exactly the epoch an uninterrupted run gives. --foreground: without
# it timeout also signals its whole process group, and that second SIGINT ends the program the
# usual way, as a second Ctrl-C is meant to.
if command -v timeout > /dev/null 2>&1; then
  # shellcheck disable=SC2086
  timeout --foreground -s INT --preserve-status 3 "$bin/cnnlite-train" $common --epochs 1000 --checkpoint "$tmp/int.ck" \
    > /dev/null 2> "$tmp/int.err"
  st=$?
  [ "$st" -eq 130 ] || fail "Ctrl-C: exit $st, want 130: $(cat "$tmp/int.err")"
  grep -q "stopped after the current batch; checkpoint saved to $tmp/int.ck" "$tmp/int.err" ||
    fail "Ctrl-C message: $(cat "$tmp/int.err")"
  # SIGTERM (a service manager's stop) is taken as Ctrl-C is
  # shellcheck disable=SC2086
  timeout --foreground -s TERM --preserve-status 3 "$bin/cnnlite-train" $common --epochs 1000 \
    --checkpoint "$tmp/term.ck" > /dev/null 2> "$tmp/term.err"
  st=$?
  [ "$st" -eq 130 ] || fail "SIGTERM: exit $st, want 130: $(cat "$tmp/term.err")"
  grep -q "stopped after the current batch; checkpoint saved to $tmp/term.ck" "$tmp/term.err" ||
    fail "SIGTERM message: $(cat "$tmp/term.err")"
  # the run may have finished epochs before the signal came: resume to the end of the next one
  # shellcheck disable=SC2086
  "$bin/cnnlite-train" $common --epochs 1 --resume "$tmp/int.ck" > "$tmp/int.out" 2> "$tmp/int.err"
  n=$(sed -n 's/.*give --epochs of at least \([0-9]*\)$/\1/p' "$tmp/int.err")
  if [ -n "$n" ]; then
    # shellcheck disable=SC2086
    "$bin/cnnlite-train" $common --epochs "$n" --resume "$tmp/int.ck" > "$tmp/int.out" 2> "$tmp/int.err" ||
      fail "resume after Ctrl-C: $(cat "$tmp/int.err")"
  else
    n=1
  fi
  # shellcheck disable=SC2086
  "$bin/cnnlite-train" $common --epochs "$n" > "$tmp/ref.out" 2>&1 || fail "reference run"
  [ "$(grep "^Epoch \[$n/$n\]" "$tmp/int.out")" = "$(grep "^Epoch \[$n/$n\]" "$tmp/ref.out")" ] &&
    [ -n "$(grep "^Epoch \[$n/$n\]" "$tmp/ref.out")" ] ||
    fail "resumed epoch $n differs: $(grep '^Epoch' "$tmp/int.out") vs $(grep '^Epoch' "$tmp/ref.out")"
fi

# predict: text, JSON, unreadable and corrupt images
img1=$(find "$tmp/data/glioma" -type f | head -n 1)
img2=$(find "$tmp/data/pituitary" -type f | head -n 1)
printf 'not an image' > "$tmp/fake.png"
"$bin/cnnlite-predict" --model "$tmp/m.safetensors" "$img1" "$img2" > "$tmp/pred.out" 2> "$tmp/pred.err" ||
  fail "predict: $(cat "$tmp/pred.err")"
[ "$(grep -c ': \(glioma\|meningioma\|notumor\|pituitary\) (' "$tmp/pred.out")" -eq 2 ] || fail "predict output: $(cat "$tmp/pred.out")"
"$bin/cnnlite-predict" --json --model "$tmp/m.safetensors" "$img1" "$tmp/nope.png" "$tmp/fake.png" "$img2" \
  > "$tmp/pred.out" 2> "$tmp/pred.err"
[ $? -eq 1 ] || fail "predict with bad images must exit 1"
[ "$(grep -c '^{"file": "[^"]*", "class": "[a-z]*", "probs": \[[0-9.e-]*, [0-9.e-]*, [0-9.e-]*, [0-9.e-]*\]}$' "$tmp/pred.out")" -eq 2 ] ||
  fail "predict --json output: $(cat "$tmp/pred.out")"
grep -q "nope.png" "$tmp/pred.err" || fail "missing image not named: $(cat "$tmp/pred.err")"
grep -q "fake.png" "$tmp/pred.err" || fail "corrupt image not named: $(cat "$tmp/pred.err")"
# a file name that is not UTF-8 (Latin-1 e-acute, a stray continuation byte, a quote, a tab)
# still gives valid JSON: invalid bytes become U+FFFD
odd="$tmp/caf$(printf '\351')$(printf '\200')\"q$(printf '\t')x.png"
cp "$img1" "$odd"
"$bin/cnnlite-predict" --json --model "$tmp/m.safetensors" "$odd" > "$tmp/pred.out" 2> "$tmp/pred.err" ||
  fail "predict of a non-UTF-8 name: $(cat "$tmp/pred.err")"
python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
obj = json.loads(raw.decode("utf-8"))
want = sys.argv[2] + "/caf\ufffd\ufffd\"q\tx.png"
assert obj["file"] == want, (obj["file"], want)
assert obj["class"] in ("glioma", "meningioma", "notumor", "pituitary"), obj
assert abs(sum(obj["probs"]) - 1) < 1e-4, obj
' "$tmp/pred.out" "$tmp" || fail "predict --json with a non-UTF-8 name: $(cat "$tmp/pred.out")"
# batches (decoded ahead by worker threads) give the same classes and probabilities, in the same
# order, as one image at a time, with bad files in the middle of a batch and a short last batch
set -- $(find "$tmp/data" -type f | sort | head -n 7)
"$bin/cnnlite-predict" --json --batch 1 --model "$tmp/m.safetensors" "$1" "$2" "$tmp/fake.png" "$3" "$4" \
  "$tmp/nope.png" "$5" "$6" "$7" > "$tmp/one.out" 2> "$tmp/one.err"
[ $? -eq 1 ] || fail "predict --batch 1 with bad images must exit 1"
"$bin/cnnlite-predict" --json --batch 4 --model "$tmp/m.safetensors" "$1" "$2" "$tmp/fake.png" "$3" "$4" \
  "$tmp/nope.png" "$5" "$6" "$7" > "$tmp/four.out" 2> "$tmp/four.err"
[ $? -eq 1 ] || fail "predict --batch 4 with bad images must exit 1"
[ "$(wc -l < "$tmp/one.out")" -eq 7 ] || fail "predict --batch 1: want 7 results: $(cat "$tmp/one.out")"
cmp -s "$tmp/one.out" "$tmp/four.out" ||
  fail "predict --batch 4 differs from --batch 1: $(diff "$tmp/one.out" "$tmp/four.out")"
cmp -s "$tmp/one.err" "$tmp/four.err" ||
  fail "predict --batch 4 messages differ from --batch 1: $(diff "$tmp/one.err" "$tmp/four.err")"
expect 2 "--batch" "$bin/cnnlite-predict" --batch 0 --model "$tmp/m.safetensors" "$1"

# corrupt and missing model files
head -c 100 "$tmp/m.safetensors" > "$tmp/bad.safetensors"
expect 1 "bad.safetensors" "$bin/cnnlite-metrics" --model "$tmp/bad.safetensors" --data "$tmp/data"
expect 1 "bad.safetensors" "$bin/cnnlite-predict" --model "$tmp/bad.safetensors" "$img1"
expect 1 "none.safetensors" "$bin/cnnlite-predict" --model "$tmp/none.safetensors" "$img1"
expect 1 "$tmp/missing" "$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --data "$tmp/missing"
expect 1 "bad.safetensors" "$bin/cnnlite-train" $common --resume "$tmp/bad.safetensors"

# augmentation and the regularized recipe: a resumed run stays identical to an uninterrupted one
recipe="--augment --optimizer adamw --weight-decay 0.05 --schedule cosine --label-smoothing 0.1"
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common $recipe --epochs 2 --checkpoint "$tmp/aug.ck" > /dev/null 2>&1 || fail "train $recipe"
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common $recipe --epochs 3 --resume "$tmp/aug.ck" > "$tmp/aug1.out" 2>&1 || fail "resume $recipe"
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common $recipe --epochs 3 > "$tmp/aug2.out" 2>&1 || fail "run $recipe"
[ "$(grep '^Epoch \[3/3\]' "$tmp/aug1.out")" = "$(grep '^Epoch \[3/3\]' "$tmp/aug2.out")" ] &&
  [ -n "$(grep '^Epoch \[3/3\]' "$tmp/aug2.out")" ] ||
  fail "augmented resumed epoch 3 differs: $(grep '^Epoch \[3' "$tmp/aug1.out") vs $(grep '^Epoch \[3' "$tmp/aug2.out")"
# early stopping with a validation split ends early and says so in the epoch count
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common --epochs 30 --patience 1 --val 0.25 --lr 1e-9 > "$tmp/es.out" 2>&1 || fail "early stopping run"
[ "$(grep -c '^Epoch ' "$tmp/es.out")" -eq 2 ] || fail "early stopping: $(grep -c '^Epoch ' "$tmp/es.out") epochs, want 2"
expect 2 "--aug-rotate: 200 is out of range" "$bin/cnnlite-train" --aug-rotate 200
expect 2 "--schedule: 'x' is not" "$bin/cnnlite-train" --schedule x
expect 2 "--optimizer: 'x' is not adam, adamw or sgd" "$bin/cnnlite-train" --optimizer x
# shellcheck disable=SC2086
expect 1 "--class-weights: '1,2' is not" "$bin/cnnlite-train" $common --class-weights 1,2

# perturbations: one row per kind; an unknown kind is refused
"$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --data "$tmp/data" --perturb all > "$tmp/pert.out" 2> /dev/null ||
  fail "cnnlite-metrics --perturb all"
for k in clean contrast gamma blur noise 224 rotation; do
  grep -q "^$k  *[0-9.]*" "$tmp/pert.out" || fail "--perturb all lacks $k: $(cat "$tmp/pert.out")"
done
grep -q "^clean  *$final\$" "$tmp/pert.out" || fail "--perturb all: clean is not $final: $(cat "$tmp/pert.out")"
expect 2 "--perturb: unknown kind 'x'" "$bin/cnnlite-metrics" --model "$tmp/m.safetensors" --perturb x

# explanations: one PNG per image and a contact sheet
"$bin/cnnlite-explain" --model "$tmp/m.safetensors" --out "$tmp/explain" "$img1" "$img2" > "$tmp/expl.out" 2> "$tmp/expl.err" ||
  fail "cnnlite-explain: $(cat "$tmp/expl.err")"
for f in "$(basename "${img1%.*}").png" "$(basename "${img2%.*}").png" contact-sheet.png; do
  head -c 8 "$tmp/explain/$f" 2> /dev/null | grep -q PNG || fail "cnnlite-explain did not write $f"
done
expect 1 "fake.png" "$bin/cnnlite-explain" --model "$tmp/m.safetensors" --out "$tmp/explain" "$tmp/fake.png"
grep -q "map of features\.[0-9]*, [0-9]*x[0-9]*" "$tmp/expl.out" || fail "cnnlite-explain names no layer: $(cat "$tmp/expl.out")"
expect 1 "no layer named 'x'" "$bin/cnnlite-explain" --model "$tmp/m.safetensors" --out "$tmp/explain" --layer x "$img1"
expect 2 "--weighting: unknown weighting 'x'" "$bin/cnnlite-explain" --model "$tmp/m.safetensors" --out "$tmp/explain" --weighting x "$img1"
expect 2 "--out DIR is required" "$bin/cnnlite-explain" --model "$tmp/m.safetensors" "$img1"

# compare: a table row per configuration and a picture
"$bin/cnnlite-compare" --data "$tmp/data" --size 32 --batch 8 --epochs 1 --seeds 2 --quiet \
  --plot "$tmp/cmp.svg" --csv "$tmp/cmp.csv" > "$tmp/cmp.out" 2> "$tmp/cmp.err" || fail "compare: $(cat "$tmp/cmp.err")"
for c in none 'dropout 0.2' 'batch norm'; do
  grep -q "^$c  *2 " "$tmp/cmp.out" || fail "compare table lacks '$c': $(cat "$tmp/cmp.out")"
done
[ "$(wc -l < "$tmp/cmp.csv")" -eq 7 ] || fail "compare CSV: $(cat "$tmp/cmp.csv")"
grep -q 'dropout 0.2 (mean of 2)' "$tmp/cmp.svg" || fail "compare picture lacks its legend"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all program checks passed"
