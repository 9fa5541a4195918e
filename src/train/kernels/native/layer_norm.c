/*
 * LayerNormalization over the last axis and its gradient, one pass per row, four values at a
 * time (see layer-norm.ts for the formulas). The gradients of gamma and beta sum over every row,
 * in float64: a float32 running sum over 768 rows drifts by ~1e-6.
 */
#include "native.h"

static inline float sum_lanes(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

EXPORT("layer_norm") void layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *xhat, float *rstd,
                                     int rows, int width, float epsilon) {
  int vector_width = width & ~3;
  for (int r = 0; r < rows; r++) {
    const float *row = x + r * width;
    v128_t sums = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < vector_width; j += 4) sums = wasm_f32x4_add(sums, wasm_v128_load(row + j));
    float sum = sum_lanes(sums);
    for (int j = vector_width; j < width; j++) sum += row[j];
    float mean = sum / (float)width;
    v128_t means = wasm_f32x4_splat(mean);
    v128_t squares = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < vector_width; j += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(row + j), means);
      squares = wasm_f32x4_add(squares, wasm_f32x4_mul(d, d));
    }
    float square_sum = sum_lanes(squares);
    for (int j = vector_width; j < width; j++) square_sum += (row[j] - mean) * (row[j] - mean);
    float inverse = 1.0f / __builtin_sqrtf(square_sum / (float)width + epsilon);
    rstd[r] = inverse;
    v128_t inverses = wasm_f32x4_splat(inverse);
    float *normalized = xhat + r * width, *out = y + r * width;
    for (int j = 0; j < vector_width; j += 4) {
      v128_t h = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(row + j), means), inverses);
      wasm_v128_store(normalized + j, h);
      wasm_v128_store(out + j, wasm_f32x4_add(wasm_f32x4_mul(h, wasm_v128_load(gamma + j)), wasm_v128_load(beta + j)));
    }
    for (int j = vector_width; j < width; j++) {
      normalized[j] = (row[j] - mean) * inverse;
      out[j] = normalized[j] * gamma[j] + beta[j];
    }
  }
}

/* sums: scratch for 2 * width doubles (8-byte aligned). */
EXPORT("layer_norm_grad") void layer_norm_grad(const float *dy, const float *xhat, const float *rstd, const float *gamma,
                                               float *dx, float *dgamma, float *dbeta, int rows, int width, double *sums) {
  double *gamma_sums = sums, *beta_sums = sums + width;
  for (int j = 0; j < 2 * width; j++) sums[j] = 0.0;
  int vector_width = width & ~3;
  for (int r = 0; r < rows; r++) {
    const float *g = dy + r * width, *h = xhat + r * width;
    v128_t d_sums = wasm_f32x4_splat(0.0f), dh_sums = d_sums;
    for (int j = 0; j < vector_width; j += 4) {
      v128_t gv = wasm_v128_load(g + j), hv = wasm_v128_load(h + j);
      v128_t d = wasm_f32x4_mul(gv, wasm_v128_load(gamma + j));
      d_sums = wasm_f32x4_add(d_sums, d);
      dh_sums = wasm_f32x4_add(dh_sums, wasm_f32x4_mul(d, hv));
      v128_t gh = wasm_f32x4_mul(gv, hv);
      v128_t gh_high = wasm_i32x4_shuffle(gh, gh, 2, 3, 0, 1), g_high = wasm_i32x4_shuffle(gv, gv, 2, 3, 0, 1);
      wasm_v128_store(gamma_sums + j, wasm_f64x2_add(wasm_v128_load(gamma_sums + j), wasm_f64x2_promote_low_f32x4(gh)));
      wasm_v128_store(gamma_sums + j + 2, wasm_f64x2_add(wasm_v128_load(gamma_sums + j + 2), wasm_f64x2_promote_low_f32x4(gh_high)));
      wasm_v128_store(beta_sums + j, wasm_f64x2_add(wasm_v128_load(beta_sums + j), wasm_f64x2_promote_low_f32x4(gv)));
      wasm_v128_store(beta_sums + j + 2, wasm_f64x2_add(wasm_v128_load(beta_sums + j + 2), wasm_f64x2_promote_low_f32x4(g_high)));
    }
    float sum_d = sum_lanes(d_sums), sum_dh = sum_lanes(dh_sums);
    for (int j = vector_width; j < width; j++) {
      float d = g[j] * gamma[j];
      sum_d += d;
      sum_dh += d * h[j];
      gamma_sums[j] += (double)g[j] * h[j];
      beta_sums[j] += g[j];
    }
    float mean_d = sum_d / (float)width, mean_dh = sum_dh / (float)width, inverse = rstd[r];
    v128_t mean_ds = wasm_f32x4_splat(mean_d), mean_dhs = wasm_f32x4_splat(mean_dh), inverses = wasm_f32x4_splat(inverse);
    float *out = dx + r * width;
    for (int j = 0; j < vector_width; j += 4) {
      v128_t d = wasm_f32x4_mul(wasm_v128_load(g + j), wasm_v128_load(gamma + j));
      v128_t centred = wasm_f32x4_sub(wasm_f32x4_sub(d, mean_ds), wasm_f32x4_mul(wasm_v128_load(h + j), mean_dhs));
      wasm_v128_store(out + j, wasm_f32x4_mul(centred, inverses));
    }
    for (int j = vector_width; j < width; j++) out[j] = inverse * (g[j] * gamma[j] - mean_d - h[j] * mean_dh);
  }
  for (int j = 0; j < width; j++) {
    dgamma[j] = (float)gamma_sums[j];
    dbeta[j] = (float)beta_sums[j];
  }
}

/*
 * RMS normalization (T5's layer norm: no mean, no bias) and its gradient, the same way:
 * y = x rstd gamma with rstd = 1 / sqrt(mean(x^2) + epsilon); saved xhat = x rstd and rstd.
 */
EXPORT("rms_norm") void rms_norm(const float *x, const float *gamma, float *y, float *xhat, float *rstd, int rows, int width, float epsilon) {
  int vector_width = width & ~3;
  for (int r = 0; r < rows; r++) {
    const float *row = x + r * width;
    v128_t squares = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < vector_width; j += 4) {
      v128_t v = wasm_v128_load(row + j);
      squares = wasm_f32x4_add(squares, wasm_f32x4_mul(v, v));
    }
    float square_sum = sum_lanes(squares);
    for (int j = vector_width; j < width; j++) square_sum += row[j] * row[j];
    float inverse = 1.0f / __builtin_sqrtf(square_sum / (float)width + epsilon);
    rstd[r] = inverse;
    v128_t inverses = wasm_f32x4_splat(inverse);
    float *normalized = xhat + r * width, *out = y + r * width;
    for (int j = 0; j < vector_width; j += 4) {
      v128_t h = wasm_f32x4_mul(wasm_v128_load(row + j), inverses);
      wasm_v128_store(normalized + j, h);
      wasm_v128_store(out + j, wasm_f32x4_mul(h, wasm_v128_load(gamma + j)));
    }
    for (int j = vector_width; j < width; j++) {
      normalized[j] = row[j] * inverse;
      out[j] = normalized[j] * gamma[j];
    }
  }
}

/* dx = rstd (dy gamma - xhat mean(dy gamma xhat)); dgamma = sum over rows of dy xhat, in float64 (sums: width doubles). */
EXPORT("rms_norm_grad") void rms_norm_grad(const float *dy, const float *xhat, const float *rstd, const float *gamma,
                                           float *dx, float *dgamma, int rows, int width, double *sums) {
  for (int j = 0; j < width; j++) sums[j] = 0.0;
  int vector_width = width & ~3;
  for (int r = 0; r < rows; r++) {
    const float *g = dy + r * width, *h = xhat + r * width;
    v128_t dh_sums = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < vector_width; j += 4) {
      v128_t gv = wasm_v128_load(g + j), hv = wasm_v128_load(h + j);
      dh_sums = wasm_f32x4_add(dh_sums, wasm_f32x4_mul(wasm_f32x4_mul(gv, wasm_v128_load(gamma + j)), hv));
      v128_t gh = wasm_f32x4_mul(gv, hv);
      v128_t gh_high = wasm_i32x4_shuffle(gh, gh, 2, 3, 0, 1);
      wasm_v128_store(sums + j, wasm_f64x2_add(wasm_v128_load(sums + j), wasm_f64x2_promote_low_f32x4(gh)));
      wasm_v128_store(sums + j + 2, wasm_f64x2_add(wasm_v128_load(sums + j + 2), wasm_f64x2_promote_low_f32x4(gh_high)));
    }
    float sum_dh = sum_lanes(dh_sums);
    for (int j = vector_width; j < width; j++) {
      sum_dh += g[j] * gamma[j] * h[j];
      sums[j] += (double)g[j] * h[j];
    }
    float mean_dh = sum_dh / (float)width, inverse = rstd[r];
    v128_t mean_dhs = wasm_f32x4_splat(mean_dh), inverses = wasm_f32x4_splat(inverse);
    float *out = dx + r * width;
    for (int j = 0; j < vector_width; j += 4) {
      v128_t d = wasm_f32x4_mul(wasm_v128_load(g + j), wasm_v128_load(gamma + j));
      wasm_v128_store(out + j, wasm_f32x4_mul(wasm_f32x4_sub(d, wasm_f32x4_mul(wasm_v128_load(h + j), mean_dhs)), inverses));
    }
    for (int j = vector_width; j < width; j++) out[j] = inverse * (g[j] * gamma[j] - h[j] * mean_dh);
  }
  for (int j = 0; j < width; j++) dgamma[j] = (float)sums[j];
}
