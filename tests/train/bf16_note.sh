#!/bin/sh
# The programs' note on CPUs where bfloat16 cannot be faster than float32: with --precision bf16,
# cnnlite-train, cnnlite-predict, cnnlite-metrics and cnnlite-bench print it once on stderr
# exactly when the library's probe (cnnl_bf16_speed_ratio(), printed by bf16_ratio) gives a
# ratio below 1.2 without AMX, and go on; never with fp32, never when bfloat16 is refused.
# Ratios between 1.1 and 1.3 accept either (the programs measure again). Passes on any CPU:
# without AVX512_BF16 every bf16 run must be an error without a note.
# Usage: bf16_note.sh BUILD_EXAMPLES_DIR BF16_RATIO_PROGRAM
set -u
bin=$1
probe=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnlite-bf16.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

out=$("$probe") || { echo "FAIL: bf16_ratio failed"; exit 1; }
echo "probe: $out"
# want: yes (note), no (no note), any (near the threshold)
case $out in
  unsupported) want=no ;;
  *" 1") want=no ;;
  *) want=$(echo "$out" | awk '{ r = $1 + 0; print (r < 1.1 ? "yes" : r >= 1.3 ? "no" : "any") }') ;;
esac
echo "note expected: $want"

# run NAME CMD...: a bf16 run. Exit 0 with the note as expected, or a refusal of bfloat16
# (exit 1 or 2, a message naming bfloat16) without the note.
run() {
  name=$1
  shift
  "$@" > "$tmp/out" 2> "$tmp/err"
  st=$?
  notes=$(grep -c 'note: bfloat16 is not faster than float32 on this CPU' "$tmp/err")
  if [ "$st" -ne 0 ]; then
    grep -q 'bfloat16' "$tmp/err" || fail "$name: exit $st without a bfloat16 message: $(cat "$tmp/err")"
    [ "$notes" -eq 0 ] || fail "$name: a note although bfloat16 was refused: $(cat "$tmp/err")"
    echo "$name: bfloat16 refused (exit $st)"
    return
  fi
  case $want in
    yes) [ "$notes" -eq 1 ] || fail "$name: $notes notes, want 1: $(cat "$tmp/err")" ;;
    no) [ "$notes" -eq 0 ] || fail "$name: $notes notes, want none: $(cat "$tmp/err")" ;;
    any) [ "$notes" -le 1 ] || fail "$name: $notes notes, want at most 1: $(cat "$tmp/err")" ;;
  esac
  if [ "$notes" -eq 1 ]; then
    # the figure it names is below the threshold and says why
    r=$(sed -n 's/.*runs at \([0-9.]*\)x the float32 multiply-add rate (no AMX); expect bf16 to be slower$/\1/p' "$tmp/err")
    [ -n "$r" ] || fail "$name: note without its figure: $(cat "$tmp/err")"
    [ -n "$r" ] && awk -v r="$r" 'BEGIN { exit !(r > 0 && r < 1.2) }' || fail "$name: note names ratio '$r'"
    grep -q "^$name: note: " "$tmp/err" || fail "$name: note does not start with the program's name"
  fi
  echo "$name: ok ($notes note)"
}

"$bin/cnnlite-data" synth "$tmp/data" --count 24 --size 32 > /dev/null 2>&1 || fail "cnnlite-data synth"
common="--data $tmp/data --size 32 --batch 8 --quiet"
# float32: never a note
# shellcheck disable=SC2086
"$bin/cnnlite-train" $common --epochs 1 --save "$tmp/m.st" > /dev/null 2> "$tmp/err" || fail "fp32 training: $(cat "$tmp/err")"
grep -q 'note:' "$tmp/err" && fail "fp32 training prints a note: $(cat "$tmp/err")"
img=$(find "$tmp/data" -type f | head -n 1)

# shellcheck disable=SC2086
run cnnlite-train "$bin/cnnlite-train" $common --epochs 1 --precision bf16
run cnnlite-predict "$bin/cnnlite-predict" --model "$tmp/m.st" --precision bf16 "$img"
run cnnlite-metrics "$bin/cnnlite-metrics" --model "$tmp/m.st" --data "$tmp/data" --precision bf16
run cnnlite-bench "$bin/cnnlite-bench" --size 32 --batch 2 --steps 1 --threads 1 --infer-only --precision bf16

# bfloat16 refused (portable engine; oneDNN limited to AVX2): an error, no note
for p in cnnlite-predict cnnlite-metrics; do
  for e in CNNLITE_CONV_ENGINE=portable ONEDNN_MAX_CPU_ISA=AVX2; do
    case $p in
      cnnlite-predict) env "$e" "$bin/$p" --model "$tmp/m.st" --precision bf16 "$img" > /dev/null 2> "$tmp/err" ;;
      *) env "$e" "$bin/$p" --model "$tmp/m.st" --data "$tmp/data" --precision bf16 > /dev/null 2> "$tmp/err" ;;
    esac
    st=$?
    [ "$st" -eq 1 ] || fail "$e $p --precision bf16: exit $st, want 1: $(cat "$tmp/err")"
    [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "$e $p: want one stderr line: $(cat "$tmp/err")"
    grep -q "bfloat16" "$tmp/err" || fail "$e $p: the message does not name bfloat16: $(cat "$tmp/err")"
  done
done
# a bad value: exit 2, one message
for p in cnnlite-predict cnnlite-metrics cnnlite-bench; do
  if [ "$p" = cnnlite-bench ]; then
    "$bin/$p" --precision fp16 > /dev/null 2> "$tmp/err"
  else
    "$bin/$p" --model "$tmp/m.st" --precision fp16 "$img" > /dev/null 2> "$tmp/err"
  fi
  st=$?
  [ "$st" -eq 2 ] || fail "$p --precision fp16: exit $st, want 2"
  grep -q -- "--precision 'fp16': give fp32 or bf16" "$tmp/err" || fail "$p --precision fp16: $(cat "$tmp/err")"
done

[ "$failures" -eq 0 ] || exit 1
echo "all bf16 note checks passed"
