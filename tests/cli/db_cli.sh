#!/usr/bin/env bash
# tests/cli/db_cli.sh TILEC — `tilec db` end to end on a private directory: import an export
# file, list/show (text and JSON), export then import into a fresh file and export again (the
# same bytes), merge two shards (ok beats fault, newer beats older), prune, check, and the exit
# codes: 1 for bad input, 2 for an unusable database path.
set -euo pipefail
tilec=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset TILEC_DB
export XDG_CACHE_HOME=$tmp/cache
fail() { echo "FAILED: $*"; exit 1; }
expect_rc() { # expect_rc CODE CMD...: runs CMD, checks its exit code
  local want=$1 rc=0
  shift
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [[ $rc == "$want" ]] || { cat "$tmp/out" "$tmp/err"; fail "exit $rc, not $want: $*"; }
}

# No database yet: list says so and creates nothing.
expect_rc 0 "$tilec" db list
grep -q "no tuning database" "$tmp/err" || fail "list without a database"
[[ ! -e $tmp/cache/tilec/tilec.db ]] || fail "list created a database"

expect_rc 0 "$tilec" db import "$src/db_sample.json"
grep -q "4 rows, 4 taken" "$tmp/out" || fail "import counts"
[[ $(stat -c %a "$tmp/cache/tilec") == 700 ]] || fail "cache directory is not 0700"
expect_rc 0 "$tilec" db list
grep -q "matmul.*K=4096,M=pow2:4096,N=4096,TA=bf16.*3 rows (2 ok).*winner BM=64,BN=128,BK=32 0.4310 ms" \
  "$tmp/out" || fail "list line"
grep -q "K=64,M=pow2:64,N=64,TA=f16.*1 row (0 ok).*no winner" "$tmp/out" || fail "list no winner"
expect_rc 0 "$tilec" db show --bucket K=64,M=pow2:64,N=64,TA=f16
grep -q 'wrong .*BM=16,BN=16,BK=16.*it.s "wrong"; naïve ✓' "$tmp/out" || fail "show row"
grep -q "BM=128" "$tmp/out" && fail "show --bucket did not filter"
if command -v python3 >/dev/null; then
  expect_rc 0 "$tilec" db list --json
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["keys"]) == 2' "$tmp/out" \
    || fail "list --json"
  expect_rc 0 "$tilec" db show --json --kernel matmul
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["rows"]) == 4' "$tmp/out" \
    || fail "show --json"
fi

# Export, import into another file, export again: identical files.
expect_rc 0 "$tilec" db export -o "$tmp/x1"
expect_rc 0 "$tilec" db import --db "$tmp/two.db" "$tmp"/x1/*.json
expect_rc 0 "$tilec" db export --db "$tmp/two.db" -o "$tmp/x2"
diff -r "$tmp/x1" "$tmp/x2" || fail "export is not stable across import"
# Importing it again changes nothing (the stored rows are as new).
expect_rc 0 "$tilec" db import --db "$tmp/two.db" "$tmp"/x1/*.json
grep -q "4 rows, 0 taken" "$tmp/out" || fail "re-import took rows"

# Shards: the same key measured on two hosts, merged.
row() { # row CONFIG STATUS MEDIAN TIME
  printf '{"toolchain": "tc", "ir_hash": "h", "bucket": "M=64", "config": "%s", "status": "%s", "median_ms": %s, "p20_ms": null, "p80_ms": null, "min_ms": null, "reps": 10, "regs": -1, "spills": -1, "smem_bytes": -1, "sm_clock_mhz": -1, "mem_clock_mhz": -1, "problem": "M=64", "detail": "", "compile_key": "", "time_unix": %s}' "$@"
}
shard() { # shard FILE ROWS...
  local f=$1
  shift
  printf '{"format": "tilec-tuning-export", "version": 1, "kernel": "k", "device": "gpu", "rows": [' >"$f"
  local sep=""
  for r in "$@"; do printf '%s%s' "$sep" "$r" >>"$f"; sep=","; done
  printf ']}\n' >>"$f"
}
shard "$tmp/s0.json" "$(row A ok 2.0 100)" "$(row B fault null 100)" "$(row C ok 3.0 100)"
shard "$tmp/s1.json" "$(row A ok 1.5 50)" "$(row B ok 1.0 90)" "$(row D ok 0.5 100)"
expect_rc 0 "$tilec" db import --db "$tmp/shard0.db" "$tmp/s0.json"
expect_rc 0 "$tilec" db import --db "$tmp/shard1.db" "$tmp/s1.json"
expect_rc 0 "$tilec" db merge --db "$tmp/all.db" "$tmp/shard0.db" "$tmp/shard1.db"
grep -q "shard1.db: 3 rows, 2 taken" "$tmp/out" || fail "merge counts"
expect_rc 0 "$tilec" db show --db "$tmp/all.db" --json
python3 - "$tmp/out" <<'PY' || fail "merged rows"
import json, sys
rows = {r["config"]: r for r in json.load(open(sys.argv[1]))["rows"]}
assert rows["A"]["median_ms"] == 2.0, rows["A"]   # newer (100 > 50)
assert rows["B"]["status"] == "ok", rows["B"]     # ok beats fault
assert set(rows) == {"A", "B", "C", "D"}
PY
expect_rc 0 "$tilec" db list --db "$tmp/all.db" --kernel k
grep -q "winner D 0.5000 ms" "$tmp/out" || fail "merged winner"

# Prune rows older than a day by status, then everything older than 0 days; check.
expect_rc 0 "$tilec" db prune --db "$tmp/all.db" --status ok --older-than 1 --kernel k
grep -q "removed 4 rows" "$tmp/out" || fail "prune by status and age"
expect_rc 0 "$tilec" db check --db "$tmp/all.db"

# Bad input: exit 1.
expect_rc 1 "$tilec" db frobnicate
expect_rc 1 "$tilec" db export
expect_rc 1 "$tilec" db prune --status great
expect_rc 1 "$tilec" db list --bogus
printf '{"format": "tilec-tuning-export", "version": 1, "rows": [' >"$tmp/bad.json"
expect_rc 1 "$tilec" db import --db "$tmp/two.db" "$tmp/bad.json"
grep -q "bad.json: line 1" "$tmp/err" || fail "import message"
expect_rc 1 "$tilec" db merge --db "$tmp/two.db" "$tmp/missing.db"
# An unusable database path: exit 2.
head -c 4096 /dev/urandom >"$tmp/noise.db"
expect_rc 2 "$tilec" db list --db "$tmp/noise.db"
grep -q "not a SQLite database" "$tmp/err" || fail "noise message"
mkdir -m 0777 "$tmp/open" && chmod 0777 "$tmp/open"
TILEC_DB=$tmp/open/t.db expect_rc 2 "$tilec" db import "$src/db_sample.json"
grep -q "world-writable" "$tmp/err" || fail "world-writable message"
expect_rc 2 "$tilec" db check --db "$tmp/none.db"
echo "tilec db: all checks passed"
