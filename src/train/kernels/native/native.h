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
