/* submit.h: put one job envelope on its stream `stella:jobs:<type>` from a blocking
 * context (an API handler, the CLI): one short-lived synchronous hiredis connection per
 * call, with a timeout, so no state is shared between threads.
 *
 * Errors: ST_EREDIS (cannot connect, SELECT or XADD refused), the encoder's codes
 * (envelope.h). Thread rules: any thread but the libuv loop (it blocks). */
#ifndef STELLA_QUEUE_SUBMIT_H
#define STELLA_QUEUE_SUBMIT_H

#include <stddef.h>

#include "envelope.h"
#include "stella/err.h"

#define ST_SUBMIT_TIMEOUT_S 5

/* XADD an encoded envelope (bytes[0..len)) of job type `type` to its stream. */
int st_queue_xadd(const char *redis_url, const char *type, const void *bytes, size_t len,
                  st_error_t *err) ST_MUST_CHECK;
/* Encode env (max_bytes as st_envelope_encode) and st_queue_xadd it. */
int st_queue_submit(const char *redis_url, const st_envelope_t *env, size_t max_bytes,
                    st_error_t *err) ST_MUST_CHECK;

#endif
