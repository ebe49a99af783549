#!/bin/sh
# PyTorch reads the model files libcnnlite writes: export two files (with and without batch
# norm) and their logits with the test program, then check them with read_with_torch.py.
# usage: torch_read.sh TEST_MODEL_FILE_EXE SOURCE_DIR [PYTHON]
# Exit 77 (skipped) when the Python interpreter or torch is missing.
exe=$1
src=$2
py=${3:-/usr/bin/python3}
[ -x "$py" ] || { echo "$py not found: skipping"; exit 77; }
"$py" -c 'import torch' 2>/dev/null || { echo "torch is not installed for $py: skipping"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/cnnl-torch-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
CNNLITE_IO_EXPORT_DIR=$dir "$exe" >"$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
status=0
for v in ours ours_bn; do
  "$py" "$src/read_with_torch.py" "$dir/$v.safetensors" "$dir/${v}_io.safetensors" || status=1
done
exit $status
