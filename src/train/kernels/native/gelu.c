/*
 * GELU with the exact erf, y = x Phi(x), and its slope Phi(x) + x phi(x), four values at a time.
 * Phi comes from Abramowitz and Stegun 7.1.26 (|error in erf| <= 1.5e-7) and phi from the same
 * exp(-x^2 / 2), so one exp serves both; for x < 0 Phi is computed directly as the small tail
 * (no 1 - (1 - q) cancellation).
 */
#include "native.h"

#define SPLAT wasm_f32x4_splat

/* exp(x) for x in [-87, 0] (Cephes' expf: x = n ln 2 + r, a degree-6 polynomial in r, times 2^n).
   n is rounded by adding 1.5 * 2^23, which leaves it in the low bits of the float's pattern:
   cheaper in V8 than wasm's nearest and a saturating float-to-int conversion. */
static inline v128_t exp_nonpositive(v128_t x) {
  x = wasm_f32x4_pmax(SPLAT(-87.0f), x); /* pmax: one x86 instruction; max orders NaNs */
  v128_t shifted = wasm_f32x4_add(wasm_f32x4_mul(x, SPLAT(1.44269504088896341f)), SPLAT(12582912.0f));
  v128_t n = wasm_f32x4_sub(shifted, SPLAT(12582912.0f));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, SPLAT(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, SPLAT(-2.12194440e-4f)));
  v128_t p = SPLAT(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(5.0000001201e-1f));
  v128_t y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), SPLAT(1.0f));
  /* The pattern of `shifted` is 0x4B400000 + n; shifting left by 23 drops the constant. */
  v128_t power = wasm_i32x4_shl(wasm_i32x4_add(shifted, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, power);
}

static inline void gelu4(v128_t x, v128_t *y, v128_t *slope) {
  v128_t e = exp_nonpositive(wasm_f32x4_mul(wasm_f32x4_mul(x, x), SPLAT(-0.5f)));
  v128_t z = wasm_f32x4_mul(wasm_f32x4_abs(x), SPLAT(0.70710678118654752f));
  v128_t t = wasm_f32x4_div(SPLAT(1.0f), wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(z, SPLAT(0.3275911f))));
  v128_t poly = SPLAT(1.061405429f);
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(-1.453152027f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(1.421413741f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(-0.284496736f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(0.254829592f));
  v128_t tail = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_mul(poly, t), e), SPLAT(0.5f)); /* Phi(-|x|) */
  v128_t negative = wasm_f32x4_lt(x, SPLAT(0.0f));
  v128_t cdf = wasm_v128_bitselect(tail, wasm_f32x4_sub(SPLAT(1.0f), tail), negative);
  v128_t pdf = wasm_f32x4_mul(e, SPLAT(0.39894228040143268f));
  /* Past |x| = 8 Phi is 0 or 1 in float32 and phi 0: exact values there keep infinities finite-free. */
  v128_t far = wasm_f32x4_ge(wasm_f32x4_abs(x), SPLAT(8.0f));
  v128_t positive = wasm_f32x4_gt(x, SPLAT(0.0f));
  *y = wasm_v128_bitselect(wasm_v128_and(x, positive), wasm_f32x4_mul(x, cdf), far);
  *slope = wasm_v128_bitselect(wasm_v128_and(SPLAT(1.0f), positive), wasm_f32x4_add(cdf, wasm_f32x4_mul(x, pdf)), far);
}

/* y = gelu(x), slope = gelu'(x) for n values. */
EXPORT("gelu_with_slope") void gelu_with_slope(const float *x, float *y, float *slope, int n) {
  int i = 0;
  v128_t out, grad;
  for (; i + 4 <= n; i += 4) {
    gelu4(wasm_v128_load(x + i), &out, &grad);
    wasm_v128_store(y + i, out);
    wasm_v128_store(slope + i, grad);
  }
  if (i < n) {
    gelu4(load_lanes(x + i, n - i), &out, &grad);
    store_lanes_to(y + i, out, n - i);
    store_lanes_to(slope + i, grad, n - i);
  }
}
