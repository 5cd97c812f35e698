#!/usr/bin/env bash
# tests/gpu/run.sh — every GPU check and benchmark in one call of the device tool (docs/gpu.md).
#
# Runs from the repository root of a copy that carries a build folder (BUILD_DIR, default build/;
# for the device tool the stripped gpu-bundle/ of scripts/gpu_bundle.sh); builds nothing. Correctness first: each built-in
# kernel with --gpu --check at small and odd shapes; then timings at the DESIGN.md shapes. Each
# run's JSON goes to $OUT (default ./gpu-out); the last lines printed are a short table.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
BUILD=${BUILD_DIR:-build}
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # absolute: make -C below changes directory
if compgen -G "$BUILD/*.gz" >/dev/null; then # a gzipped bundle (scripts/gpu_bundle.sh)
  bin=$(mktemp -d /tmp/tilec-bin.XXXXXX)
  for f in "$BUILD"/*.gz; do
    gzip -dc "$f" >"$bin/$(basename "${f%.gz}")" && chmod +x "$bin/$(basename "${f%.gz}")"
  done
  BUILD=$bin
fi
export LD_LIBRARY_PATH="$BUILD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" # libtilec.so.0, SQLite
TILEC=$BUILD/tilec
[[ -x $TILEC ]] || { echo "run.sh: $TILEC not found (carry the build folder)" >&2; exit 2; }

nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv >"$OUT/clocks.csv" 2>&1 || true
"$TILEC" info >"$OUT/info.txt" 2>&1
cat "$OUT/info.txt"

rows=()
n=0
: >"$OUT/rows.txt"
# add_row TEXT: a table row, also appended to $OUT/rows.txt at once (a run cut short by the
# device tool's time limit still leaves what it measured)
add_row() {
  rows+=("$1")
  printf '%s\n' "$1" >>"$OUT/rows.txt"
}
# run NAME KERNEL ARGS...: one tilec run, JSON to $OUT/NAME.json, a table row
run() {
  local name=$1
  shift
  n=$((n + 1))
  local json="$OUT/$name.json" status
  if timeout 300 "$TILEC" run "$@" --gpu --json >"$json" 2>"$OUT/$name.err"; then
    status=ok
  else
    status="FAIL($?)"
  fi
  local row
  row=$(python3 - "$json" "$name" "$status" <<'PY'
import json, sys
path, name, status = sys.argv[1:4]
try:
    j = json.load(open(path))
    g = j.get("gpu", {})
    chk = j.get("check", {}).get("pass")
    chk = "-" if chk is None else ("pass" if chk else "FAIL")
    print(f"{name:28s} {status:8s} {chk:5s} {g.get('median_ms', 0):9.4f} ms "
          f"{j.get('gflops', 0) / 1e3:8.2f} TFLOP/s  regs {g.get('regs', 0)} "
          f"{g.get('variant', '')}")
except Exception as e:
    print(f"{name:28s} {status:8s} (no result: {e})")
PY
)
  add_row "$row"
}

# correctness at small and odd shapes (CPU reference)
run mm_odd matmul --shape M=257,N=129,K=200 --set BM=64,BN=64,BK=32 --check
run mm_f16 matmul --shape M=512,N=512,K=512 --dtype f16 --check
run mm_transb matmul --shape M=256,N=384,K=512,transb=1 --check
run attn_small attention --shape B=1,H=4,HKV=2,S=257,D=64,causal=1 --set BM=64,BN=64 --check
run attn_d128 attention --shape B=2,H=2,S=512,D=128 --check
run bsattn_doc bsattention --shape H=2,S=1000,mask=causal,document:300+700 --set BM=64,BN=64 --check
run bsattn_slide bsattention --shape H=4,S=2048,mask=sliding:256 --set BM=64,BN=64 --check
run bsmm bsmatmul --shape M=512,N=1024,K=1024,block=32,density=0.25 --check

# the GPU unit tests (tests/gpu/*.c, CTest label gpu), run directly: CTest files hold this
# machine's absolute paths
for t in "$BUILD"/gpu_*; do
  [[ -x $t ]] || continue
  name=$(basename "$t")
  n=$((n + 1))
  if TILEC_BINARY_DIR=$BUILD timeout 300 "$t" >"$OUT/$name.txt" 2>&1; then
    add_row "$(printf '%-28s ok' "$name")"
  else
    add_row "$(printf '%-28s FAIL(%s) see %s' "$name" "$?" "$OUT/$name.txt")"
  fi
done

# timings at the DESIGN.md shapes (checked above at smaller sizes)
run mm_4096 matmul --shape M=4096,N=4096,K=4096 --reps 50
run mm_decode16 matmul --shape M=16,N=14336,K=4096 --set BM=16,BN=64,BK=64 --reps 100
run attn_4k_causal attention --shape B=4,H=32,S=4096,D=128,causal=1 --reps 20
run bsattn_4k_25 bsattention --shape B=4,H=32,S=4096,D=128,mask=random:0.25 --reps 20
run bsmm_4096_25 bsmatmul --shape M=4096,N=4096,K=4096,block=64,density=0.25 --reps 20

# host cost per launch, tilec's packing + cuLaunchKernel vs cuLaunchKernel alone
"$TILEC" bench launch matmul --shape M=128,N=128,K=128 --set BM=64,BN=64 \
  >"$OUT/bench_launch.txt" 2>&1 || echo "bench launch failed" >>"$OUT/bench_launch.txt"
add_row "$(tr '\n' ' ' <"$OUT/bench_launch.txt")"

# compile time on this machine's CPU (DESIGN.md's IR -> PTX target is an H200-host number):
# median of 10 compilations of each default config, per phase; details in bench_compile.txt
for k in matmul attention bsattention bsmatmul; do
  "$TILEC" bench compile "$k" --reps 10 >>"$OUT/bench_compile.txt" 2>&1 ||
    echo "bench compile $k failed (exit $?)" >>"$OUT/bench_compile.txt"
done
add_row "$(grep -E '^[a-z]+ for |IR -> PTX total|PTX -> cubin' "$OUT/bench_compile.txt" | tr -s ' ' |
  paste -sd' ')"

# tuning sweeps (the autotuner issue): matmul 4096^3, a decode shape, attention; each limited
# in time; the database is private to this run, in $OUT (--db: a path given is not subject to
# the cache-directory checks)
for spec in "mm4096 matmul --shape M=4096,N=4096,K=4096" \
  "mmdecode matmul --shape M=16,N=14336,K=4096" \
  "attn attention --shape B=4,H=32,S=4096,D=128,causal=1"; do
  read -r name kernel args <<<"$spec"
  n=$((n + 1))
  # shellcheck disable=SC2086 # args is a list of options
  if timeout 150 "$TILEC" tune "$kernel" $args --time 45 --db "$OUT/tune.db" --json >"$OUT/tune_$name.json" \
    2>"$OUT/tune_$name.err"; then
    add_row "$(python3 - "$OUT/tune_$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
top = d["top"][0] if d["top"] else {}
print("tune %-22s %s %d cfgs in %.0f s, best %s ms: %s" % (sys.argv[2], d.get("variant", "?"),
      d["considered"], d["elapsed_s"], top.get("median_ms"), d["winner"]))
PY
)"
  else
    add_row "tune $name FAIL($?): $(tail -1 "$OUT/tune_$name.err")"
  fi
done

# the public API (issue 6): examples/engine.c cold (every kernel compiled into a fresh
# database) then warm (every kernel from that database); miss, hit, launch and kernel times
if [[ -x $BUILD/tilec_engine ]]; then
  for pass in cold warm; do
    n=$((n + 1))
    if timeout 300 "$BUILD/tilec_engine" --db "$OUT/engine.db" --writable --reps 20 \
      >"$OUT/engine_$pass.txt" 2>&1; then
      add_row "engine $pass: $(grep -E '^lookups' "$OUT/engine_$pass.txt")"
    else
      add_row "engine $pass FAIL($?): $(tail -1 "$OUT/engine_$pass.txt")"
    fi
  done
  # the serving-loop way (TILEC_KERNEL_NOWAIT, no database): how soon a miss answers, and how
  # many fallback steps until tilec's kernel is ready
  n=$((n + 1))
  if timeout 300 "$BUILD/tilec_engine" --nowait --reps 20 >"$OUT/engine_nowait.txt" 2>&1; then
    add_row "engine nowait: $(grep -m1 'first answer' "$OUT/engine_nowait.txt" | sed 's/  */ /g')"
  else
    add_row "engine nowait FAIL($?): $(tail -1 "$OUT/engine_nowait.txt")"
  fi
fi

# an exported tuned.c (issue 6): the matmul winners of the sweeps above, compiled here with
# examples/export (needs a C compiler and the CUDA headers on this machine), then run
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gpu"]["key"])' \
  "$OUT/mm_odd.json" 2>/dev/null)
if [[ -n $key ]] && command -v "${CC:-cc}" >/dev/null; then
  n=$((n + 1))
  if "$TILEC" export --db "$OUT/tune.db" --device "$key" --kernels matmul --prefix example \
    -o "$OUT/tuned.c" >"$OUT/export.txt" 2>&1 &&
    make -s -C examples/export TUNED="$OUT/tuned.c" OUT="$OUT/export_engine" >>"$OUT/export.txt" 2>&1; then
    # the decode sweep's bucket (its CPU reference makes 4096^3 too slow here)
    if timeout 120 "$OUT/export_engine" 16 14336 4096 >>"$OUT/export.txt" 2>&1; then
      add_row "export_engine 16x14336x4096: $(tail -1 "$OUT/export.txt")"
    else
      add_row "export_engine 16x14336x4096 FAIL($?): $(tail -1 "$OUT/export.txt")"
    fi
  else
    add_row "export FAIL: $(tail -1 "$OUT/export.txt")"
  fi
else
  add_row "export skipped: no device key (mm_odd.json) or no C compiler"
fi

# tilec matmul vs cuBLASLt in this process (the DESIGN.md shapes); table in bench_matmul.txt
timeout 300 "$TILEC" bench matmul --reps 20 >"$OUT/bench_matmul.txt" 2>&1 ||
  echo "bench matmul failed (exit $?)" >>"$OUT/bench_matmul.txt"
add_row "$(cat "$OUT/bench_matmul.txt")"

echo
echo "== tests/gpu/run.sh: $n runs, details in $OUT =="
printf '%s\n' "${rows[@]}" | tee "$OUT/table.txt"
