#!/usr/bin/env bash
# Issue 11: the wheel works outside the checkout. Build it from a copy of the working tree, install
# it into a fresh virtual environment (never the development .venv), and from a temporary folder
# outside the checkout run what a new user runs first (and the selftest). Any failure stops with
# "wheel-check: FAILED".
#
#   BUILD_PY  python with setuptools>=77 that builds the wheel (default: .venv/bin/python)
#   PY        python that creates the fresh environment (default: python3)
#   KEEP=1    keep the temporary folder for inspection
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_PY=${BUILD_PY:-$ROOT/.venv/bin/python}
PY=${PY:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/d2m-wheel-check.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "wheel-check: keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
START=$SECONDS

step() { echo "wheel-check: $*"; }
fail() { echo "wheel-check: FAILED: $*" >&2; exit 1; }
trap 'echo "wheel-check: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# A copy of the tree, so that a stale build/ folder in the checkout cannot leak into the wheel.
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
    | tar -xf - -C "$WORK/src"
else  # an unpacked archive: what the build reads
  (cd "$ROOT" && tar --exclude=__pycache__ -cf - pyproject.toml README.md LICENSE d2m_bench baselines protocols \
    results/reported) | tar -xf - -C "$WORK/src"
fi
# Without build isolation when BUILD_PY has a new enough setuptools (fast, offline); else pip
# fetches the build-system requirements itself.
isolation=--no-build-isolation
"$BUILD_PY" -c "import sys, setuptools; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null \
  || isolation=
"$BUILD_PY" -m pip wheel $isolation --no-deps -q -w "$WORK/dist" "$WORK/src" >/dev/null 2>"$WORK/build.log" \
  || { cat "$WORK/build.log" >&2; fail "building the wheel"; }
WHEEL=$(ls "$WORK"/dist/d2m_bench-*.whl)
step "built $(basename "$WHEEL") ($((SECONDS - START)) s)"

# Core dependencies only: the default protocol's demo run needs neither torch nor any extra.
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "$WHEEL" >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log" >&2; fail "installing the wheel"; }
step "installed into a fresh venv ($((SECONDS - START)) s)"
BIN=$WORK/venv/bin
# What docs/install.md tells a pip user to run once: librosa's kernels into numba's cache.
step "$("$BIN/python" -m d2m_bench.features.kernels)"

cd "$WORK/run"
unset PYTHONPATH D2M_BENCH_PROTOCOLS
export D2M_BENCH_CACHE=$WORK/cache

"$BIN/python" - "$ROOT" <<'EOF' || fail "the installed package is not the wheel's"
import sys, pathlib, d2m_bench
where = pathlib.Path(d2m_bench.__file__).resolve()
assert pathlib.Path(sys.argv[1]) not in where.parents, f"imported from the checkout: {where}"
assert "site-packages" in where.parts, where
EOF

"$BIN/d2m-bench" protocols > protocols.txt || fail "d2m-bench protocols"
expected=$(ls "$ROOT"/protocols/*.toml | wc -l)
[ "$(wc -l < protocols.txt)" -eq "$expected" ] || { cat protocols.txt; fail "protocols lists $(wc -l < protocols.txt) of $expected"; }
grep -q '^d2m-aistpp-2s ' protocols.txt || fail "the default protocol d2m-aistpp-2s is not listed"
step "protocols: $expected listed"

"$BIN/d2m-bench" demo make demo > /dev/null || fail "d2m-bench demo make"
[ "$(ls demo/gt/*.wav | wc -l)" -eq 12 ] && [ "$(ls demo/generated/*.wav | wc -l)" -eq 12 ] \
  || fail "demo make did not write 12 gt and 12 generated clips"

t0=$EPOCHREALTIME
"$BIN/d2m-bench" eval --pred demo/generated --gt demo/gt --out cli.json --quiet 2> eval.err \
  || { cat eval.err >&2; fail "d2m-bench eval with the default protocol"; }
step "eval: demo set scored, first eval of this install in $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}") s"

# Issue 25: a core install has no torch; every command that needs it stops with one line naming the extra.
if ! "$BIN/python" -c "import torch" 2>/dev/null; then
  for cmd in "fad -b demo/gt --eval demo/generated" "stats demo/gt --out stats.npz" \
             "eval --pred demo/generated --gt demo/gt -p v2m-audio --quiet"; do
    rc=0; "$BIN/d2m-bench" $cmd > /dev/null 2> torchfree.err || rc=$?
    { [ "$rc" -eq 2 ] && [ "$(wc -l < torchfree.err)" -eq 1 ] && grep -q "needs torch: pip install" torchfree.err; } \
      || { cat torchfree.err >&2; fail "d2m-bench $cmd without torch: exit $rc, not one line naming the extra"; }
  done
  "$BIN/d2m-bench" weights list > /dev/null 2> torchfree.err || { cat torchfree.err >&2; fail "weights list without torch"; }
  step "torch-free: fad, stats and eval -p v2m-audio stop in one line; weights list runs"
fi

t0=$EPOCHREALTIME
"$BIN/d2m-bench" selftest -q > selftest.txt 2>&1 || { cat selftest.txt >&2; fail "d2m-bench selftest (shipped cases and expected numbers)"; }
step "$(tail -n 1 selftest.txt) (command: $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}") s)"

"$BIN/d2m-bench" leaderboard > leaderboard.txt || fail "d2m-bench leaderboard"
step "leaderboard: $(cat leaderboard.txt)"
[ -s results/leaderboard.csv ] || fail "no results/leaderboard.csv"
grep -q ',reported,' results/leaderboard.csv || fail "the shipped paper rows are missing from the leaderboard"

"$BIN/python" - <<'EOF' || fail "the Python API"
import json, math
import d2m_bench
from d2m_bench import evaluate

assert evaluate is d2m_bench.evaluate and callable(evaluate), type(evaluate)
first = d2m_bench.evaluate("demo/generated", "demo/gt")
second = d2m_bench.evaluate("demo/generated", "demo/gt", protocol="d2m-aistpp-2s")
cli = json.load(open("cli.json"))
assert cli["complete"] and cli["protocol"]["name"] == "d2m-aistpp-2s", cli["protocol"]["name"]
assert first.protocol.hash == cli["protocol"]["hash"]
for result in (first, second):
    assert len(result.per_clip) == 12, len(result.per_clip)
    assert result.aggregate.keys() == cli["aggregate"].keys()
    for name, m in cli["aggregate"].items():
        assert math.isfinite(m["value"]) and result.aggregate[name]["value"] == m["value"], name
assert d2m_bench.evaluate is evaluate
print("api: evaluate called twice;", ", ".join(f"{k} {v['value']:.3f}" for k, v in cli["aggregate"].items()))
EOF

step "passed in $((SECONDS - START)) s"
