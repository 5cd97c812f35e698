#!/usr/bin/env bash
# tests/cli/tune_check.sh TILEC — `tilec tune` end to end without a GPU: the real compile pool
# (LLVM, nvJitLink) and database, the worker in its scripted test mode (TILEC_WORKER_FAKE, built
# with TILEC_TEST_HOOKS) standing in for the GPU. Checks: the winner is the script's fastest
# config among those that compiled; crash/hang/wrong/resources candidates get their statuses and
# never win; a second run resumes (nothing measured, same winner); --restart measures again;
# two shards merged with `tilec db merge` give the full run's winner; --compile-only records
# resources; without a driver the exit code is 2 with one line. Exit 77 when nvJitLink or the
# test hooks are missing.
set -euo pipefail
tilec=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset TILEC_DB TILEC_WORKER_EXE
export XDG_CACHE_HOME=$tmp/cache
fail() {
  echo "FAILED: $*"
  exit 1
}
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }
"$tilec" info 2>/dev/null | grep -q '^nvjitlink: [0-9]' || { echo "SKIPPED: no nvJitLink"; exit 77; }

# A small space: matmul with BK, STAGES, GROUP_M and WARPS pinned leaves BM x BN.
common=(matmul --shape M=256,N=256,K=256 --set BK=32,STAGES=2,GROUP_M=8,WARPS=4 --jobs 2
  --timeout 2 --reps 5 --retime 2)
script=$tmp/script.tsv
for bm in 16 32 64 128 256; do
  for bn in 16 32 64 128 256; do
    case BM=$bm,BN=$bn in
    BM=64,BN=128) act="ok 0.100" ;; # the fastest
    BM=128,BN=64) act="ok 0.120" ;; # second
    BM=32,BN=32) act="crash" ;;
    BM=32,BN=64) act="hang" ;;
    BM=64,BN=64) act="wrong" ;; # would be the fastest if it were right
    BM=16,BN=64) act="resources" ;;
    *) act="ok $(((bm + bn) % 7 + 2)).5" ;;
    esac
    # rows and the worker see full configs: every tunable in declaration order
    printf 'BM=%s,BN=%s,BK=32,WARPS=4,STAGES=2,GROUP_M=8\t%s\n' "$bm" "$bn" "$act" >>"$script"
  done
done
export TILEC_WORKER_FAKE=$script
best="BM=64,BN=128,BK=32,WARPS=4,STAGES=2,GROUP_M=8"

run() { # run NAME ARGS...: tilec tune ... --json into $tmp/NAME.json; exit code in $tmp/NAME.rc
  local name=$1 rc=0
  shift
  "$tilec" tune "$@" --json >"$tmp/$name.json" 2>"$tmp/$name.err" || rc=$?
  echo "$rc" >"$tmp/$name.rc"
}
field() { # field NAME EXPR: a Python expression over d, the JSON of run NAME
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$tmp/$1.json"
}

run full "${common[@]}" --strategy exhaustive --db "$tmp/full.db"
if grep -q "test hooks" "$tmp/full.err"; then
  echo "SKIPPED: tilec built without TILEC_TEST_HOOKS"
  exit 77
fi
[[ $(cat "$tmp/full.rc") == 0 ]] || { cat "$tmp/full.err"; fail "full sweep exit code"; }
[[ $(field full 'd["winner"]') == "$best" ]] || { cat "$tmp/full.json"; fail "winner"; }
for s in fault timeout wrong resources; do
  [[ $(field full "d['counts']['$s']") -ge 1 ]] || { cat "$tmp/full.json"; fail "no $s outcome"; }
done
[[ $(field full 'd["measured"]') -ge 10 ]] || fail "too few measured"
[[ $(field full 'd["device"]') == "fake|sm_90a|132sm|141GiB" ]] || fail "device key"
grep -q "BM=64,BN=64," "$tmp/full.json" && fail "a wrong candidate is listed among the best"

# Lookups: a shape of the same bucket finds the winner; an untuned bucket the nearest one's.
"$tilec" db best matmul --shape M=200,N=256,K=256 --db "$tmp/full.db" >"$tmp/best.out" ||
  fail "db best"
grep -q "^best  *$best .* (aligned code)" "$tmp/best.out" || { cat "$tmp/best.out"; fail "db best winner"; }
"$tilec" db best matmul --shape M=4096,N=4096,K=256 --db "$tmp/full.db" >"$tmp/near.out" ||
  fail "db best (nearest)"
grep -q "nearest tuned bucket is K=multiple(256):256,M=pow2:256" "$tmp/near.out" ||
  { cat "$tmp/near.out"; fail "db best nearest"; }
rc=0
"$tilec" db best attention --shape B=1,H=1,S=128 --db "$tmp/full.db" >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "db best of an untuned kernel: exit $rc"

# The code variant: M=N=K=256 in bf16 keeps the aligned variant's promise, so the sweep measured
# the aligned variant (its rows say so) and stored the winner's generic code as well, a blob no
# row points at.
[[ $(field full 'd["variant"]') == aligned ]] || fail "variant of an aligned problem"
[[ $(field full 'd["top"][0]["variant"]') == aligned ]] || fail "the rows' variant"
"$tilec" db show --db "$tmp/full.db" >"$tmp/show.out" || fail "db show"
grep -q "$best  \[aligned\]" "$tmp/show.out" || { cat "$tmp/show.out"; fail "db show variant"; }
sql() { # sql DB QUERY: the first column of the first row
  python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$@"
}
twins="SELECT count(*) FROM blob WHERE meta LIKE '%\"variant\": \"generic\"%'
  AND compile_key NOT IN (SELECT compile_key FROM result)"
[[ $(sql "$tmp/full.db" "$twins") == 1 ]] || fail "the winner's generic code is not stored"
[[ $(sql "$tmp/full.db" "SELECT count(*) FROM result WHERE variant <> 'aligned'") == 0 ]] ||
  fail "a row of the aligned sweep is not marked aligned"
# prune --orphan-blobs keeps that generic code while its aligned row lives, and drops it after
cp "$tmp/full.db" "$tmp/prune.db"
"$tilec" db prune --orphan-blobs --no-vacuum --db "$tmp/prune.db" >"$tmp/prune.out" || fail "prune"
grep -q "removed 0 rows, 0 blobs" "$tmp/prune.out" || { cat "$tmp/prune.out"; fail "prune kept"; }
[[ $(sql "$tmp/prune.db" "$twins") == 1 ]] || fail "prune dropped the winner's generic code"
"$tilec" db prune --status ok --orphan-blobs --no-vacuum --db "$tmp/prune.db" >/dev/null ||
  fail "prune ok rows"
[[ $(sql "$tmp/prune.db" "$twins") == 0 ]] || fail "prune kept generic code of a deleted row"
# --variant generic on a copy: every candidate measured again (the rows measured the other
# code), rows now generic; the finalists re-timed are generic rows.
cp "$tmp/full.db" "$tmp/var.db"
run gen "${common[@]}" --strategy exhaustive --db "$tmp/var.db" --variant generic
[[ $(cat "$tmp/gen.rc") == 0 ]] || { cat "$tmp/gen.err"; fail "generic sweep exit code"; }
[[ $(field gen 'd["variant"]') == generic ]] || fail "--variant generic"
[[ $(field gen 'd["measured"]') == $(field full 'd["measured"]') ]] ||
  fail "a row of the other variant answered a candidate"
[[ $(sql "$tmp/var.db" "SELECT count(*) FROM result WHERE variant = 'aligned'") == 0 ]] ||
  fail "aligned rows left after the generic sweep"
# K=100 in bf16: A's rows are 200 bytes, so the promise is broken: auto measures the generic
# code, and --variant aligned is refused before anything is compiled.
mis=(matmul --shape M=256,N=256,K=100 --set BK=32,STAGES=2,GROUP_M=8,WARPS=4 --jobs 2
  --timeout 2 --reps 5 --retime 0 --strategy model --budget 2 --db "$tmp/mis.db")
run mis "${mis[@]}"
[[ $(cat "$tmp/mis.rc") == 0 ]] || { cat "$tmp/mis.err"; fail "misaligned sweep exit code"; }
[[ $(field mis 'd["variant"]') == generic ]] || fail "auto variant of a misaligned problem"
run misal "${mis[@]}" --variant aligned
[[ $(cat "$tmp/misal.rc") == 1 ]] || { cat "$tmp/misal.err"; fail "--variant aligned exit code"; }
grep -q "break the aligned variant's promise" "$tmp/misal.json" "$tmp/misal.err" ||
  fail "--variant aligned message"
[[ $(field misal 'd["measured"]') == 0 ]] || fail "--variant aligned measured"

# Resume: the same sweep again answers everything from the database.
run again "${common[@]}" --strategy exhaustive --db "$tmp/full.db"
[[ $(cat "$tmp/again.rc") == 0 ]] || { cat "$tmp/again.err"; fail "resume exit code"; }
[[ $(field again 'd["measured"]') == 0 ]] || fail "resume measured again"
[[ $(field again 'd["winner"]') == "$best" ]] || fail "resume winner"
# Rows that name no cubin (a file migrated to schema 4, a merge without blobs): the next sweep
# measures nothing and stores the winner's code under its key, named by its row.
cp "$tmp/full.db" "$tmp/nokey.db"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE result SET compile_key = \x27\x27"); c.commit()' "$tmp/nokey.db"
run nokey "${common[@]}" --strategy exhaustive --db "$tmp/nokey.db"
[[ $(cat "$tmp/nokey.rc") == 0 ]] || { cat "$tmp/nokey.err"; fail "sweep over rows without cubins"; }
[[ $(field nokey 'd["measured"]') == 0 ]] || fail "rows without cubins measured again"
[[ $(sql "$tmp/nokey.db" "SELECT count(*) FROM result r JOIN blob b ON b.compile_key = r.compile_key
  WHERE r.config = '$best'") == 1 ]] || fail "the winner's cubin is not stored and named"

# --restart measures again.
run restart "${common[@]}" --strategy exhaustive --db "$tmp/full.db" --restart
[[ $(field restart 'd["measured"]') == $(field full 'd["measured"]') ]] || fail "restart"

# Two shards into two databases, merged: the full run's winner.
run s0 "${common[@]}" --strategy exhaustive --db "$tmp/s0.db" --shard 0/2
run s1 "${common[@]}" --strategy exhaustive --db "$tmp/s1.db" --shard 1/2
n0=$(field s0 'd["considered"]')
n1=$(field s1 'd["considered"]')
[[ $((n0 + n1)) == $(field full 'd["considered"]') ]] || fail "shards $n0 + $n1 != full"
"$tilec" db merge "$tmp/s1.db" --db "$tmp/s0.db" >/dev/null || fail "db merge"
"$tilec" db list --db "$tmp/s0.db" | grep -q "winner $best" || fail "merged winner"

# 8 processes tuning the same problem into one database at once: all finish, the file passes
# the integrity check, and every process reports the same winner.
pids=()
for i in 0 1 2 3 4 5 6 7; do
  "$tilec" tune matmul --shape M=256,N=256,K=256 --set BM=64,BK=32,STAGES=2,GROUP_M=8,WARPS=4 \
    --jobs 1 --timeout 2 --reps 5 --strategy exhaustive --db "$tmp/conc.db" --json \
    >"$tmp/conc$i.json" 2>"$tmp/conc$i.err" &
  pids+=($!)
done
for i in 0 1 2 3 4 5 6 7; do
  wait "${pids[$i]}" || { cat "$tmp/conc$i.err"; fail "concurrent tune $i"; }
  [[ $(field conc$i 'd["winner"]') == "$best" ]] || fail "concurrent tune $i winner"
done
"$tilec" db check --db "$tmp/conc.db" >/dev/null || fail "db check after concurrent tunes"

# One config, two problems that differ in dtype: two rows, two cubins (the compile key covers
# the problem's items, not the tunables alone), and each row's blob says its own dtype's code.
one=(matmul --shape M=256,N=256,K=256 --set BM=64,BN=128,BK=32,STAGES=2,GROUP_M=8,WARPS=4
  --jobs 1 --timeout 2 --reps 5 --retime 0 --strategy exhaustive --db "$tmp/dt.db")
run dtb "${one[@]}" --dtype bf16
run dtf "${one[@]}" --dtype f16
[[ $(cat "$tmp/dtb.rc") == 0 && $(cat "$tmp/dtf.rc") == 0 ]] ||
  { cat "$tmp/dtb.err" "$tmp/dtf.err"; fail "dtype sweeps"; }
[[ $(sql "$tmp/dt.db" "SELECT count(*) FROM result WHERE compile_key <> ''") == 2 ]] ||
  fail "dtype sweeps: rows without cubins"
[[ $(sql "$tmp/dt.db" "SELECT count(DISTINCT compile_key) FROM result") == 2 ]] ||
  fail "bf16 and f16 rows share a cubin"
[[ $(sql "$tmp/dt.db" "SELECT count(DISTINCT b.sha256) FROM result r JOIN blob b
  ON b.compile_key = r.compile_key") == 2 ]] || fail "bf16 and f16 rows name the same code"

# A file kernel's const parameter pinned with --set: another problem (its own bucket), and the
# worker specializes with it. D=3 makes rows of 12 bytes, which break the aligned variant's
# promise (so the worker, building D=3's problem, answers generic); D=16 keeps it.
krows=$(dirname "$0")/const_rows.tile
printf 'BLOCK=16\tok 1.0\nBLOCK=32\tok 2.0\n' >"$tmp/rows.tsv"
for d in 16 3; do
  TILEC_WORKER_FAKE=$tmp/rows.tsv run rows$d "$krows" --shape N=4096 --set D=$d --jobs 1 \
    --timeout 2 --reps 5 --retime 0 --strategy exhaustive --db "$tmp/rows.db"
  [[ $(cat "$tmp/rows$d.rc") == 0 ]] || { cat "$tmp/rows$d.err"; fail "file kernel D=$d"; }
  [[ $(field rows$d 'd["bucket"]') == "D=$d,N=4096" ]] || fail "file kernel D=$d: bucket"
  [[ $(field rows$d 'd["measured"]') == 2 ]] || fail "file kernel D=$d: rows of D=16 answered"
done
[[ $(field rows16 'd["variant"]') == aligned ]] || fail "file kernel D=16: variant"
[[ $(field rows3 'd["variant"]') == generic ]] || fail "file kernel D=3: the worker ignored --set"
# The same problem written as the API writes it (the const in the shape): the same bucket, so
# its rows are found (nothing measured), and the worker binds D from the shape (generic again).
TILEC_WORKER_FAKE=$tmp/rows.tsv run rowsshape "$krows" --shape N=4096,D=3 --jobs 1 --timeout 2 \
  --reps 5 --retime 0 --strategy exhaustive --db "$tmp/rows.db"
[[ $(cat "$tmp/rowsshape.rc") == 0 ]] || { cat "$tmp/rowsshape.err"; fail "file kernel --shape D=3"; }
[[ $(field rowsshape 'd["bucket"]') == "D=3,N=4096" ]] || fail "file kernel --shape D=3: bucket"
[[ $(field rowsshape 'd["measured"]') == 0 ]] || fail "file kernel --shape D=3: not the --set rows"
[[ $(field rowsshape 'd["variant"]') == generic ]] || fail "file kernel --shape D=3: the worker's D"
# tilec export binds D from each bucket: both entries' cubins are their own problems' code (the
# export refuses a cubin whose compile key is not its binding's).
"$tilec" export --db "$tmp/rows.db" --device "fake|sm_90a|132sm|141GiB" --kernel-file rows="$krows" \
  -o "$tmp/rows_tuned.c" >"$tmp/rows_export.out" 2>&1 || { cat "$tmp/rows_export.out"; fail "export of D=16 and D=3"; }
grep -q "2 entries" "$tmp/rows_export.out" || { cat "$tmp/rows_export.out"; fail "export entries"; }

# A file kernel's --dtype binds its first type variable, as the API's dtype does: the bucket is
# the API's (dtype=f16), the worker builds f16 data (N=4100 f16 breaks the aligned promise,
# f32 keeps it), `db best --dtype` finds it, and export binds it from the bucket.
ktyped=$(dirname "$0")/typed_scale.tile
printf 'BLOCK=128\tok 1.0\nBLOCK=256\tok 2.0\n' >"$tmp/typed.tsv"
for dt in f32 f16; do
  TILEC_WORKER_FAKE=$tmp/typed.tsv run typed$dt "$ktyped" --shape N=4100 --dtype $dt --jobs 1 \
    --timeout 2 --reps 5 --retime 0 --strategy exhaustive --db "$tmp/typed.db"
  [[ $(cat "$tmp/typed$dt.rc") == 0 ]] || { cat "$tmp/typed$dt.err"; fail "file kernel --dtype $dt"; }
  [[ $(field typed$dt 'd["bucket"]') == "N=4100,dtype=$dt" ]] || fail "file kernel $dt: bucket"
done
[[ $(field typedf32 'd["variant"]') == aligned ]] || fail "file kernel f32: variant"
[[ $(field typedf16 'd["variant"]') == generic ]] || fail "file kernel f16: the worker's dtype"
"$tilec" db best "$ktyped" --shape N=4100 --dtype f16 --db "$tmp/typed.db" | grep -q "^best  *BLOCK=128" ||
  fail "db best of a file kernel's dtype"
"$tilec" export --db "$tmp/typed.db" --device "fake|sm_90a|132sm|141GiB" --kernel-file scale="$ktyped" \
  -o "$tmp/typed_tuned.c" >"$tmp/typed_export.out" 2>&1 || { cat "$tmp/typed_export.out"; fail "export of f32 and f16"; }

# The model strategy with a budget finds the fastest here too (it is also the model's kind of
# config); the budget is honoured.
run model "${common[@]}" --strategy model --budget 8 --db "$tmp/model.db"
[[ $(field model 'd["considered"]') -le 8 ]] || fail "budget"

# Progress lines (not a terminal): one per candidate, with the running best.
grep -q '^\[1/' "$tmp/full.err" || { cat "$tmp/full.err"; fail "progress lines"; }
# --log-jsonl: one line per candidate.
"$tilec" tune "${common[@]}" --strategy random --budget 3 --db "$tmp/log.db" \
  --log-jsonl "$tmp/log.jsonl" >/dev/null 2>&1 || fail "log run"
[[ $(grep -c '"config"' "$tmp/log.jsonl") -ge 3 ]] || fail "log lines"

# Compile-only: no worker, every live config compiled for the arch, resources recorded.
unset TILEC_WORKER_FAKE
run co "${common[@]}" --compile-only --arch sm_80 --db "$tmp/co.db"
[[ $(cat "$tmp/co.rc") == 0 ]] || { cat "$tmp/co.err"; fail "compile-only exit code"; }
[[ $(field co 'd["counts"]["compiled"]') -ge 10 ]] || { cat "$tmp/co.json"; fail "compiled"; }
[[ $(field co 'd["device"]') == "compile-only|sm_80" ]] || fail "compile-only device key"
field co 'd["top"][0]["regs"]' | grep -qE '^[0-9]+$' || fail "no registers recorded"

# No GPU: exit 2 and one line naming what is missing.
rc=0
TILEC_LIBCUDA=/nonexistent/libcuda.so.1 "$tilec" tune "${common[@]}" --db "$tmp/nogpu.db" \
  >"$tmp/nogpu.out" 2>"$tmp/nogpu.err" || rc=$?
[[ $rc == 2 ]] || { cat "$tmp/nogpu.err"; fail "no GPU: exit $rc"; }
grep -q "no CUDA driver" "$tmp/nogpu.err" || { cat "$tmp/nogpu.err"; fail "no GPU message"; }
# Bad input: exit 1.
rc=0
"$tilec" tune matmul --shape M=8 --strategy fastest >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "bad strategy: exit $rc"
echo "tune_check: ok"
