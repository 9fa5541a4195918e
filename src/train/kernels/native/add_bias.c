/* c[i][j] += bias[j] for a [rows, n] matrix: a dense layer's bias after its matrix product. A
   bias of one number (broadcast over every column) passes bias_step 0. */
#include "native.h"

EXPORT("add_bias") void add_bias(float *c, int rows, int n, const float *bias, int bias_step) {
  int vector_width = n & ~3;
  for (int i = 0; i < rows; i++) {
    float *row = c + i * n;
    if (bias_step == 0) {
      v128_t value = wasm_v128_load32_splat(bias);
      for (int j = 0; j < vector_width; j += 4) wasm_v128_store(row + j, wasm_f32x4_add(wasm_v128_load(row + j), value));
    } else {
      for (int j = 0; j < vector_width; j += 4) wasm_v128_store(row + j, wasm_f32x4_add(wasm_v128_load(row + j), wasm_v128_load(bias + j)));
    }
    for (int j = vector_width; j < n; j++) row[j] += bias[j * bias_step];
  }
}
