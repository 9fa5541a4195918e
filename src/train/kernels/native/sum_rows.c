/* out[j] = sum over i < rows of x[i * width + j]: a bias gradient, the sum of [rows, width] over
   its rows. Four rows at a time, four columns per vector. */
#include "native.h"

EXPORT("sum_rows") void sum_rows(const float *x, int rows, int width, float *out) {
  int vector_width = width & ~3;
  for (int j = 0; j < width; j++) out[j] = 0.0f;
  int i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float *a = x + i * width, *b = a + width, *c = b + width, *d = c + width;
    for (int j = 0; j < vector_width; j += 4) {
      v128_t sum = wasm_f32x4_add(wasm_f32x4_add(wasm_v128_load(a + j), wasm_v128_load(b + j)),
                                  wasm_f32x4_add(wasm_v128_load(c + j), wasm_v128_load(d + j)));
      wasm_v128_store(out + j, wasm_f32x4_add(wasm_v128_load(out + j), sum));
    }
    for (int j = vector_width; j < width; j++) out[j] += (a[j] + b[j]) + (c[j] + d[j]);
  }
  for (; i < rows; i++) {
    const float *row = x + i * width;
    for (int j = 0; j < width; j++) out[j] += row[j];
  }
}
