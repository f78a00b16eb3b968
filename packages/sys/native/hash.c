/*
 * sha256 on libuv's thread pool, its state in a JS Buffer.
 *
 * The layer writer hashes every tar block twice (the diffID, and the block's key for reuse) and
 * every compressed block once (the blob digest): ~300 ms of main thread for a 150 MB layer, while
 * the other core idles when the blocks are reused rather than compressed. node:crypto hashes on
 * the calling thread only (crypto.subtle only in one shot). These functions call OpenSSL's
 * SHA256_Init/Update/Final, which the node executable exports to addons (found with dlsym, so a
 * node without them only lacks these functions), on a state held in a JS Buffer: the 112 bytes of
 * OpenSSL's SHA256_CTX, unchanged since OpenSSL 0.9.8, checked (num < 64, md_len 32) before
 * OpenSSL uses it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <node_api.h>
#include "job.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint32_t h[8];
  uint32_t Nl, Nh;
  uint32_t data[16];
  unsigned int num, md_len;
} sha_ctx;
_Static_assert(sizeof(sha_ctx) == 112, "OpenSSL's SHA256_CTX is 112 bytes");

static int (*p_init)(sha_ctx *);
static int (*p_update)(sha_ctx *, const void *, size_t);
static int (*p_final)(unsigned char *, sha_ctx *);
/* -1 not looked up yet, 0 missing or wrong, 1 usable */
static int usable = -1;

static int sha_ready(void) {
  if (usable >= 0) return usable;
  *(void **)(&p_init) = dlsym(RTLD_DEFAULT, "SHA256_Init");
  *(void **)(&p_update) = dlsym(RTLD_DEFAULT, "SHA256_Update");
  *(void **)(&p_final) = dlsym(RTLD_DEFAULT, "SHA256_Final");
  usable = 0;
  if (p_init == NULL || p_update == NULL || p_final == NULL) return 0;
  /* the known answer for "abc" (FIPS 180-2), and the layout this file assumes */
  static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  sha_ctx c;
  unsigned char md[32];
  memset(&c, 0, sizeof c);
  if (p_init(&c) != 1 || c.md_len != 32 || p_update(&c, "abc", 3) != 1 || c.num != 3 || c.Nl != 24 || p_final(md, &c) != 1) return 0;
  usable = memcmp(md, abc, 32) == 0;
  return usable;
}

static napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* The sha_ctx in argument `v` (a Buffer of exactly 112 bytes holding a valid state), or NULL with a TypeError thrown. */
static sha_ctx *state_arg(napi_env env, napi_value v, int fresh) {
  void *data;
  size_t len;
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, v, &data, &len) != napi_ok || len != sizeof(sha_ctx)) {
    napi_throw_type_error(env, "E_SYS_ARGS", "sha256: the state must be a Buffer of 112 bytes");
    return NULL;
  }
  sha_ctx *c = data;
  if (!fresh && (c->num >= 64 || c->md_len != 32)) {
    napi_throw_type_error(env, "E_SYS_ARGS", "sha256: not a sha256 state");
    return NULL;
  }
  return c;
}

/* sha256Available(): boolean */
static napi_value js_available(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_get_boolean(env, sha_ready(), &r);
  return r;
}

/* sha256Init(state: Buffer(112)): void — a fresh state in `state`. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !sha_ready()) {
    napi_throw_error(env, "E_SYS_SHA256", "sha256Init(state): OpenSSL's SHA256 is not available");
    return NULL;
  }
  sha_ctx *c = state_arg(env, argv[0], 1);
  if (c == NULL) return NULL;
  memset(c, 0, sizeof *c);
  p_init(c);
  return undefined_value(env);
}

/* sha256Digest(state: Buffer(112)): Buffer(32) — the digest of what the state has seen; the state itself is left as it is. */
static napi_value js_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !sha_ready()) {
    napi_throw_error(env, "E_SYS_SHA256", "sha256Digest(state): OpenSSL's SHA256 is not available");
    return NULL;
  }
  sha_ctx *c = state_arg(env, argv[0], 0);
  if (c == NULL) return NULL;
  sha_ctx copy = *c;
  void *out;
  napi_value r;
  if (napi_create_buffer(env, 32, &out, &r) != napi_ok) return NULL;
  p_final(out, &copy);
  return r;
}

typedef struct {
  tsb_job base; /* holds the state and each data buffer */
  sha_ctx *ctx;
  size_t count;
  const void **data;
  size_t *len;
} update_job;

static void update_release(tsb_job *job) {
  update_job *j = (update_job *)job;
  free(j->data);
  free(j->len);
}

static void update_execute(tsb_job *job) {
  update_job *j = (update_job *)job;
  for (size_t i = 0; i < j->count; i++)
    if (j->len[i] > 0) p_update(j->ctx, j->data[i], j->len[i]);
}

/*
 * sha256UpdateAsync(state: Buffer(112), data: Uint8Array[], done: (ok: boolean) => void): void
 * Adds each of `data` to `state`, in order, on the thread pool; `done(true)` then (false: the
 * work was cancelled). The state and the data must stay untouched until then, and no other update
 * of the same state may run meanwhile (the caller queues them).
 */
static napi_value js_update_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  bool is_array = false;
  uint32_t count = 0;
  napi_valuetype cb_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !sha_ready()) {
    napi_throw_error(env, "E_SYS_SHA256", "sha256UpdateAsync(state, data, done): OpenSSL's SHA256 is not available");
    return NULL;
  }
  sha_ctx *c = state_arg(env, argv[0], 0);
  if (c == NULL) return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &count) != napi_ok ||
      napi_typeof(env, argv[2], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, "E_SYS_ARGS", "sha256UpdateAsync(state: Buffer, data: Uint8Array[], done: function)");
    return NULL;
  }
  update_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "E_SYS_NOMEM", "out of memory");
    return NULL;
  }
  j->base.execute = update_execute;
  j->base.result = tsb_job_ran;
  j->base.release = update_release;
  j->ctx = c;
  j->count = count;
  j->data = calloc(count > 0 ? count : 1, sizeof *j->data);
  j->len = calloc(count > 0 ? count : 1, sizeof *j->len);
  if (j->data == NULL || j->len == NULL || tsb_job_hold(env, &j->base, argv[0]) != 0) {
    tsb_job_free(env, &j->base);
    napi_throw_error(env, "E_SYS_NOMEM", "out of memory");
    return NULL;
  }
  int ok = 1;
  for (uint32_t i = 0; ok && i < count; i++) {
    napi_value v;
    bool is_ta = false;
    napi_typedarray_type type;
    size_t length = 0;
    void *p = NULL;
    ok = napi_get_element(env, argv[1], i, &v) == napi_ok && napi_is_typedarray(env, v, &is_ta) == napi_ok && is_ta &&
         napi_get_typedarray_info(env, v, &type, &length, &p, NULL, NULL) == napi_ok && type == napi_uint8_array && tsb_job_hold(env, &j->base, v) == 0;
    j->data[i] = p;
    j->len[i] = length;
  }
  if (!ok) {
    tsb_job_free(env, &j->base);
    napi_throw_type_error(env, "E_SYS_ARGS", "sha256UpdateAsync: data must be an array of Buffers or Uint8Arrays");
    return NULL;
  }
  if (tsb_job_queue(env, &j->base, "tsbuild:sha256", argv[2]) != 0) {
    tsb_job_free(env, &j->base);
    napi_throw_error(env, "E_SYS_QUEUE", "could not queue the hashing");
    return NULL;
  }
  return undefined_value(env);
}

/* Adds the sha256 functions to the addon's exports (walk.c's init calls it). */
napi_value tsbuild_hash_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sha256Available", NULL, js_available, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Init", NULL, js_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Digest", NULL, js_digest, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256UpdateAsync", NULL, js_update_async, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
