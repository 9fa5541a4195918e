#!/usr/bin/env bash
# Rebuilds gemm.wasm and gemm-relaxed.wasm from gemm.c with Debian's clang-19 and lld-19
# (apt-get install clang-19 lld-19), and records the source's hash in gemm.source.sha256.
# The .wasm files are committed so that users need no compiler; test/train/gemm.test.ts checks
# the hash against gemm.c and, where clang-19 is installed, that a rebuild computes the same.
#   bash src/train/kernels/gemm/build.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
build() {
  local target="$1"
  shift
  clang-19 --target=wasm32 -O3 -msimd128 "$@" -nostdlib -fuse-ld=lld \
    -Wl,--no-entry -Wl,--import-memory -Wl,--export=gemm -Wl,--export=gemm_scratch_floats \
    -Wl,--strip-all -o "$out/$target.tmp" "$here/gemm.c"
  mv "$out/$target.tmp" "$out/$target"
}
build gemm.wasm
build gemm-relaxed.wasm -DRELAXED -mrelaxed-simd
sha256sum < "$here/gemm.c" | cut -d' ' -f1 > "$out/gemm.source.sha256"
