/* Helpers shared by meshwire's native addons (each is its own .node; this is header-only). */
#ifndef MESHWIRE_NAPI_UTIL_H
#define MESHWIRE_NAPI_UTIL_H
#include <node_api.h>
#include <stdint.h>

/* The bytes of a Buffer argument; 0, or -1 when `v` is not a Buffer. */
static inline int get_buffer(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_buf;
  if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf) return -1;
  return napi_get_buffer_info(env, v, (void **)data, len) == napi_ok ? 0 : -1;
}

#endif
