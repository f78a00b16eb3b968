/*
 * sha256 whose state can be saved and resumed, and copy_file_range(2).
 *
 * A rebuilt layer whose tar starts with the same bytes as the earlier one's (a COPY of a context
 * where a late file changed) need not read and hash that prefix again if the hashes' states at
 * the end of it were kept: node:crypto's Hash cannot export or import its state. These functions
 * call OpenSSL's SHA256_Init/Update/Final, which the node executable exports to addons (found with
 * dlsym, so a node without them only lacks these functions), on a state held in a JS Buffer: the
 * 112 bytes of OpenSSL's SHA256_CTX, unchanged since OpenSSL 0.9.8. A state read back from a file
 * is checked (num < 64, md_len 32) before OpenSSL uses it, so a damaged one cannot make it write
 * out of bounds.
 *
 * copyFileRange copies the reused prefix of the earlier blob into the new one inside the kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* sha256Update(state: Buffer(112), data: Uint8Array): void */
static napi_value js_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !sha_ready()) {
    napi_throw_error(env, "E_SYS_SHA256", "sha256Update(state, data): OpenSSL's SHA256 is not available");
    return NULL;
  }
  sha_ctx *c = state_arg(env, argv[0], 0);
  if (c == NULL) return NULL;
  bool is_ta = false;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta || napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "E_SYS_ARGS", "sha256Update: data must be a Buffer or Uint8Array");
    return NULL;
  }
  if (length > 0) p_update(c, data, length);
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

static int int64_arg(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/*
 * copyFileRange(fdIn: number, offIn: number, fdOut: number, length: number): number — copies
 * `length` bytes of fdIn from offIn to fdOut at its file offset (which advances), by
 * copy_file_range(2), or read/write where the kernel or file system does not do it. Returns 0,
 * or the errno of the call that failed (ENODATA: the source ends before `length` bytes).
 */
static napi_value js_copy_file_range(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int64_t fd_in, off, fd_out, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || !int64_arg(env, argv[0], &fd_in) || !int64_arg(env, argv[1], &off) ||
      !int64_arg(env, argv[2], &fd_out) || !int64_arg(env, argv[3], &length) || off < 0 || length < 0) {
    napi_throw_type_error(env, "E_SYS_ARGS", "copyFileRange(fdIn: number, offIn: number, fdOut: number, length: number)");
    return NULL;
  }
  int err = 0;
  loff_t in = off;
  int64_t left = length;
  int kernel = 1;
  char *buf = NULL;
  while (left > 0 && err == 0) {
    if (kernel) {
      ssize_t n = copy_file_range((int)fd_in, &in, (int)fd_out, NULL, (size_t)(left > (1 << 30) ? (1 << 30) : left), 0);
      if (n > 0) {
        left -= n;
        continue;
      }
      if (n == 0) {
        err = ENODATA;
        break;
      }
      if (errno == EINTR) continue;
      if (errno != ENOSYS && errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP) {
        err = errno;
        break;
      }
      kernel = 0;
      buf = malloc(1 << 20);
      if (buf == NULL) {
        err = ENOMEM;
        break;
      }
    }
    ssize_t n = pread((int)fd_in, buf, (size_t)(left > (1 << 20) ? (1 << 20) : left), in);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) {
      err = ENODATA;
      break;
    }
    ssize_t w = 0;
    while (w < n) {
      ssize_t k = write((int)fd_out, buf + w, (size_t)(n - w));
      if (k < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      w += k;
    }
    in += n;
    left -= n;
  }
  free(buf);
  napi_value r;
  napi_create_int32(env, err, &r);
  return r;
}

/* Adds the sha256 functions and copyFileRange to the addon's exports (walk.c's init calls it). */
napi_value tsbuild_hash_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sha256Available", NULL, js_available, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Init", NULL, js_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Update", NULL, js_update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Digest", NULL, js_digest, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyFileRange", NULL, js_copy_file_range, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
