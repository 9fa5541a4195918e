/*
 * One AdamW update of a parameter in one pass (see adamw.ts for the formula), two values at a
 * time in float64 like the JavaScript it replaces, stored as float32.
 */
#include "native.h"

#define SPLAT wasm_f64x2_splat

static inline v128_t load2(const float *p) { return wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(p)); }
static inline void store2(float *p, v128_t v) { wasm_v128_store64_lane(p, wasm_f32x4_demote_f64x2_zero(v), 0); }

EXPORT("adamw_step") void adamw_step(const float *p, const float *g, const float *m, const float *v, double scale,
                                     float *next_p, float *next_m, float *next_v, int n, double beta1, double beta2,
                                     double epsilon, double step_size, double second_correction, double decay_factor) {
  v128_t b1 = SPLAT(beta1), b2 = SPLAT(beta2), c1 = SPLAT(1.0 - beta1), c2 = SPLAT(1.0 - beta2);
  v128_t scales = SPLAT(scale), eps = SPLAT(epsilon), steps = SPLAT(step_size), correction = SPLAT(second_correction), decay = SPLAT(decay_factor);
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    v128_t gradient = wasm_f64x2_mul(load2(g + i), scales);
    v128_t first = wasm_f64x2_add(wasm_f64x2_mul(b1, load2(m + i)), wasm_f64x2_mul(c1, gradient));
    v128_t second = wasm_f64x2_add(wasm_f64x2_mul(b2, load2(v + i)), wasm_f64x2_mul(wasm_f64x2_mul(c2, gradient), gradient));
    store2(next_m + i, first);
    store2(next_v + i, second);
    v128_t denominator = wasm_f64x2_add(wasm_f64x2_div(wasm_f64x2_sqrt(second), correction), eps);
    store2(next_p + i, wasm_f64x2_sub(wasm_f64x2_mul(load2(p + i), decay), wasm_f64x2_div(wasm_f64x2_mul(steps, first), denominator)));
  }
  for (; i < n; i++) {
    double gradient = g[i] * scale;
    double first = beta1 * m[i] + (1.0 - beta1) * gradient;
    double second = beta2 * v[i] + (1.0 - beta2) * gradient * gradient;
    next_m[i] = (float)first;
    next_v[i] = (float)second;
    next_p[i] = (float)(p[i] * decay_factor - (step_size * first) / (__builtin_sqrt(second) / second_correction + epsilon));
  }
}
