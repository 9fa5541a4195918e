/*
 * Shared by ferry's wasm kernels. build.sh compiles every .c file here into one module that
 * imports the tfjs wasm backend's memory, so every pointer is an address in the tfjs heap and
 * tensors are read and written where tfjs keeps them. That memory belongs to tfjs: the code keeps
 * every value in wasm locals and uses no stack and no static data (build.sh refuses a module that
 * does).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* The first `count` (< 4) floats at p in the low lanes, zeros above. */
static inline v128_t load_lanes(const float *p, int count) {
  return wasm_f32x4_make(p[0], count > 1 ? p[1] : 0.0f, count > 2 ? p[2] : 0.0f, 0.0f);
}

/* The low `count` (< 4) lanes of v to p. */
static inline void store_lanes_to(float *p, v128_t v, int count) {
  p[0] = wasm_f32x4_extract_lane(v, 0);
  if (count > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (count > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

/* exp(x) for x in [-87, 0] (Cephes' expf: x = n ln 2 + r, a degree-6 polynomial in r, times 2^n).
   n is rounded by adding 1.5 * 2^23, which leaves it in the low bits of the float's pattern:
   cheaper in V8 than wasm's nearest and a saturating float-to-int conversion. */
static inline v128_t exp_nonpositive(v128_t x) {
  x = wasm_f32x4_pmax(wasm_f32x4_splat(-87.0f), x); /* pmax: one x86 instruction; max orders NaNs */
  v128_t shifted = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)), wasm_f32x4_splat(12582912.0f));
  v128_t n = wasm_f32x4_sub(shifted, wasm_f32x4_splat(12582912.0f));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  v128_t y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), wasm_f32x4_splat(1.0f));
  /* The pattern of `shifted` is 0x4B400000 + n; shifting left by 23 drops the constant. */
  v128_t power = wasm_i32x4_shl(wasm_i32x4_add(shifted, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, power);
}

/* gemm.c's batched product, for kernels built on it (see gemm.c). */
void gemm(const float *a, int ars, int acs, int a_step, const float *b, int brs, int bcs, int b_step,
          float *c, int ldc, int c_step, int batch, int m, int n, int k, float *scratch);
int gemm_scratch_floats(int n, int k);
