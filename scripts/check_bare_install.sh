#!/usr/bin/env bash
# `pip install .` without extras, in a throwaway venv: `import asr` works, `asr score` scores,
# the optional extras are really absent and their commands say which extra to install.
# Usage: scripts/check_bare_install.sh [PYTHON]   (make check-bare-install; ~2 min, torch included)
set -euo pipefail
PYTHON=${1:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A copy of the tracked and new files, so the build leaves nothing in the checkout.
(cd "$ROOT" && git ls-files -co --exclude-standard -z -- asr recipes pyproject.toml README.md constraints.txt \
  | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$WORK" --one-top-level=src
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$WORK/src" -c "$ROOT/constraints.txt"

cd "$WORK"
"$WORK/venv/bin/python" -c "import asr, asr.metrics, asr.data.prepare; print('import asr: ok', asr.__version__)"
for extra_module in datasets evaluate funasr torchaudio jiwer librosa; do
  if "$WORK/venv/bin/python" -c "import $extra_module" 2>/dev/null; then
    echo "FAIL: $extra_module is installed without its extra" >&2
    exit 1
  fi
done
printf '{"id": "a", "reference": "长沙话！", "prediction": "长沙化"}\n{"id": "b", "reference": "好咯", "prediction": "好咯"}\n' > preds.jsonl
summary=$("$WORK/venv/bin/asr" score --predictions preds.jsonl --bootstrap 0)
echo "asr score: $summary"
[[ $summary == *'"cer": 0.2,'* ]] || { echo "FAIL: unexpected asr score output" >&2; exit 1; }
set +e
message=$("$WORK/venv/bin/asr" prepare --hf-dataset "$WORK/none" --out out 2>&1)
status=$?
set -e
[[ $status == 2 && $message == *"pip install 'cs-mage-asr[hf]'"* ]] || {
  echo "FAIL: asr prepare --hf-dataset without the hf extra: status $status: $message" >&2
  exit 1
}
echo "bare install: ok"
