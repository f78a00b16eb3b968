/* The addon's thread-pool jobs (job.h). */
#include "job.h"
#include <stdlib.h>

int tsb_job_hold(napi_env env, tsb_job *job, napi_value value) {
  if (job->nrefs == job->cap) {
    size_t cap = job->cap == 0 ? 4 : job->cap * 2;
    napi_ref *refs = realloc(job->refs, cap * sizeof *refs);
    if (refs == NULL) return -1;
    job->refs = refs;
    job->cap = cap;
  }
  if (napi_create_reference(env, value, 1, &job->refs[job->nrefs]) != napi_ok) return -1;
  job->nrefs++;
  return 0;
}

void tsb_job_free(napi_env env, tsb_job *job) {
  for (size_t i = 0; i < job->nrefs; i++) napi_delete_reference(env, job->refs[i]);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  if (job->release != NULL) job->release(job);
  free(job->refs);
  free(job);
}

napi_value tsb_job_ran(napi_env env, tsb_job *job, napi_status status) {
  napi_value ran;
  napi_get_boolean(env, status == napi_ok, &ran);
  return ran;
}

static void execute(napi_env env, void *data) {
  tsb_job *job = data;
  job->execute(job);
}

static void complete(napi_env env, napi_status status, void *data) {
  tsb_job *job = data;
  napi_value cb, undef, arg;
  napi_get_reference_value(env, job->refs[job->nrefs - 1], &cb);
  napi_get_undefined(env, &undef);
  arg = job->result(env, job, status);
  tsb_job_free(env, job);
  napi_call_function(env, undef, cb, 1, &arg, NULL);
}

int tsb_job_queue(napi_env env, tsb_job *job, const char *name, napi_value done) {
  napi_value resource;
  napi_valuetype type;
  if (napi_typeof(env, done, &type) != napi_ok || type != napi_function || tsb_job_hold(env, job, done) != 0) return -1;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_async_work(env, NULL, resource, execute, complete, job, &job->work) != napi_ok) {
    return -1;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) return -1;
  return 0;
}
