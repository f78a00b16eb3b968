/*
 * A thread-pool job of the addon: work run on libuv's pool, the JS values it keeps alive until
 * it is done (buffers it reads or writes), and a JS callback called on the main thread after.
 * Each job struct starts with a tsb_job; the functions below do the N-API bookkeeping that every
 * asynchronous call of the addon needs (references, async work, queueing, freeing).
 */
#ifndef TSBUILD_JOB_H
#define TSBUILD_JOB_H
#include <node_api.h>
#include <stddef.h>

typedef struct tsb_job tsb_job;
struct tsb_job {
  napi_async_work work;
  napi_ref *refs; /* held values; once queued, the callback is the last */
  size_t nrefs, cap;
  /* on the pool */
  void (*execute)(tsb_job *job);
  /* on the main thread, after: the callback's one argument (status: napi_ok, or cancelled) */
  napi_value (*result)(napi_env env, tsb_job *job, napi_status status);
  /* frees what the job allocated besides itself (may be NULL) */
  void (*release)(tsb_job *job);
};

/* Keeps `value` alive until the job is done or freed. Returns 0, or -1 (the caller frees the job). */
int tsb_job_hold(napi_env env, tsb_job *job, napi_value value);

/*
 * Queues the job on the pool; `done` (a function) is called with its result. Returns 0, or -1
 * with nothing queued (the caller frees the job with tsb_job_free).
 */
int tsb_job_queue(napi_env env, tsb_job *job, const char *name, napi_value done);

/* A `result` for jobs whose callback gets whether the work ran (false: cancelled). */
napi_value tsb_job_ran(napi_env env, tsb_job *job, napi_status status);

/* Drops the job's references and work, releases it and frees it (a job that was not queued, or failed to be). */
void tsb_job_free(napi_env env, tsb_job *job);

#endif
