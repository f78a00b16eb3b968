/*
 * The few Linux system calls tsbuild makes that Node has no API for: flock(2), mount(2) and
 * umount2(2). Each runs synchronously on the calling thread (they return at once: flock is only
 * ever asked with LOCK_NB) and returns 0 or the errno; the JS side (src/index.ts) turns an errno
 * into an error. Without this addon tsbuild runs flock(1), mount(8) and umount(8) instead, one
 * process each (~8-11 ms per process start on the 2-core VM this was measured on).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include "job.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>

#define CHECK(call)                                                                          \
  do {                                                                                       \
    if ((call) != napi_ok) {                                                                 \
      napi_throw_error(env, "E_SYS_ARGS", "tsbuild sys addon: bad arguments");          \
      return NULL;                                                                           \
    }                                                                                        \
  } while (0)

static napi_value int_value(napi_env env, int v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* A JS string argument as a malloc'ed C string; NULL for null/undefined. Returns -1 on a non-string. */
static int string_arg(napi_env env, napi_value v, char **out) {
  napi_valuetype t;
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) return 0;
  if (t != napi_string) return -1;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  *out = malloc(len + 1);
  if (*out == NULL) return -1;
  if (napi_get_value_string_utf8(env, v, *out, len + 1, &len) != napi_ok || strlen(*out) != len) {
    /* (a NUL inside the string would make it another, shorter path: refused, as Node refuses it) */
    free(*out);
    *out = NULL;
    return -1;
  }
  return 0;
}

/* flock(fd, operation) -> 0 | errno */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, op;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &op));
  int r;
  do r = flock(fd, op); while (r != 0 && errno == EINTR);
  return int_value(env, r == 0 ? 0 : errno);
}

/* mount(source, target, fstype, flags, data) -> 0 | errno; source, fstype and data may be null */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint32_t flags;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 5) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_uint32(env, argv[3], &flags));
  int bad = string_arg(env, argv[0], &source) | string_arg(env, argv[1], &target) | string_arg(env, argv[2], &fstype) |
            string_arg(env, argv[4], &data);
  int result = EINVAL;
  if (bad == 0 && target != NULL) result = mount(source, target, fstype, flags, data) == 0 ? 0 : errno;
  free(source);
  free(target);
  free(fstype);
  free(data);
  if (bad != 0) CHECK(napi_invalid_arg);
  return int_value(env, result);
}

/* umount2(target, flags) -> 0 | errno */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t flags;
  char *target = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  if (string_arg(env, argv[0], &target) != 0 || target == NULL) {
    free(target);
    CHECK(napi_invalid_arg);
  }
  int result = umount2(target, flags) == 0 ? 0 : errno;
  free(target);
  return int_value(env, result);
}

/* umount2 on the thread pool: unmounting an overlay can take tens of milliseconds or more (its
 * dentries are freed, and without `volatile` its upper filesystem is synced). */
typedef struct {
  tsb_job base;
  char *target;
  int flags;
  int result;
} umount_job_t;

static void umount_execute(tsb_job *job) {
  umount_job_t *j = (umount_job_t *)job;
  j->result = umount2(j->target, j->flags) == 0 ? 0 : errno;
}

static napi_value umount_result(napi_env env, tsb_job *job, napi_status status) {
  napi_value errnum;
  napi_create_int32(env, status == napi_ok ? ((umount_job_t *)job)->result : ECANCELED, &errnum);
  return errnum;
}

static void umount_release(tsb_job *job) {
  free(((umount_job_t *)job)->target);
}

/* umount2Async(target, flags, done: (errno) => void) */
static napi_value js_umount2_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t flags;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  CHECK(napi_typeof(env, argv[2], &t));
  if (t != napi_function) CHECK(napi_invalid_arg);
  umount_job_t *j = calloc(1, sizeof *j);
  if (j == NULL) CHECK(napi_generic_failure);
  j->base.execute = umount_execute;
  j->base.result = umount_result;
  j->base.release = umount_release;
  j->flags = flags;
  if (string_arg(env, argv[0], &j->target) != 0 || j->target == NULL) {
    tsb_job_free(env, &j->base);
    CHECK(napi_invalid_arg);
  }
  if (tsb_job_queue(env, &j->base, "tsbuild:umount2", argv[2]) != 0) {
    tsb_job_free(env, &j->base);
    CHECK(napi_generic_failure);
  }
  return NULL;
}

/* strerror(errno) -> the C library's message */
static napi_value js_strerror(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  int32_t n;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_int32(env, argv[0], &n));
  CHECK(napi_create_string_utf8(env, strerror(n), NAPI_AUTO_LENGTH, &r));
  return r;
}

napi_value tsbuild_deflate_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2Async", NULL, js_umount2_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"strerror", NULL, js_strerror, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return tsbuild_deflate_init(env, exports); /* deflate.c */
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
