/*
 * gzip members made by libdeflate (https://github.com/ebiggers/libdeflate), for layer-store's
 * parallel gzip (packages/layer-store/src/parallel-gzip.ts): each call compresses one block of a
 * layer's tar into one complete gzip member (RFC 1952) on libuv's thread pool. libdeflate
 * compresses whole buffers ~1.7x faster than zlib at the same level, to a slightly smaller size.
 *
 * libdeflate is loaded with dlopen("libdeflate.so.0") on first use (Debian's libdeflate0, present
 * on the machines tsbuild runs on), so the addon builds without its headers and the rest of the
 * addon works without it: `deflateEngine()` is then null and layer-store uses zlib instead.
 *
 * The bytes of a member depend only on the input, the level and libdeflate's compressor (its
 * version): `deflateEngine()` names the library and a fingerprint of its output, which callers
 * record beside anything that must be reproduced byte for byte.
 */
#define _GNU_SOURCE /* dladdr */
#define NAPI_VERSION 8
#include <node_api.h>
#include "job.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct libdeflate_compressor;
typedef struct libdeflate_compressor *(*alloc_fn)(int level);
typedef size_t (*compress_fn)(struct libdeflate_compressor *c, const void *in, size_t in_n, void *out, size_t out_n);
typedef uint32_t (*crc32_fn)(uint32_t crc, const void *buf, size_t len);

static struct {
  alloc_fn alloc;
  compress_fn deflate;
  crc32_fn crc32;
  int ok;
} ld;
static pthread_once_t ld_once = PTHREAD_ONCE_INIT;

static void ld_load(void) {
  void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return;
  ld.alloc = (alloc_fn)dlsym(h, "libdeflate_alloc_compressor");
  ld.deflate = (compress_fn)dlsym(h, "libdeflate_deflate_compress");
  ld.crc32 = (crc32_fn)dlsym(h, "libdeflate_crc32");
  ld.ok = ld.alloc != NULL && ld.deflate != NULL && ld.crc32 != NULL;
}

static int ld_ready(void) {
  pthread_once(&ld_once, ld_load);
  return ld.ok;
}

/* One compressor per thread and level (libdeflate's are not thread-safe; allocating one costs more than a small block). */
static __thread struct libdeflate_compressor *compressors[13];

static struct libdeflate_compressor *compressor(int level) {
  if (compressors[level] == NULL) compressors[level] = ld.alloc(level);
  return compressors[level];
}

/* Header fields as parallel-gzip writes them: no name, mtime 0, XFL for the level, OS 3 (Unix). */
static void put_header(uint8_t *o, int level) {
  static const uint8_t h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  memcpy(o, h, 10);
  o[8] = level >= 9 ? 2 : level <= 1 ? 4 : 0;
}

static void put_le32(uint8_t *o, uint32_t v) {
  o[0] = v & 0xff;
  o[1] = (v >> 8) & 0xff;
  o[2] = (v >> 16) & 0xff;
  o[3] = (v >> 24) & 0xff;
}

/* The member of in[0..n) into out[0..room): its length, or 0 when it does not fit. */
static size_t gzip_member(const uint8_t *in, size_t n, uint8_t *out, size_t room, int level) {
  struct libdeflate_compressor *c = compressor(level);
  if (c == NULL || room < 18) return 0;
  put_header(out, level);
  size_t d = ld.deflate(c, in, n, out + 10, room - 18);
  if (d == 0) return 0;
  put_le32(out + 10 + d, ld.crc32(0, in, n));
  put_le32(out + 14 + d, (uint32_t)n);
  return d + 18;
}

typedef struct {
  tsb_job base; /* holds the input and output buffers */
  const uint8_t *in;
  size_t n;
  uint8_t *out;
  size_t room;
  int level;
  size_t result;
} job_t;

static void job_execute(tsb_job *job) {
  job_t *j = (job_t *)job;
  j->result = gzip_member(j->in, j->n, j->out, j->room, j->level);
}

static napi_value job_result(napi_env env, tsb_job *job, napi_status status) {
  napi_value length;
  napi_create_int64(env, status == napi_ok ? (int64_t)((job_t *)job)->result : -1, &length);
  return length;
}

/*
 * gzipMember(input: Buffer, level: 0..12, output: Buffer, done: (length: number) => void): void
 * Compresses `input` into `output` as one gzip member on the thread pool; `done` gets the member's
 * length, 0 when `output` is too small, -1 when the work was cancelled. Both buffers must stay
 * untouched until then. Throws when libdeflate is not loaded or an argument is wrong.
 */
static napi_value js_gzip_member(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t level;
  void *in, *out;
  size_t n, room;
  bool is_in, is_out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 || napi_is_buffer(env, argv[0], &is_in) != napi_ok ||
      napi_is_buffer(env, argv[2], &is_out) != napi_ok || !is_in || !is_out || napi_get_value_int32(env, argv[1], &level) != napi_ok ||
      level < 0 || level > 12 || napi_get_buffer_info(env, argv[0], &in, &n) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &out, &room) != napi_ok) {
    napi_throw_type_error(env, "E_SYS_ARGS", "gzipMember(input: Buffer, level: 0..12, output: Buffer, done: Function)");
    return NULL;
  }
  napi_valuetype cb_type;
  if (napi_typeof(env, argv[3], &cb_type) != napi_ok || cb_type != napi_function || ((uint8_t *)in < (uint8_t *)out + room && (uint8_t *)out < (uint8_t *)in + n)) {
    napi_throw_type_error(env, "E_SYS_ARGS", "gzipMember: done must be a function, and input and output must not overlap");
    return NULL;
  }
  if (!ld_ready()) {
    napi_throw_error(env, "E_SYS_NO_LIBDEFLATE", "libdeflate.so.0 is not loaded");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "E_SYS_NOMEM", "out of memory");
    return NULL;
  }
  j->base.execute = job_execute;
  j->base.result = job_result;
  j->in = in;
  j->n = n;
  j->out = out;
  j->room = room;
  j->level = level;
  if (tsb_job_hold(env, &j->base, argv[0]) != 0 || tsb_job_hold(env, &j->base, argv[2]) != 0 || tsb_job_queue(env, &j->base, "tsbuild:gzipMember", argv[3]) != 0) {
    tsb_job_free(env, &j->base);
    napi_throw_error(env, "E_SYS_QUEUE", "could not queue the compression");
    return NULL;
  }
  return NULL;
}

/*
 * gzipMemberSync(input: Buffer, level: 0..12, output: Buffer): number — the same on the calling
 * thread (small inputs, fingerprints).
 */
static napi_value js_gzip_member_sync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], r;
  int32_t level;
  void *in, *out;
  size_t n, room;
  bool is_in, is_out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || napi_is_buffer(env, argv[0], &is_in) != napi_ok ||
      napi_is_buffer(env, argv[2], &is_out) != napi_ok || !is_in || !is_out || napi_get_value_int32(env, argv[1], &level) != napi_ok ||
      level < 0 || level > 12 || napi_get_buffer_info(env, argv[0], &in, &n) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &out, &room) != napi_ok) {
    napi_throw_type_error(env, "E_SYS_ARGS", "gzipMemberSync(input: Buffer, level: 0..12, output: Buffer)");
    return NULL;
  }
  if (!ld_ready()) {
    napi_throw_error(env, "E_SYS_NO_LIBDEFLATE", "libdeflate.so.0 is not loaded");
    return NULL;
  }
  napi_create_int64(env, (int64_t)gzip_member(in, n, out, room, level), &r);
  return r;
}

/* libdeflateLoaded(): boolean — whether libdeflate.so.0 loaded (tried once per process). */
static napi_value js_libdeflate_loaded(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_get_boolean(env, ld_ready(), &r);
  return r;
}

/* libdeflatePath(): string | null — the file libdeflate was loaded from (its bytes name the compressor exactly). */
static napi_value js_libdeflate_path(napi_env env, napi_callback_info info) {
  napi_value r;
  Dl_info dl;
  if (ld_ready() && dladdr((void *)ld.deflate, &dl) != 0 && dl.dli_fname != NULL) {
    napi_create_string_utf8(env, dl.dli_fname, NAPI_AUTO_LENGTH, &r);
  } else {
    napi_get_null(env, &r);
  }
  return r;
}

napi_value tsbuild_walk_init(napi_env env, napi_value exports);

/* Adds gzipMember, gzipMemberSync and libdeflateLoaded (and walk.c's functions) to the addon's exports (sys.c's init calls it). */
napi_value tsbuild_deflate_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gzipMember", NULL, js_gzip_member, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gzipMemberSync", NULL, js_gzip_member_sync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"libdeflateLoaded", NULL, js_libdeflate_loaded, NULL, NULL, NULL, napi_enumerable, NULL},
      {"libdeflatePath", NULL, js_libdeflate_path, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return tsbuild_walk_init(env, exports); /* walk.c */
}
