/*
 * ferry's matrix product for the tfjs wasm backend. In kernels-relaxed.wasm it uses relaxed SIMD's
 * fused multiply-add; in kernels.wasm a multiply then an add.
 *
 * C = op(A) op(B) for a batch of matrices, where op(A)(i, k) = A[i * ars + k * acs] and
 * op(B)(k, j) = B[k * brs + j * bcs]: any transpose is a pair of strides, so gradients need no
 * transposed copies. B is packed in panels of 8 columns, 256 deep, blocks of A (4 rows) as they are
 * used, and a 4 x 8 register tile is accumulated per block. Why 4 x 8: V8 keeps its 8 accumulators, the two B
 * vectors and the broadcast A value in registers; 6 x 8 and unrolled variants spilled and ran
 * at half the speed.
 */
#include "native.h"

#ifdef RELAXED
#define MADD(a, b, c) wasm_f32x4_relaxed_madd(a, b, c)
#else
#define MADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
#endif

#define MR 4
#define NR 8
#define KC 256

/* Rows [i0, i0 + MR) of op(A), depths [k0, k0 + kc), as kc groups of MR values (zeros past m). */
static void pack_a(const float *a, int rs, int cs, int i0, int m, int k0, int kc, float *out) {
  if (rs == 1 && i0 + MR <= m) {
    for (int k = 0; k < kc; k++) wasm_v128_store(out + k * MR, wasm_v128_load(a + (k0 + k) * cs + i0));
    return;
  }
  for (int k = 0; k < kc; k++) {
    const float *column = a + (k0 + k) * cs + i0 * rs;
    for (int i = 0; i < MR; i++) out[k * MR + i] = i0 + i < m ? column[i * rs] : 0.0f;
  }
}

/* Depths [k0, k0 + kc) of op(B) as panels of NR columns, each kc groups of NR values (zeros past n). */
static void pack_b(const float *b, int rs, int cs, int n, int k0, int kc, float *out) {
  for (int j0 = 0; j0 < n; j0 += NR) {
    float *panel = out + (j0 / NR) * kc * NR;
    if (cs == 1 && j0 + NR <= n) {
      for (int k = 0; k < kc; k++) {
        const float *row = b + (k0 + k) * rs + j0;
        wasm_v128_store(panel + k * NR, wasm_v128_load(row));
        wasm_v128_store(panel + k * NR + 4, wasm_v128_load(row + 4));
      }
    } else {
      for (int k = 0; k < kc; k++) {
        const float *row = b + (k0 + k) * rs;
        for (int j = 0; j < NR; j++) panel[k * NR + j] = j0 + j < n ? row[(j0 + j) * cs] : 0.0f;
      }
    }
  }
}

/* The first `count` lanes of v into c (added to what is there when `accumulate`). */
static inline void store_lanes(float *c, v128_t v, int count, int accumulate) {
  if (count >= 4) {
    wasm_v128_store(c, accumulate ? wasm_f32x4_add(v, wasm_v128_load(c)) : v);
    return;
  }
  if (count > 0) c[0] = wasm_f32x4_extract_lane(v, 0) + (accumulate ? c[0] : 0.0f);
  if (count > 1) c[1] = wasm_f32x4_extract_lane(v, 1) + (accumulate ? c[1] : 0.0f);
  if (count > 2) c[2] = wasm_f32x4_extract_lane(v, 2) + (accumulate ? c[2] : 0.0f);
}

/* The rows x cols corner of one MR x NR tile: packed A block times packed B panel. */
static void tile(int kc, const float *pa, const float *pb, float *c, int ldc, int rows, int cols, int accumulate) {
  v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00;
  v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int k = 0; k < kc; k++) {
    v128_t b0 = wasm_v128_load(pb), b1 = wasm_v128_load(pb + 4);
    v128_t a = wasm_v128_load32_splat(pa);
    c00 = MADD(a, b0, c00); c01 = MADD(a, b1, c01);
    a = wasm_v128_load32_splat(pa + 1);
    c10 = MADD(a, b0, c10); c11 = MADD(a, b1, c11);
    a = wasm_v128_load32_splat(pa + 2);
    c20 = MADD(a, b0, c20); c21 = MADD(a, b1, c21);
    a = wasm_v128_load32_splat(pa + 3);
    c30 = MADD(a, b0, c30); c31 = MADD(a, b1, c31);
    pa += MR;
    pb += NR;
  }
  int low = cols < 4 ? cols : 4, high = cols - 4;
  store_lanes(c, c00, low, accumulate); store_lanes(c + 4, c01, high, accumulate);
  if (rows > 1) { store_lanes(c + ldc, c10, low, accumulate); store_lanes(c + ldc + 4, c11, high, accumulate); }
  if (rows > 2) { store_lanes(c + 2 * ldc, c20, low, accumulate); store_lanes(c + 2 * ldc + 4, c21, high, accumulate); }
  if (rows > 3) { store_lanes(c + 3 * ldc, c30, low, accumulate); store_lanes(c + 3 * ldc + 4, c31, high, accumulate); }
}

static inline int packed_width(int n) { return (n + NR - 1) / NR * NR; }

/* Floats that gemm_pack_b writes for op(B) of k x n. */
EXPORT("gemm_packed_b_floats") int gemm_packed_b_floats(int n, int k) {
  return k * packed_width(n);
}

/* Floats of scratch that gemm_packed needs (one packed block of A). */
EXPORT("gemm_packed_scratch_floats") int gemm_packed_scratch_floats(void) {
  return KC * MR;
}

/* op(B) [k, n] packed for gemm_packed: depth block k0 starts at packed + k0 * packed_width(n). A
   matrix multiplied many times (an LSTM's recurrent kernel, once per time step) is packed once. */
EXPORT("gemm_pack_b") void gemm_pack_b(const float *b, int brs, int bcs, int n, int k, float *packed) {
  for (int k0 = 0; k0 < k; k0 += KC) pack_b(b, brs, bcs, n, k0, k - k0 < KC ? k - k0 : KC, packed + k0 * packed_width(n));
}

/* C[m, n] (rows ldc apart) = op(A) [m, k] x B, B packed by gemm_pack_b; k > 0. */
EXPORT("gemm_packed") void gemm_packed(const float *a, int ars, int acs, const float *packed, float *c, int ldc,
                                       int m, int n, int k, float *scratch) {
  for (int k0 = 0; k0 < k; k0 += KC) {
    int kc = k - k0 < KC ? k - k0 : KC;
    const float *pb = packed + k0 * packed_width(n);
    for (int i0 = 0; i0 < m; i0 += MR) {
      pack_a(a, ars, acs, i0, m, k0, kc, scratch);
      int rows = m - i0 < MR ? m - i0 : MR;
      for (int j0 = 0; j0 < n; j0 += NR) {
        int cols = n - j0 < NR ? n - j0 : NR;
        tile(kc, scratch, pb + (j0 / NR) * kc * NR, c + i0 * ldc + j0, ldc, rows, cols, k0 > 0);
      }
    }
  }
}

/* Floats of scratch that gemm needs for op(B) of k x n. */
EXPORT("gemm_scratch_floats") int gemm_scratch_floats(int n, int k) {
  return KC * MR + gemm_packed_b_floats(n, k);
}

/* For each of `batch` matrices (A, B and C advancing by their batch strides; a stride of 0 shares
   one matrix, packed once): C[m, n] (rows ldc apart) = op(A) op(B), summed over k > 0. */
EXPORT("gemm") void gemm(const float *a, int ars, int acs, int a_step, const float *b, int brs, int bcs, int b_step,
                         float *c, int ldc, int c_step, int batch, int m, int n, int k, float *scratch) {
  float *packed = scratch + KC * MR;
  for (int index = 0; index < batch; index++) {
    if (index == 0 || b_step != 0) gemm_pack_b(b + index * b_step, brs, bcs, n, k, packed);
    gemm_packed(a + index * a_step, ars, acs, packed, c + index * c_step, ldc, m, n, k, scratch);
  }
}
