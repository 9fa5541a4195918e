#!/usr/bin/env bash
# Compiles every .c file here into one wasm module that imports the tfjs wasm backend's memory:
# kernels.wasm (SIMD) and kernels-relaxed.wasm (relaxed SIMD: fused multiply-add), with Debian's
# clang-19 and lld-19 (apt-get install clang-19 lld-19), and records the sources' hash in
# sources.sha256. The .wasm files are committed so that users need no compiler;
# test/train/native-kernels.test.ts checks the hash and, where clang-19 is installed, that a
# rebuild gives the same bytes.
#   bash src/train/kernels/native/build.sh [OUT_DIR]
set -euo pipefail
export LC_ALL=C  # the order of *.c, which the hash depends on
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
sources=("$here"/*.c)
build() {
  local target="$1"
  shift
  clang-19 --target=wasm32 -O3 -msimd128 "$@" -nostdlib -fno-builtin -fuse-ld=lld \
    -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -o "$out/$target.tmp" "${sources[@]}"
  # The memory is tfjs's: a data section or a use of the stack pointer would write over its heap.
  if llvm-objdump-19 -h "$out/$target.tmp" | grep -q ' DATA ' || llvm-objdump-19 -d "$out/$target.tmp" | grep -q 'global\.[gs]et'; then
    rm -f "$out/$target.tmp"
    echo "build.sh: $target would use static data or the stack in tfjs's memory; keep every value in locals" >&2
    exit 1
  fi
  mv "$out/$target.tmp" "$out/$target"
}
build kernels.wasm
build kernels-relaxed.wasm -DRELAXED -mrelaxed-simd
cat "$here"/native.h "${sources[@]}" | sha256sum | cut -d' ' -f1 > "$out/sources.sha256"
