#!/bin/sh
# mpi.sh MPIRUN TEST_MPI [CNNLITE_TRAIN]: data-parallel training with mpirun -np 2, one thread
# per rank: the library checks of test_mpi (equivalence with one process, bit-identical runs,
# sharded evaluation, weight checksum), a failing rank ending the job, then cnnlite-train: the
# same test accuracy with 2 processes as with 1 after 2 epochs at 64x64, two 2-process runs
# bit-identical, a checkpoint resumed over 2 processes (and refused in one), with batch norm and
# --sync-bn the same test accuracies as one process and a checkpoint resumed bit for bit, and a
# rank killed mid-run ending the job with a message.
set -u
mpirun=$1 test_mpi=$2 train=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# Open MPI's components are loaded with dlopen() and unloaded by MPI_Finalize(), so the leak
# checker cannot tell their allocations kept until exit from real leaks: it is off for the
# MPI processes (the trainer's and loader's own code is leak-checked by the dist and stream
# unit tests). Address and undefined-behaviour checks stay on.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
export ASAN_OPTIONS
OMP_NUM_THREADS=1
export OMP_NUM_THREADS
run2() { timeout -k 10 "$@"; }
MPI="$mpirun -np 2 --oversubscribe --allow-run-as-root --bind-to none"

check() { # check DESCRIPTION COMMAND...: report and count
  desc=$1; shift
  if "$@"; then echo "ok: $desc"; else echo "FAILED: $desc"; fail=1; fi
}
all() { # all EXPR...: true when every shell expression holds
  for e in "$@"; do eval "$e" || return 1; done
}

echo "== test_mpi equiv"
run2 300 $MPI "$test_mpi" equiv >"$tmp/equiv.out" 2>"$tmp/equiv.err"
rc=$?
cat "$tmp/equiv.out"; cat "$tmp/equiv.err"
check "library checks over 2 processes (exit $rc)" [ "$rc" -eq 0 ]
check "the equivalence figure is printed" grep -q "2 processes vs 1 after 5 steps" "$tmp/equiv.out"

echo "== test_mpi syncbn"
run2 300 $MPI "$test_mpi" syncbn >"$tmp/syncbn.out" 2>"$tmp/syncbn.err"
rc=$?
cat "$tmp/syncbn.out"; cat "$tmp/syncbn.err"
check "synchronised batch norm over 2 processes (exit $rc)" [ "$rc" -eq 0 ]
check "the synchronised equivalence figure is printed" grep -q "synchronised batch norm, 2 processes vs 1 after 5 steps" "$tmp/syncbn.out"

echo "== a failing rank ends the job"
start=$(date +%s)
run2 120 $MPI "$test_mpi" fail >"$tmp/fail.out" 2>"$tmp/fail.err"
rc=$?
secs=$(( $(date +%s) - start ))
cat "$tmp/fail.err"
check "the job ends with an error (exit $rc), not a hang ($secs s)" all '[ "$rc" -ne 0 ]' '[ "$rc" -ne 124 ]' '[ "$rc" -ne 137 ]'
check "the message names rank 1 and the cause" grep -q "rank 1 of 2.*simulated failure" "$tmp/fail.err"

if [ -n "$train" ]; then
  common="--threads 1 --count 400 --difficulty 0 --size 64 --epochs 2 --batch 16 --dropout 0 --no-batchnorm --quiet"
  echo "== cnnlite-train: 1 process vs 2"
  run2 300 "$train" $common --save "$tmp/one.safetensors" >"$tmp/one.out" 2>&1
  rc1=$?
  run2 300 $MPI "$train" $common --save "$tmp/two.safetensors" --history "$tmp/two.csv" >"$tmp/two.out" 2>"$tmp/two.err"
  rc2=$?
  run2 300 $MPI "$train" $common --save "$tmp/two-again.safetensors" >"$tmp/two-again.out" 2>"$tmp/two-again.err"
  rc3=$?
  grep "^Epoch\|^Best\|^Test Accuracy" "$tmp/one.out" | sed 's/^/  1 process:   /'
  grep "^Epoch\|^Best\|^Test Accuracy" "$tmp/two.out" | sed 's/^/  2 processes: /'
  cat "$tmp/two.err"
  check "runs succeed (exit $rc1, $rc2, $rc3)" all '[ "$rc1" -eq 0 ]' '[ "$rc2" -eq 0 ]' '[ "$rc3" -eq 0 ]'
  grep -o "Test Accuracy: [0-9.]*%" "$tmp/one.out" >"$tmp/acc1"
  grep -o "Test Accuracy: [0-9.]*%" "$tmp/two.out" >"$tmp/acc2"
  check "the same test accuracies after each epoch and at the end" cmp -s "$tmp/acc1" "$tmp/acc2"
  check "the accuracies were printed" [ "$(wc -l <"$tmp/acc1")" -eq 3 ]
  check "only rank 0 prints the report's lines" [ "$(grep -c '^Epoch \[1/2\]' "$tmp/two.out")" -eq 1 ]
  check "two runs over 2 processes write bit-identical models" cmp "$tmp/two.safetensors" "$tmp/two-again.safetensors"
  check "rank 0 wrote the history" [ -s "$tmp/two.csv" ]

  echo "== resume with the same number of processes"
  base="--threads 1 --count 400 --difficulty 0 --size 64 --batch 16 --dropout 0 --no-batchnorm --quiet"
  run2 300 $MPI "$train" $base --epochs 1 --checkpoint "$tmp/ck.safetensors" >/dev/null 2>"$tmp/ck.err"
  rc1=$?
  run2 300 $MPI "$train" $base --epochs 2 --resume "$tmp/ck.safetensors" --save "$tmp/resumed.safetensors" \
    >"$tmp/resumed.out" 2>"$tmp/resumed.err"
  rc2=$?
  cat "$tmp/ck.err" "$tmp/resumed.err"
  check "checkpoint and resume over 2 processes succeed (exit $rc1, $rc2)" all '[ "$rc1" -eq 0 ]' '[ "$rc2" -eq 0 ]'
  check "the resumed run ends with the uninterrupted run's weights" cmp "$tmp/resumed.safetensors" "$tmp/two.safetensors"
  run2 300 "$train" $base --epochs 2 --resume "$tmp/ck.safetensors" >/dev/null 2>"$tmp/resume1.err"
  rc=$?
  cat "$tmp/resume1.err"
  check "resuming it in one process is refused (exit $rc)" all '[ "$rc" -ne 0 ]'
  check "the message says why" grep -q "over 2 processes; resume it with as many" "$tmp/resume1.err"

  echo "== cnnlite-train --sync-bn"
  check "--help lists --sync-bn" sh -c "'$train' --help | grep -q -- '--sync-bn'"
  # SGD, as in test_mpi's syncbn: under Adam a convolution bias right before a BatchNorm2d (true
  # gradient 0) moves by about lr per step in the direction of its rounding noise.
  bn="--threads 1 --count 400 --difficulty 0 --size 64 --batch 16 --dropout 0 --batchnorm --sync-bn --quiet"
  bn="$bn --optimizer sgd --momentum 0.9 --lr 0.01"
  run2 300 "$train" $bn --epochs 2 >"$tmp/bn1.out" 2>&1
  rc1=$?
  run2 300 $MPI "$train" $bn --epochs 2 --save "$tmp/bn2.safetensors" >"$tmp/bn2.out" 2>"$tmp/bn2.err"
  rc2=$?
  run2 300 $MPI "$train" $bn --epochs 1 --checkpoint "$tmp/bnck.safetensors" >/dev/null 2>"$tmp/bnck.err"
  rc3=$?
  run2 300 $MPI "$train" $bn --epochs 2 --resume "$tmp/bnck.safetensors" --save "$tmp/bnres.safetensors" \
    >/dev/null 2>"$tmp/bnres.err"
  rc4=$?
  grep "^Epoch\|^Test Accuracy" "$tmp/bn1.out" | sed 's/^/  1 process:   /'
  grep "^Epoch\|^Test Accuracy" "$tmp/bn2.out" | sed 's/^/  2 processes: /'
  cat "$tmp/bn2.err" "$tmp/bnck.err" "$tmp/bnres.err"
  check "batch-norm runs with --sync-bn succeed (exit $rc1, $rc2, $rc3, $rc4)" all '[ "$rc1" -eq 0 ]' '[ "$rc2" -eq 0 ]' '[ "$rc3" -eq 0 ]' '[ "$rc4" -eq 0 ]'
  # One process and two differ only in summation order (test_mpi measures 1e-6 after 5 steps);
  # over 50 steps of batch-norm training such differences grow: with the Winograd forward pass
  # (AVX2 CPUs; rounding differences of 1e-5 instead of 1e-7) the first epoch's test accuracy
  # was seen 6 points apart (35.00 and 41.25), the second epoch's train loss 1.6% (15.31 and
  # 15.55). So: the first epoch's train loss within 1%, the second's within 5%, the final
  # accuracy within 2.5 points of the 80 test images. Batch norm per process instead, in the
  # same run: 27.05, 17.14 (12% off) and 72.50 (5 points off).
  l1=$(grep -o "^Epoch \[1/.*Train Loss: [0-9.]*" "$tmp/bn1.out" | grep -o "[0-9.]*$")
  l2=$(grep -o "^Epoch \[1/.*Train Loss: [0-9.]*" "$tmp/bn2.out" | grep -o "[0-9.]*$")
  e1=$(grep -o "^Epoch \[2/.*Train Loss: [0-9.]*" "$tmp/bn1.out" | grep -o "[0-9.]*$")
  e2=$(grep -o "^Epoch \[2/.*Train Loss: [0-9.]*" "$tmp/bn2.out" | grep -o "[0-9.]*$")
  a1=$(grep -o "^Test Accuracy: [0-9.]*" "$tmp/bn1.out" | grep -o "[0-9.]*$")
  a2=$(grep -o "^Test Accuracy: [0-9.]*" "$tmp/bn2.out" | grep -o "[0-9.]*$")
  check "synchronised batch norm as with 1 process: train loss ($l1 vs $l2, then $e1 vs $e2), final accuracy ($a1 vs $a2)" all \
    '[ -n "$l1" ] && [ -n "$l2" ] && awk -v a="$l1" -v b="$l2" "BEGIN { d = (a - b) / b; exit !(d <= 0.01 && d >= -0.01) }"' \
    '[ -n "$e1" ] && [ -n "$e2" ] && awk -v a="$e1" -v b="$e2" "BEGIN { d = (a - b) / b; exit !(d <= 0.05 && d >= -0.05) }"' \
    '[ -n "$a1" ] && [ -n "$a2" ] && awk -v a="$a1" -v b="$a2" "BEGIN { d = a - b; exit !(d <= 2.5 && d >= -2.5) }"'
  check "a --sync-bn checkpoint resumes over 2 processes to the uninterrupted run's weights" \
    cmp "$tmp/bnres.safetensors" "$tmp/bn2.safetensors"

  echo "== a rank killed mid-run"
  run2 300 $MPI "$train" --threads 1 --count 400 --size 64 --epochs 100 --no-batchnorm --quiet \
    >"$tmp/kill.out" 2>"$tmp/kill.err" &
  job=$!
  victim=""
  for _ in $(seq 1 100); do
    for p in $(pgrep -f "$train" || true); do
      if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
        victim=$p
      fi
    done
    [ -n "$victim" ] && break
    sleep 0.2
  done
  sleep 3
  start=$(date +%s)
  if [ -n "$victim" ]; then kill -9 "$victim"; fi
  wait "$job"
  rc=$?
  secs=$(( $(date +%s) - start ))
  cat "$tmp/kill.err" | head -20
  check "rank 1 was found and killed" [ -n "$victim" ]
  check "the job ends (exit $rc) within 60 s of the kill ($secs s)" all '[ "$rc" -ne 0 ]' '[ "$rc" -ne 124 ]' '[ "$secs" -le 60 ]'
  check "the message names rank 1 and the signal" grep -q "rank 1.*signal 9" "$tmp/kill.err"
fi
exit $fail
