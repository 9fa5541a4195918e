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

/*
 * T5's attention, self or cross, from projections that hold each head's columns in place:
 *   S = Q K^T + bias[h] + mask[b] (no scale; bias [H, Tq, Tk] and mask [B, Tk] each optional),
 *   causal: keys j > i left out; P = softmax(S) (saved); Y = P V into y [B, Tq, H * hd].
 * q, k and v point at their first column; q_row and kv_row are their tensors' row widths (the same
 * qkv tensor for self-attention, q and a kv tensor for cross-attention). Scores more than 87
 * below the row's largest give weight 0, as a masked key does in float32 softmax.
 */
static void softmax_general(float *row, const float *bias, const float *mask, int live, int keys) {
  if (bias) for (int j = 0; j < live; j++) row[j] += bias[j];
  if (mask) for (int j = 0; j < live; j++) row[j] += mask[j];
  float largest = row[0];
  for (int j = 1; j < live; j++) largest = row[j] > largest ? row[j] : largest;
  v128_t shift = wasm_f32x4_splat(largest), sums = wasm_f32x4_splat(0.0f), floor = wasm_f32x4_splat(-87.0f);
  int j = 0;
  for (; j + 4 <= live; j += 4) {
    v128_t x = wasm_f32x4_sub(wasm_v128_load(row + j), shift);
    v128_t e = wasm_v128_andnot(exp_nonpositive(x), wasm_f32x4_lt(x, floor));
    wasm_v128_store(row + j, e);
    sums = wasm_f32x4_add(sums, e);
  }
  float sum = (wasm_f32x4_extract_lane(sums, 0) + wasm_f32x4_extract_lane(sums, 1)) + (wasm_f32x4_extract_lane(sums, 2) + wasm_f32x4_extract_lane(sums, 3));
  if (j < live) {
    v128_t x = wasm_f32x4_sub(load_lanes(row + j, live - j), shift);
    v128_t e = wasm_v128_andnot(exp_nonpositive(x), wasm_f32x4_lt(x, floor));
    store_lanes_to(row + j, e, live - j);
    for (int t = j; t < live; t++) sum += row[t];
  }
  float inverse = 1.0f / sum;
  for (j = 0; j < live; j++) row[j] *= inverse;
  for (; j < keys; j++) row[j] = 0.0f;
}

EXPORT("biased_attention_scratch_floats") int biased_attention_scratch_floats(int queries, int keys, int head_dim) {
  int widest = max_int(max_int(queries, keys), head_dim);
  return queries * keys + gemm_scratch_floats(widest, widest);
}

EXPORT("biased_attention_forward") void biased_attention_forward(const float *q, int q_row, const float *k, const float *v, int kv_row,
    const float *bias, const float *mask, float *y, float *probs, int batch, int queries, int keys, int heads, int head_dim, int causal,
    float *scratch) {
  int d = heads * head_dim;
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      const float *qh = q + b * queries * q_row + h * head_dim, *kh = k + b * keys * kv_row + h * head_dim, *vh = v + b * keys * kv_row + h * head_dim;
      float *p = probs + (b * heads + h) * queries * keys;
      gemm(qh, q_row, 1, 0, kh, 1, kv_row, 0, p, keys, 0, 1, queries, keys, head_dim, scratch); /* Q K^T */
      for (int i = 0; i < queries; i++) {
        int live = causal ? (i + 1 < keys ? i + 1 : keys) : keys;
        softmax_general(p + i * keys, bias ? bias + (h * queries + i) * keys : 0, mask ? mask + b * keys : 0, live, keys);
      }
      gemm(p, keys, 1, 0, vh, kv_row, 1, 0, y + b * queries * d + h * head_dim, d, 0, 1, queries, head_dim, keys, scratch); /* P V */
    }
  }
}

/*
 * dV = P^T dY; dP = dY V^T; dS = P (dP - rowsum(P dP)); dQ = dS K; dK = dS^T Q; dbias[h] = sum over
 * the batch of dS (when dbias is given). dq, dk and dv point at their first column of tensors
 * with q_row / kv_row floats a row (for self-attention one dqkv tensor: every column written).
 */
EXPORT("biased_attention_backward") void biased_attention_backward(const float *q, int q_row, const float *k, const float *v, int kv_row,
    const float *probs, const float *dy, float *dq, float *dk, float *dv, float *dbias, int batch, int queries, int keys, int heads,
    int head_dim, float *scratch) {
  int d = heads * head_dim;
  float *ds = scratch, *packing = scratch + queries * keys;
  if (dbias) for (int i = 0; i < heads * queries * keys; i++) dbias[i] = 0.0f;
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      int qc = b * queries * q_row + h * head_dim, kc = b * keys * kv_row + h * head_dim;
      const float *qh = q + qc, *kh = k + kc, *vh = v + kc;
      const float *p = probs + (b * heads + h) * queries * keys, *g = dy + b * queries * d + h * head_dim;
      gemm(p, 1, keys, 0, g, d, 1, 0, dv + kc, kv_row, 0, 1, keys, head_dim, queries, packing);   /* dV = P^T dY */
      gemm(g, d, 1, 0, vh, 1, kv_row, 0, ds, keys, 0, 1, queries, keys, head_dim, packing);       /* dP = dY V^T */
      for (int i = 0; i < queries; i++) {
        const float *pi = p + i * keys;
        float *di = ds + i * keys;
        float dot = 0.0f;
        for (int j = 0; j < keys; j++) dot += pi[j] * di[j];
        for (int j = 0; j < keys; j++) di[j] = pi[j] * (di[j] - dot);
        if (dbias) {
          float *bi = dbias + (h * queries + i) * keys;
          for (int j = 0; j < keys; j++) bi[j] += di[j];
        }
      }
      gemm(ds, keys, 1, 0, kh, kv_row, 1, 0, dq + qc, q_row, 0, 1, queries, head_dim, keys, packing); /* dQ = dS K */
      gemm(ds, 1, keys, 0, qh, q_row, 1, 0, dk + kc, kv_row, 0, 1, keys, head_dim, queries, packing); /* dK = dS^T Q */
    }
  }
}
