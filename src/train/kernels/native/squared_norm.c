/* The sum of the squares of n floats, accumulated in float64 (a gradient-clipping norm over a
   whole model's gradients sums a million terms). */
#include "native.h"

EXPORT("sum_of_squares") double sum_of_squares(const float *x, int n) {
  v128_t low = wasm_f64x2_splat(0.0), high = low;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t squares = wasm_f32x4_mul(v, v);
    low = wasm_f64x2_add(low, wasm_f64x2_promote_low_f32x4(squares));
    high = wasm_f64x2_add(high, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(squares, squares, 2, 3, 0, 1)));
  }
  v128_t both = wasm_f64x2_add(low, high);
  double sum = wasm_f64x2_extract_lane(both, 0) + wasm_f64x2_extract_lane(both, 1);
  for (; i < n; i++) sum += (double)x[i] * x[i];
  return sum;
}
