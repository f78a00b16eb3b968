/*
 * Batched file system calls for layer-store's tar writer (packages/layer-store/src/layer-tar.ts),
 * which walks and reads every file of a layer on the main thread with synchronous calls. Node's
 * own lstatSync (bigint stats objects) and fs-xattr's listAttributesSync cost 2-4x the system
 * calls: 20,000 names took 540-860 ms of main thread, against 220 ms for lstatBatch of the same
 * names (both measured in Node on the bench tree). Here one call does the lstat and listxattr of
 * many names. readFileInto reads a small file in one call: open, read and close of the 20,000
 * files of the bench tree took 280-320 ms through Node's openSync, readSync and closeSync, and
 * 142-164 ms as a C loop of the same calls (tmp/mb.c of session 7).
 *
 * Errors are returned, not thrown: the caller repeats the failed call with Node's API, which
 * throws the usual error.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <node_api.h>
#include "job.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <unistd.h>

/* Fields per entry of lstatBatch's output. */
#define FIELDS 14

/* A JS string as a malloc'ed C string (NULL on failure). */
static char *utf8(napi_env env, napi_value v, size_t *len_out) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  if (len_out) *len_out = len;
  return s;
}

/*
 * lstatBatch(base: string, names: string[], out: BigUint64Array, xattrs = true): number
 * For each name, lstat(base + name) and the size of its llistxattr list, into out[i*14 ..]:
 * mode, uid, gid, size, mtime in ms (nanoseconds / 1e6, truncated toward zero as Node's BigInt
 * stats give mtimeMs; signed), nlink, dev, ino, rdev, 0, xattr list size (0: none or not supported,
 * -1 (signed): llistxattr failed otherwise; 0 without asking when `xattrs` is false), errno of
 * lstat (0: ok), mtime and ctime in nanoseconds (signed). Returns how many names were done (all,
 * unless a name is not a string).
 */
static napi_value js_lstat_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], r;
  napi_typedarray_type type;
  size_t len, n_names;
  void *data;
  uint32_t count;
  bool is_array;
  bool xattrs = true;
  napi_value more[4];
  size_t margc = 4;
  if (napi_get_cb_info(env, info, &margc, more, NULL, NULL) == napi_ok && margc >= 4) {
    napi_valuetype t;
    if (napi_typeof(env, more[3], &t) == napi_ok && t == napi_boolean) napi_get_value_bool(env, more[3], &xattrs);
  }
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_biguint64_array || len < (size_t)count * FIELDS) {
    napi_throw_type_error(env, "E_SYS_ARGS", "lstatBatch(base: string, names: string[], out: BigUint64Array(14 * names.length), xattrs?: boolean)");
    return NULL;
  }
  size_t base_len;
  char *base = utf8(env, argv[0], &base_len);
  if (base == NULL) {
    napi_throw_type_error(env, "E_SYS_ARGS", "lstatBatch: base must be a string");
    return NULL;
  }
  size_t cap = base_len + 256;
  char *path = malloc(cap);
  /* unsigned, as Node's BigInt stats give dev and ino (overlayfs sets their high bits); the signed fields are read back with BigInt.asIntN */
  uint64_t *out = data;
  uint32_t i = 0;
  for (; path != NULL && i < count; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok) break;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &n_names) != napi_ok) break;
    if (base_len + n_names + 1 > cap) {
      cap = base_len + n_names + 256;
      char *p = realloc(path, cap);
      if (p == NULL) break;
      path = p;
    }
    memcpy(path, base, base_len);
    napi_get_value_string_utf8(env, v, path + base_len, n_names + 1, &n_names);
    uint64_t *o = out + (size_t)i * FIELDS;
    memset(o, 0, FIELDS * sizeof *o);
    struct stat st;
    if (strlen(path) != base_len + n_names) {
      o[11] = EINVAL; /* a NUL in the name (or base) would cut the path short */
      continue;
    }
    if (lstat(path, &st) != 0) {
      o[11] = errno;
      continue;
    }
    __int128 ns = (__int128)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    o[0] = st.st_mode;
    o[1] = st.st_uid;
    o[2] = st.st_gid;
    o[3] = st.st_size;
    o[4] = (uint64_t)(int64_t)(ns / 1000000);
    o[5] = st.st_nlink;
    o[6] = st.st_dev;
    o[7] = st.st_ino;
    o[8] = st.st_rdev;
    o[12] = (uint64_t)(int64_t)ns;
    o[13] = (uint64_t)((int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
    if (xattrs) {
      ssize_t x = llistxattr(path, NULL, 0);
      o[10] = x >= 0 ? (uint64_t)x : (errno == ENOTSUP ? 0 : (uint64_t)(int64_t)-1);
    }
  }
  free(path);
  free(base);
  napi_create_uint32(env, i, &r);
  return r;
}

/*
 * readFileInto(path: string, buffer: Uint8Array, offset: number, length: number): number
 * Reads the regular file `path` (not following a final symlink: O_NOFOLLOW) into
 * buffer[offset, offset + length): open, reads until `length` bytes or the end, one read of a byte
 * more (does the file go on?), close. Returns the bytes read, `length + 1` when the file has more
 * than `length`, or -errno when a call failed (the caller repeats it with Node's API for its error).
 */
static napi_value js_read_file_into(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], r;
  napi_typedarray_type type;
  size_t len;
  void *data;
  int64_t offset, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 ||
      napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok || offset < 0 || length < 0 ||
      (uint64_t)offset + (uint64_t)length > len) {
    napi_throw_type_error(env, "E_SYS_ARGS", "readFileInto(path: string, buffer: Uint8Array, offset: number, length: number) within the buffer");
    return NULL;
  }
  size_t path_len;
  char *path = utf8(env, argv[0], &path_len);
  if (path == NULL) {
    napi_throw_type_error(env, "E_SYS_ARGS", "readFileInto: path must be a string");
    return NULL;
  }
  int64_t result;
  /* a NUL inside would cut the path short: another file (Node refuses such a path) */
  int bad = path_len == 0 || strlen(path) != path_len;
  int fd = bad ? -1 : open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    result = bad ? -EINVAL : -errno;
  } else {
    char *p = (char *)data + offset;
    int64_t n = 0;
    result = 0;
    while (n < length) {
      ssize_t k = read(fd, p + n, (size_t)(length - n));
      if (k < 0) {
        if (errno == EINTR) continue;
        result = -errno;
        break;
      }
      if (k == 0) break;
      n += k;
    }
    if (result == 0) {
      char more;
      ssize_t k;
      do k = read(fd, &more, 1);
      while (k < 0 && errno == EINTR);
      result = k < 0 ? -errno : k > 0 ? length + 1 : n;
    }
    close(fd);
  }
  free(path);
  napi_create_int64(env, result, &r);
  return r;
}

typedef struct {
  tsb_job base; /* holds the errno array */
  char **from, **to;
  int32_t *errs;
  uint32_t count;
} link_job;

static void link_release(tsb_job *job) {
  link_job *j = (link_job *)job;
  for (uint32_t i = 0; i < j->count; i++) {
    if (j->from != NULL) free(j->from[i]);
    if (j->to != NULL) free(j->to[i]);
  }
  free(j->from);
  free(j->to);
}

static void link_execute(tsb_job *job) {
  link_job *j = (link_job *)job;
  for (uint32_t i = 0; i < j->count; i++) j->errs[i] = link(j->from[i], j->to[i]) == 0 ? 0 : errno;
}

/* A JS string array element as a malloc'ed C string without a NUL inside, or NULL. */
static char *path_at(napi_env env, napi_value array, uint32_t i) {
  napi_value v;
  size_t len;
  if (napi_get_element(env, array, i, &v) != napi_ok) return NULL;
  char *s = utf8(env, v, &len);
  if (s != NULL && (len == 0 || strlen(s) != len)) {
    free(s);
    return NULL;
  }
  return s;
}

/*
 * linkBatchAsync(from: string[], to: string[], errnos: Int32Array, done: (ok: boolean) => void): void
 * link(from[i], to[i]) for each i on the thread pool, in order; errnos[i] gets 0 or the call's
 * errno, then done(true) (false: the work was cancelled). `errnos` must stay untouched until then.
 */
static napi_value js_link_batch_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool a1 = false, a2 = false;
  uint32_t n1 = 0, n2 = 0;
  napi_typedarray_type type;
  size_t len;
  void *errs;
  napi_valuetype cb_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 || napi_is_array(env, argv[0], &a1) != napi_ok || !a1 ||
      napi_is_array(env, argv[1], &a2) != napi_ok || !a2 || napi_get_array_length(env, argv[0], &n1) != napi_ok ||
      napi_get_array_length(env, argv[1], &n2) != napi_ok || n1 != n2 ||
      napi_get_typedarray_info(env, argv[2], &type, &len, &errs, NULL, NULL) != napi_ok || type != napi_int32_array || len < n1 ||
      napi_typeof(env, argv[3], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, "E_SYS_ARGS", "linkBatchAsync(from: string[], to: string[] (as many), errnos: Int32Array(as many), done: function)");
    return NULL;
  }
  link_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "E_SYS_NOMEM", "out of memory");
    return NULL;
  }
  j->base.execute = link_execute;
  j->base.result = tsb_job_ran;
  j->base.release = link_release;
  j->count = n1;
  j->errs = errs;
  j->from = calloc(n1 > 0 ? n1 : 1, sizeof *j->from);
  j->to = calloc(n1 > 0 ? n1 : 1, sizeof *j->to);
  int ok = j->from != NULL && j->to != NULL;
  for (uint32_t i = 0; ok && i < n1; i++) {
    j->from[i] = path_at(env, argv[0], i);
    j->to[i] = path_at(env, argv[1], i);
    ok = j->from[i] != NULL && j->to[i] != NULL;
  }
  if (!ok) {
    tsb_job_free(env, &j->base);
    napi_throw_type_error(env, "E_SYS_ARGS", "linkBatchAsync: every path must be a non-empty string without NUL");
    return NULL;
  }
  if (tsb_job_hold(env, &j->base, argv[2]) != 0 || tsb_job_queue(env, &j->base, "tsbuild:linkBatch", argv[3]) != 0) {
    tsb_job_free(env, &j->base);
    napi_throw_error(env, "E_SYS_QUEUE", "could not queue the links");
    return NULL;
  }
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

typedef struct {
  tsb_job base; /* holds the block, spec and out */
  char *block;
  size_t block_len;
  uint32_t count;
  char **paths;
  const double *spec; /* per piece: file size, offset in the file, offset in the block, length */
  double *out;        /* per piece: 0 done, -1 the file ends early (then [count + i]: its length), -2 it goes on past its size, errno > 0 */
} fill_job;

static void fill_release(tsb_job *job) {
  fill_job *j = (fill_job *)job;
  for (uint32_t i = 0; j->paths != NULL && i < j->count; i++) free(j->paths[i]);
  free(j->paths);
}

static void fill_execute(tsb_job *job) {
  fill_job *j = (fill_job *)job;
  for (uint32_t i = 0; i < j->count; i++) {
    const double *p = j->spec + (size_t)i * 4;
    int64_t size = (int64_t)p[0], from = (int64_t)p[1], at = (int64_t)p[2], length = (int64_t)p[3];
    j->out[i] = 0;
    int fd = open(j->paths[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      j->out[i] = errno;
      continue;
    }
    int64_t n = 0;
    while (n < length) {
      ssize_t k = pread(fd, j->block + at + n, (size_t)(length - n), from + n);
      if (k < 0) {
        if (errno == EINTR) continue;
        j->out[i] = errno;
        break;
      }
      if (k == 0) {
        j->out[i] = -1;
        j->out[j->count + i] = (double)(from + n);
        break;
      }
      n += k;
    }
    if (j->out[i] == 0 && from + length == size) {
      /* the file's last piece: does the file go on? */
      char more;
      ssize_t k;
      do k = pread(fd, &more, 1, size);
      while (k < 0 && errno == EINTR);
      if (k < 0) j->out[i] = errno;
      else if (k > 0) j->out[i] = -2;
    }
    close(fd);
  }
}

/*
 * fillBlockAsync(block: Buffer, paths: string[], spec: Float64Array, out: Float64Array, done: (ok: boolean) => void): void
 * On the thread pool, reads each piece i of a regular file (O_NOFOLLOW) into the block: spec[4i ..]
 * is the file's size, the piece's offset in the file, its offset in the block and its length. For
 * a piece that ends the file, one byte more is asked for (does the file go on?). out[i] gets 0,
 * -1 when the file ends early (out[count + i]: where), -2 when it goes on past its size, or the
 * errno of a failed call; then done(true) (false: cancelled). Nothing may touch the block, spec or
 * out until then. out holds 2 * count numbers.
 */
static napi_value js_fill_block_async(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  bool is_buf = false, is_arr = false;
  uint32_t count = 0;
  napi_typedarray_type t1, t2;
  size_t spec_len, out_len;
  void *spec, *out, *block;
  size_t block_len;
  napi_valuetype cb_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 || napi_is_buffer(env, argv[0], &is_buf) != napi_ok || !is_buf ||
      napi_get_buffer_info(env, argv[0], &block, &block_len) != napi_ok || napi_is_array(env, argv[1], &is_arr) != napi_ok || !is_arr ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || napi_get_typedarray_info(env, argv[2], &t1, &spec_len, &spec, NULL, NULL) != napi_ok ||
      t1 != napi_float64_array || spec_len < (size_t)count * 4 || napi_get_typedarray_info(env, argv[3], &t2, &out_len, &out, NULL, NULL) != napi_ok ||
      t2 != napi_float64_array || out_len < (size_t)count * 2 || napi_typeof(env, argv[4], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, "E_SYS_ARGS", "fillBlockAsync(block: Buffer, paths: string[], spec: Float64Array(4n), out: Float64Array(2n), done: function)");
    return NULL;
  }
  const double *sp = spec;
  for (uint32_t i = 0; i < count; i++) {
    const double *p = sp + (size_t)i * 4;
    /* whole, non-negative numbers, and the piece inside the block */
    int bad = 0;
    for (int k = 0; k < 4; k++) bad |= !(p[k] >= 0 && p[k] <= 9007199254740991.0 && p[k] == (double)(int64_t)p[k]);
    if (bad || p[2] + p[3] > (double)block_len || p[1] + p[3] > p[0]) {
      napi_throw_range_error(env, "E_SYS_ARGS", "fillBlockAsync: a piece lies outside its block or its file");
      return NULL;
    }
  }
  fill_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "E_SYS_NOMEM", "out of memory");
    return NULL;
  }
  j->base.execute = fill_execute;
  j->base.result = tsb_job_ran;
  j->base.release = fill_release;
  j->block = block;
  j->block_len = block_len;
  j->count = count;
  j->spec = spec;
  j->out = out;
  j->paths = calloc(count > 0 ? count : 1, sizeof *j->paths);
  int ok = j->paths != NULL;
  for (uint32_t i = 0; ok && i < count; i++) ok = (j->paths[i] = path_at(env, argv[1], i)) != NULL;
  if (!ok) {
    tsb_job_free(env, &j->base);
    napi_throw_type_error(env, "E_SYS_ARGS", "fillBlockAsync: every path must be a non-empty string without NUL");
    return NULL;
  }
  if (tsb_job_hold(env, &j->base, argv[0]) != 0 || tsb_job_hold(env, &j->base, argv[2]) != 0 || tsb_job_hold(env, &j->base, argv[3]) != 0 ||
      tsb_job_queue(env, &j->base, "tsbuild:fillBlock", argv[4]) != 0) {
    tsb_job_free(env, &j->base);
    napi_throw_error(env, "E_SYS_QUEUE", "could not queue the reads");
    return NULL;
  }
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value tsbuild_hash_init(napi_env env, napi_value exports);

/* Adds lstatBatch and readFileInto (and hash.c's functions) to the addon's exports (deflate.c's init calls it). */
napi_value tsbuild_walk_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lstatBatch", NULL, js_lstat_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readFileInto", NULL, js_read_file_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linkBatchAsync", NULL, js_link_batch_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fillBlockAsync", NULL, js_fill_block_async, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return tsbuild_hash_init(env, exports); /* hash.c */
}
