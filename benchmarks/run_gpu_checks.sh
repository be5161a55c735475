#!/usr/bin/env bash
# One-shot GPU checks for a lent GPU machine (torch 2.11, Python 3.12, no network):
# the gpu-marked tests, then benchmarks/gpu_gpt2.py, everything written under $OUT.
#
#   bash benchmarks/run_gpu_checks.sh prepare   # here, once: copies pytest into build/gpu_deps
#   bash benchmarks/run_gpu_checks.sh           # there (carry build/gpu_deps): ~8 minutes
#
# Time budget (H200, one call of at most 9 minutes): tests <= TESTS_TIMEOUT (170 s), the
# benchmark stops setting up variants at 60 % of BUDGET_S and its rounds at BUDGET_S
# (290 s), hard timeout BENCH_TIMEOUT (350 s): 520 s at most. The JSON and table are
# rewritten after every round, so a timeout still leaves results.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python}

if [ "${1:-}" = "prepare" ]; then
    # pure-Python test dependencies the GPU image lacks, copied from this machine's venv
    SITE=$($PY -c "import pytest, os; print(os.path.dirname(os.path.dirname(pytest.__file__)))")
    rm -rf build/gpu_deps && mkdir -p build/gpu_deps
    for pkg in pytest _pytest py.py pluggy iniconfig packaging pygments; do
        cp -r "$SITE/$pkg" build/gpu_deps/ 2>/dev/null || true
    done
    du -sh build/gpu_deps
    exit 0
fi

OUT=${OUT:-$ROOT/build/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$ROOT
if ! $PY -c "import pytest" 2>/dev/null && [ -d build/gpu_deps ]; then
    export PYTHONPATH=$ROOT:$ROOT/build/gpu_deps
fi

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

timeout "${TESTS_TIMEOUT:-170}" $PY -u -m pytest -v -p no:cacheprovider -o addopts="" -m gpu \
    --junitxml "$OUT/gpu_tests.xml" \
    tests/units/test_auto_unit_gpu.py tests/units/test_auto_unit_precision.py \
    > "$OUT/gpu_tests.txt" 2>&1
echo "gpu tests rc=$?"
tail -n 25 "$OUT/gpu_tests.txt"

timeout "${BENCH_TIMEOUT:-350}" $PY -u benchmarks/gpu_gpt2.py --out "$OUT" \
    --budget-s "${BUDGET_S:-290}" > "$OUT/gpu_gpt2.log" 2>&1
echo "gpu_gpt2 rc=$?"
tail -n 40 "$OUT/gpu_gpt2.log"
