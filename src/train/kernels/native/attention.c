/*
 * Causal multi-head self-attention straight from the qkv projection [B, T, 3d] (q, k, v side by
 * side, head h in columns h * hd of each), forward and backward, with no reshapes, transposes,
 * masks or splits: each head's products read and write their columns through strides.
 *   forward:  P = softmax(scale Q K^T, masked to j <= i) (saved), Y = P V into y [B, T, d]
 *   backward: dV = P^T dY;  dP = dY V^T;  dS = P (dP - rowsum(P dP)) scale;  dQ = dS K;  dK = dS^T Q
 */
#include "native.h"

static inline int max_int(int a, int b) { return a > b ? a : b; }

/* Scratch floats for a call of either direction: one [T, T] matrix and gemm's packing. */
EXPORT("attention_scratch_floats") int attention_scratch_floats(int steps, int head_dim) {
  int widest = max_int(steps, head_dim);
  return steps * steps + gemm_scratch_floats(widest, widest);
}

/* Row i of scores (i + 1 live values, the rest masked): p = softmax(scale * s), zeros past i. */
static void softmax_row(float *row, int live, int steps, float scale) {
  float largest = row[0];
  for (int j = 1; j < live; j++) largest = row[j] > largest ? row[j] : largest;
  v128_t scales = wasm_f32x4_splat(scale), shift = wasm_f32x4_splat(scale * largest), sums = wasm_f32x4_splat(0.0f);
  int j = 0;
  for (; j + 4 <= live; j += 4) {
    v128_t e = exp_nonpositive(wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(row + j), scales), shift));
    wasm_v128_store(row + j, e);
    sums = wasm_f32x4_add(sums, e);
  }
  float sum = (wasm_f32x4_extract_lane(sums, 0) + wasm_f32x4_extract_lane(sums, 1)) + (wasm_f32x4_extract_lane(sums, 2) + wasm_f32x4_extract_lane(sums, 3));
  if (j < live) {
    v128_t e = exp_nonpositive(wasm_f32x4_sub(wasm_f32x4_mul(load_lanes(row + j, live - j), scales), shift));
    /* lanes past `live` hold exp(-scale * largest) of the zero padding: leave them out. */
    store_lanes_to(row + j, e, live - j);
    for (int t = j; t < live; t++) sum += row[t];
  }
  float inverse = 1.0f / sum;
  for (j = 0; j < live; j++) row[j] *= inverse;
  for (; j < steps; j++) row[j] = 0.0f;
}

EXPORT("attention_forward") void attention_forward(const float *qkv, float *y, float *probs, int batch, int steps, int heads,
                                                   int head_dim, float scale, float *scratch) {
  int d = heads * head_dim, row = 3 * d;
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      const float *q = qkv + b * steps * row + h * head_dim, *k = q + d, *v = q + 2 * d;
      float *p = probs + (b * heads + h) * steps * steps;
      gemm(q, row, 1, 0, k, 1, row, 0, p, steps, 0, 1, steps, steps, head_dim, scratch); /* Q K^T */
      for (int i = 0; i < steps; i++) softmax_row(p + i * steps, i + 1, steps, scale);
      gemm(p, steps, 1, 0, v, row, 1, 0, y + b * steps * d + h * head_dim, d, 0, 1, steps, head_dim, steps, scratch); /* P V */
    }
  }
}

EXPORT("attention_backward") void attention_backward(const float *qkv, const float *probs, const float *dy, float *dqkv, int batch,
                                                     int steps, int heads, int head_dim, float scale, float *scratch) {
  int d = heads * head_dim, row = 3 * d;
  float *ds = scratch, *packing = scratch + steps * steps;
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      int column = b * steps * row + h * head_dim;
      const float *q = qkv + column, *k = q + d, *v = q + 2 * d;
      const float *p = probs + (b * heads + h) * steps * steps, *g = dy + b * steps * d + h * head_dim;
      float *dq = dqkv + column, *dk = dq + d, *dv = dq + 2 * d;
      gemm(p, 1, steps, 0, g, d, 1, 0, dv, row, 0, 1, steps, head_dim, steps, packing);      /* dV = P^T dY */
      gemm(g, d, 1, 0, v, 1, row, 0, ds, steps, 0, 1, steps, steps, head_dim, packing);      /* dP = dY V^T */
      for (int i = 0; i < steps; i++) {
        const float *pi = p + i * steps;
        float *di = ds + i * steps;
        float dot = 0.0f;
        for (int j = 0; j <= i; j++) dot += pi[j] * di[j];
        for (int j = 0; j < steps; j++) di[j] = j <= i ? pi[j] * (di[j] - dot) * scale : 0.0f;
      }
      gemm(ds, steps, 1, 0, k, row, 1, 0, dq, row, 0, 1, steps, head_dim, steps, packing);   /* dQ = dS K */
      gemm(ds, 1, steps, 0, q, row, 1, 0, dk, row, 0, 1, steps, head_dim, steps, packing);   /* dK = dS^T Q */
    }
  }
}
