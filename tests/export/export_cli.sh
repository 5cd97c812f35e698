#!/usr/bin/env bash
# tests/export/export_cli.sh TILEC SRC — `tilec export` end to end without a GPU: `tilec tune`
# with the scripted worker (TILEC_WORKER_FAKE) stores real nvJitLink cubins for matmul at two
# buckets (decode M=16, M=256); `tilec export` writes tuned.c/tuned.h; they must compile with
# cc -std=c99 -Wall -Wextra -Werror -pedantic, select each bucket's database winner (and the
# nearest for unseen M), embed the stored cubins byte for byte, and export the same bytes twice;
# examples/export builds against them. Then the exit codes of bad uses. Exit 77 without
# nvJitLink, the test hooks, cc or cuda.h.
set -euo pipefail
tilec=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset TILEC_DB TILEC_WORKER_EXE
export XDG_CACHE_HOME=$tmp/cache
fail() {
  echo "FAILED: $*"
  exit 1
}
cuda=${CUDA_HOME:-/usr/local/cuda}
[[ -f $cuda/include/cuda.h ]] || { echo "SKIPPED: no cuda.h"; exit 77; }
command -v cc >/dev/null || { echo "SKIPPED: no cc"; exit 77; }
"$tilec" info 2>/dev/null | grep -q '^nvjitlink: [0-9]' || { echo "SKIPPED: no nvJitLink"; exit 77; }

script=$tmp/script.tsv
for bm in 16 32 64 128 256; do
  for bn in 16 32 64 128 256; do
    ms=$(((bm * 7 + bn * 3) % 11 + 1)).25
    [[ $bm$bn == 3216 ]] && ms=0.5 # the fastest
    # the searched tunables only (older tune) and the full config (newer tune)
    printf 'BM=%s,BN=%s\tok %s\n' $bm $bn $ms >>"$script"
    printf 'BM=%s,BN=%s,BK=32,WARPS=4,STAGES=2,GROUP_M=8\tok %s\n' $bm $bn $ms >>"$script"
  done
done
export TILEC_WORKER_FAKE=$script
pins=BK=32,STAGES=2,GROUP_M=8,WARPS=4
for m in 16 256; do
  "$tilec" tune matmul --shape M=$m,N=256,K=256 --set $pins --jobs 2 --timeout 2 --reps 3 \
    --budget 6 --db "$tmp/t.db" >"$tmp/tune$m.out" 2>"$tmp/tune$m.err" ||
    { grep -q "test hooks" "$tmp/tune$m.err" && { echo "SKIPPED: no TILEC_TEST_HOOKS"; exit 77; }
      cat "$tmp/tune$m.err"; fail "tune M=$m"; }
done
dev=$("$tilec" db list --db "$tmp/t.db" | awk '{print $3}' | head -1)
[[ -n $dev ]] || fail "no device key in the database"

"$tilec" export --db "$tmp/t.db" --device "$dev" --set $pins --prefix example -o "$tmp/tuned.c" \
  2>"$tmp/export.err" || { cat "$tmp/export.err"; fail "export"; }
grep -q "2 entries of 1 kernels" "$tmp/export.err" || { cat "$tmp/export.err"; fail "summary"; }
mkdir "$tmp/again"
"$tilec" export --db "$tmp/t.db" --device "$dev" --set $pins --prefix example \
  -o "$tmp/again/tuned.c" 2>/dev/null
cmp "$tmp/tuned.c" "$tmp/again/tuned.c" && cmp "$tmp/tuned.h" "$tmp/again/tuned.h" ||
  fail "two exports differ"

flags=(-std=c99 -Wall -Wextra -Werror -pedantic -I"$cuda/include")
cc "${flags[@]}" -c "$tmp/tuned.c" -o "$tmp/tuned.o" || fail "tuned.c does not compile"
cat >"$tmp/main.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "tuned.h"
int main(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) {
    tuned_example_matmul_problem p;
    int e;
    p.M = atoll(argv[i]), p.N = 256, p.K = 256;
    e = tuned_example_matmul_select(&p, 0);
    printf("%s %d %d %s\n", argv[i], tuned_example_matmul_select(&p, 1), e,
           e >= 0 ? tuned_example_entry(e)->config : "-");
  }
  if (tuned_example_entry(TUNED_EXAMPLE_ENTRIES) || !tuned_example_entry(0))
    return 1;
  return 0;
}
C
# select only: the driver calls are never reached, so a stub library is enough to link
cc "${flags[@]}" -I"$tmp" "$tmp/main.c" "$tmp/tuned.o" -o "$tmp/main" \
  -L"$cuda/lib64/stubs" -L"$cuda/lib64" -lcuda || fail "linking the select check"
winner() { "$tilec" db list --db "$tmp/t.db" | grep "M=pow2:$1," | sed 's/.*winner \([^ ]*\).*/\1/'; }
w16=$(winner 16)
w256=$(winner 256)
# rows store the searched tunables, or (newer tune) every tunable in declaration order
[[ $w16 == BM=32,BN=16 || $w16 == BM=32,BN=16,* ]] && [[ $w256 == "$w16" ]] ||
  fail "winners $w16 $w256 (script: BM=32,BN=16)"
mkdir "$tmp/lib" && ln -s "$cuda/lib64/stubs/libcuda.so" "$tmp/lib/libcuda.so.1"
LD_LIBRARY_PATH=$tmp/lib "$tmp/main" 16 9 256 129 64 32 2000 0 >"$tmp/sel.out" 2>&1 ||
  { cat "$tmp/sel.out"; fail "select program"; }
expected="16 0 0 $w16
9 0 0 $w16
256 1 1 $w256
129 1 1 $w256
64 -1 0 $w16
32 -1 0 $w16
2000 -1 1 $w256
0 -1 0 $w16"
[[ $(cat "$tmp/sel.out") == "$expected" ]] || { diff <(echo "$expected") "$tmp/sel.out"; fail "select"; }

# the embedded cubins are the stored ones: the first bytes of each array are an ELF image and
# the sizes in the info table add up to the summary
grep -q '^  0x7f, 0x45, 0x4c, 0x46,' "$tmp/tuned.c" || fail "no ELF image embedded"
total=$(grep -o 'bytes of cubins' "$tmp/export.err" >/dev/null && sed -n 's/.*, \([0-9]*\) bytes of cubins/\1/p' "$tmp/export.err")
sum=$(grep -oE '^static const unsigned char (cubin|generic)_[0-9]*_\[[0-9]*\]' "$tmp/tuned.c" | sed 's/.*\[\([0-9]*\)\]/\1/' | paste -sd+ | bc)
[[ $total == "$sum" ]] || fail "cubin sizes $sum vs $total"
# N = K = 256 in bf16 keeps the alignment promise: the sweeps measured the aligned variant, and
# each entry carries the generic code the tuner stored beside its winner
grep -q "2 entries are the aligned variant; 0 without generic code" "$tmp/export.err" ||
  { cat "$tmp/export.err"; fail "aligned entries"; }
[[ $(grep -c '^static const unsigned char generic_[0-9]*_' "$tmp/tuned.c") == 2 ]] ||
  fail "generic cubins embedded"

# the example engine builds against the export
make -s -C "$src/examples/export" TUNED="$tmp/tuned.c" OUT="$tmp/engine" CUDA="$cuda" ||
  fail "examples/export does not build"

# bad uses
code() { local rc=0; "$tilec" export "$@" >/dev/null 2>"$tmp/err" || rc=$?; echo $rc; }
[[ $(code --db "$tmp/t.db" -o "$tmp/x.c") == 1 ]] || fail "no --device"
[[ $(code --db "$tmp/t.db" --device nope -o "$tmp/x.c") == 1 ]] && grep -q "no tuned winner" "$tmp/err" ||
  fail "unknown device"
[[ $(code --db "$tmp/t.db" --device "$dev" -o "$tmp/x.txt") == 1 ]] || fail "-o without .c"
[[ $(code --db "$tmp/t.db" --device "$dev" --kernels bsmatmul -o "$tmp/x.c") == 1 ]] || fail "--kernels"
[[ $(code --db "$tmp/none/x.db" --device "$dev" -o "$tmp/x.c") == 2 ]] || fail "missing database"
printf 'kernel matmul\nargs (%%A: tensor<f32>[M])\ngrid (M)\n{\n}\n' >"$tmp/other.tile"
[[ $(code --db "$tmp/t.db" --device "$dev" --kernel-file "matmul=$tmp/other.tile" -o "$tmp/x.c") == 1 ]] &&
  grep -q "ir_hash" "$tmp/err" || fail "a kernel text of another hash"
[[ ! -e $tmp/x.c ]] || fail "a failed export left a file"
echo "ok"
