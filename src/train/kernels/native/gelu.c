/*
 * GELU with the exact erf, y = x Phi(x), and its slope Phi(x) + x phi(x), four values at a time.
 * Phi comes from Abramowitz and Stegun 7.1.26 (|error in erf| <= 1.5e-7) and phi from the same
 * exp(-x^2 / 2), so one exp serves both; for x < 0 Phi is computed directly as the small tail
 * (no 1 - (1 - q) cancellation).
 */
#include "native.h"

#define SPLAT wasm_f32x4_splat

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

/*
 * GELU with the tanh approximation (T5 v1.1's gated-GELU, PyTorch's approximate='tanh'):
 * y = x (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3), and its slope
 * (1 + t) / 2 + x (1 - t^2) sqrt(2 / pi) (1 + 3 * 0.044715 x^2) / 2. tanh(u) is
 * sign(u) (1 - e) / (1 + e) with e = exp(-2 |u|) <= 1, so nothing overflows.
 */
static inline void gelu_tanh4(v128_t x, v128_t *y, v128_t *slope) {
  v128_t x2 = wasm_f32x4_mul(x, x);
  v128_t u = wasm_f32x4_mul(wasm_f32x4_mul(x, wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(x2, SPLAT(0.044715f)))), SPLAT(0.79788456080286536f));
  v128_t e = exp_nonpositive(wasm_f32x4_mul(wasm_f32x4_abs(u), SPLAT(-2.0f)));
  v128_t magnitude = wasm_f32x4_div(wasm_f32x4_sub(SPLAT(1.0f), e), wasm_f32x4_add(SPLAT(1.0f), e));
  v128_t t = wasm_v128_or(magnitude, wasm_v128_and(u, SPLAT(-0.0f))); /* the sign of u */
  v128_t half = wasm_f32x4_mul(wasm_f32x4_add(SPLAT(1.0f), t), SPLAT(0.5f));
  *y = wasm_f32x4_mul(x, half);
  v128_t du = wasm_f32x4_mul(wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(x2, SPLAT(3.0f * 0.044715f))), SPLAT(0.79788456080286536f));
  v128_t sech2 = wasm_f32x4_sub(SPLAT(1.0f), wasm_f32x4_mul(t, t));
  *slope = wasm_f32x4_add(half, wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_mul(x, SPLAT(0.5f)), sech2), du));
}

/* y = gelu_tanh(x), slope = gelu_tanh'(x) for n values. */
EXPORT("gelu_tanh_with_slope") void gelu_tanh_with_slope(const float *x, float *y, float *slope, int n) {
  int i = 0;
  v128_t out, grad;
  for (; i + 4 <= n; i += 4) {
    gelu_tanh4(wasm_v128_load(x + i), &out, &grad);
    wasm_v128_store(y + i, out);
    wasm_v128_store(slope + i, grad);
  }
  if (i < n) {
    gelu_tanh4(load_lanes(x + i, n - i), &out, &grad);
    store_lanes_to(y + i, out, n - i);
    store_lanes_to(slope + i, grad, n - i);
  }
}
