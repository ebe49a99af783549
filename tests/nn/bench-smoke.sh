#!/bin/sh
# cnnlite-bench at a small size: the last line is the JSON object with positive figures, the
# work count is the report network's, --profile lists every layer, --peak every vector width
# and the bfloat16 dot product where the CPU has it,
# and a bad option gives one message and exit status 2.
set -u
bench=$1
out=$("$bench" --size 64 --batch 3 --steps 1 --threads 2 --batchnorm --json --profile --peak) ||
    { echo "bench failed"; exit 1; }
last=$(printf '%s\n' "$out" | tail -n 1)
num='[0-9]+\.[0-9]+'
echo "$last" | grep -Eq "^\{\"train_img_s\": $num, \"infer_img_s\": $num, \"peak_rss_mb\": $num, \"train_gflops\": $num, \"infer_gflops\": $num, \"peak_gflops\": $num, \"train_peak_frac\": $num, \"infer_peak_frac\": $num, \"bf16_peak_gflops\": $num\}$" ||
    { echo "unexpected last line: $last"; exit 1; }
for key in train_img_s infer_img_s train_gflops infer_gflops peak_gflops; do
    echo "$last" | grep -Eq "\"$key\": 0\.0+[,}]" && { echo "zero $key: $last"; exit 1; }
done
# 64x64 input: convolutions at 32, 16, 8 and 4 pixels, 3-16-32-64-128 channels, 3x3 kernels;
# Linear 512-128-4. Forward multiply-adds per image: 4,047,360; in GFLOP (2 per multiply-add)
# 0.008 forward; the training step counts the first convolution twice and the rest three times.
echo "$out" | grep -q "^work per image: forward 0.008 GFLOP, training step 0.023 GFLOP" ||
    { echo "unexpected work count: $(echo "$out" | grep '^work')"; exit 1; }
# --profile: one row per layer of the batch-norm network (23 layers), then the totals
rows=$(printf '%s\n' "$out" | grep -Ec '^  (features|classifier)\.[0-9]+ |^  flatten ')
[ "$rows" -eq 23 ] || { echo "profile has $rows layer rows, want 23"; exit 1; }
echo "$out" | grep -Eq '^  features\.1 +Conv2d +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]+ ' ||
    { echo "no Conv2d row for features.1"; exit 1; }
# --peak: at least the SSE row with positive figures
echo "$out" | grep -Eq '^  SSE \(mul\+add, 4 lanes\) +[0-9]*[1-9][0-9]*\.[0-9] +[0-9]*[1-9][0-9]*\.[0-9]$' ||
    { echo "no SSE peak row"; exit 1; }
# --peak: the bfloat16 row with positive figures and the JSON figure, or "none" and 0 on CPUs
# without AVX512_BF16
if echo "$last" | grep -Eq '"bf16_peak_gflops": 0\.00\}$'; then
    echo "$out" | grep -q '^bfloat16 dot-product peak: none (no AVX512_BF16)$' ||
        { echo "bf16_peak_gflops is 0 but the bf16 row is not 'none'"; exit 1; }
else
    echo "$out" | grep -Eq '^  AVX512_BF16 dot \(16 lanes\) +[0-9]*[1-9][0-9]*\.[0-9] +[0-9]*[1-9][0-9]*\.[0-9]$' ||
        { echo "no AVX512_BF16 peak row"; exit 1; }
    echo "$out" | grep -Eq '^bf16 peak: [0-9.]+ GFLOP/s bfloat16 dot product' ||
        { echo "no bf16 peak line"; exit 1; }
fi
err=$("$bench" --batch nope 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 2 ] || { echo "bad option: exit status $rc, want 2"; exit 1; }
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "bad option: want one line, got: $err"; exit 1; }
echo "$err" | grep -q -- "--batch" || { echo "message does not name the option: $err"; exit 1; }
err=$("$bench" --precision fp16 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 2 ] || { echo "--precision fp16: exit status $rc, want 2"; exit 1; }
echo "$err" | grep -q -- "--precision" || { echo "message does not name --precision: $err"; exit 1; }
"$bench" --help | grep -q -- "--steps" || { echo "--help does not list --steps"; exit 1; }
echo "ok: $last"
