#!/bin/sh
# cnnlite-bench at a small size: the last line is the JSON object with positive figures, and a
# bad option gives one message and exit status 2.
set -u
bench=$1
out=$("$bench" --size 64 --batch 3 --steps 1 --threads 2 --batchnorm --json) || { echo "bench failed"; exit 1; }
last=$(printf '%s\n' "$out" | tail -n 1)
echo "$last" | grep -Eq '^\{"train_img_s": [0-9]+\.[0-9]+, "infer_img_s": [0-9]+\.[0-9]+, "peak_rss_mb": [0-9]+\.[0-9]+\}$' ||
    { echo "unexpected last line: $last"; exit 1; }
echo "$last" | grep -q '"train_img_s": 0\.00' && { echo "zero throughput: $last"; exit 1; }
err=$("$bench" --batch nope 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 2 ] || { echo "bad option: exit status $rc, want 2"; exit 1; }
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "bad option: want one line, got: $err"; exit 1; }
echo "$err" | grep -q -- "--batch" || { echo "message does not name the option: $err"; exit 1; }
"$bench" --help | grep -q -- "--steps" || { echo "--help does not list --steps"; exit 1; }
echo "ok: $last"
