/* st_test_queue.h: what the job queue's integration tests share: stellad child
 * processes (spawned with test defaults, tracked so a failed test's teardown kills them),
 * Redis helpers, polling waits with generous bounds, and counting the logging state sink's
 * JSON lines. Each test program has its own log directory (logdir, made with mkdtemp). */
#ifndef STELLA_TEST_QUEUE_H
#define STELLA_TEST_QUEUE_H

#include "st_test.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "stella/mem.h"
#include "transport.h"

#define WAIT_MS 60000

static char logdir[] = "/tmp/stella-queue-itest-XXXXXX";

/* Every child still running; the teardown kills what a failed test left behind. */
static pid_t kids[16];

static inline void track(pid_t pid) {
  for (int i = 0; i < 16; i++)
    if (!kids[i]) {
      kids[i] = pid;
      return;
    }
}

static inline void untrack(pid_t pid) {
  for (int i = 0; i < 16; i++)
    if (kids[i] == pid)
      kids[i] = 0;
}

static inline int teardown(void **state) {
  for (int i = 0; i < 16; i++)
    if (kids[i]) {
      kill(kids[i], SIGKILL);
      waitpid(kids[i], NULL, 0);
      kids[i] = 0;
    }
  return 0;
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline redisContext *rconn(const char *url) {
  char *host = NULL;
  int port, db;
  st_error_t err = ST_ERROR_INIT;
  redisContext *c;
  redisReply *r;
  assert_int_equal(st_redis_url_parse(url, &host, &port, &db, &err), 0);
  c = redisConnect(host, port);
  st_free(host);
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  r = redisCommand(c, "SELECT %d", db);
  freeReplyObject(r);
  return c;
}

static inline long long rint_(redisContext *c, const char *fmt, const char *a) {
  redisReply *r = redisCommand(c, fmt, a);
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  freeReplyObject(r);
  return v;
}

/* Start build/bin/stellad with the given roles, stderr appended to log, the test
 * defaults below, then env (name, value pairs, NULL-terminated) on top. */
static inline pid_t spawn_roles(const char *url, const char *log, const char *roles,
                                const char *const *env) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char bin[1024];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
      _exit(126);
    dup2(fd, 2);
    setenv("STELLA_REDIS_URL", url, 1);
    setenv("STELLA_OPS_LISTEN", "127.0.0.1:0", 1);
    setenv("STELLA_JOB_LEASE_MS", "1000", 1);
    setenv("STELLA_JOB_BACKOFF_BASE_MS", "50", 1);
    setenv("STELLA_JOB_BACKOFF_CAP_MS", "200", 1);
    setenv("STELLA_WORKER_THREADS", "2", 1);
    unsetenv("STELLA_PG_URL"); /* the logging sink unless the test passes one */
    for (; env && env[0]; env += 2)
      setenv(env[0], env[1], 1);
    snprintf(bin, sizeof(bin), "%s/bin/stellad", getenv("STELLA_BIN_DIR"));
    execl(bin, bin, "--roles", roles, (char *)NULL);
    _exit(127);
  }
  track(pid);
  return pid;
}

static inline pid_t spawn(const char *url, const char *log, const char *const *env) {
  return spawn_roles(url, log, "worker", env);
}

/* Wait for exit; the status, or -1 if it did not exit within the bound (then killed). */
static inline int reap(pid_t pid) {
  int st;
  for (int i = 0; i < WAIT_MS / 50; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid && (untrack(pid), 1))
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    sleep_ms(50);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  untrack(pid);
  return -1;
}

static inline void stop(pid_t pid) {
  kill(pid, SIGTERM);
  assert_int_equal(reap(pid), 0); /* also: LeakSanitizer found nothing */
}

static inline void logpath(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s.log", logdir, name);
  unlink(out);
}

/* Lines of the log whose fields match: state (NULL any), job_id (NULL any), and an
 * optional substring of the reason. */
static inline int count(const char *log, const char *state, const char *job_id, const char *reason) {
  FILE *f = fopen(log, "r");
  char *line = NULL;
  size_t cap = 0;
  int n = 0;
  if (!f)
    return 0;
  while (getline(&line, &cap, f) > 0) {
    json_t *j = json_loads(line, 0, NULL);
    const char *s = json_string_value(json_object_get(j, "state"));
    const char *id = json_string_value(json_object_get(j, "job_id"));
    const char *why = json_string_value(json_object_get(j, "reason"));
    const char *msg = json_string_value(json_object_get(j, "msg"));
    if (msg && !strcmp(msg, "job.transition") &&
        (!state || (s && !strcmp(s, state))) && (!job_id || (id && !strcmp(id, job_id))) &&
        (!reason || (why && strstr(why, reason))))
      n++;
    json_decref(j);
  }
  free(line);
  fclose(f);
  return n;
}

static inline int log_has(const char *log, const char *needle) {
  FILE *f = fopen(log, "r");
  char *line = NULL;
  size_t cap = 0;
  int found = 0;
  while (f && !found && getline(&line, &cap, f) > 0)
    found = strstr(line, needle) != NULL;
  free(line);
  if (f)
    fclose(f);
  return found;
}

#define WAIT_UNTIL(cond)                                                                 \
  do {                                                                                   \
    int ok_ = 0;                                                                         \
    for (int i_ = 0; i_ < WAIT_MS / 50 && !(ok_ = (cond)); i_++)                         \
      sleep_ms(50);                                                                      \
    if (!ok_) {                                                                          \
      fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);   \
      fail();                                                                            \
    }                                                                                    \
  } while (0)

static inline int free_port(void) {
  struct sockaddr_in sa = {0};
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

/* Submit a probe job of tenant (the orchestrator path: XADD of an envelope); returns the
 * job id (st_free). */
static inline char *submit_as(redisContext *c, const char *tenant, const char *payload_json) {
  st_envelope_t e;
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  redisReply *r;
  char *id;
  st_envelope_init(&e);
  e.tenant = st_strdup(tenant);
  e.type = st_strdup("probe");
  e.attempt = 1;
  e.payload = json_loads(payload_json, 0, NULL);
  assert_int_equal(st_envelope_new_id(&e, &err), 0);
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), 0);
  r = redisCommand(c, "XADD stella:jobs:probe * e %b", b.data, b.len);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
  id = st_strdup(e.job_id);
  st_envelope_release(&e);
  st_buf_release(&b);
  return id;
}

static inline char *submit(redisContext *c, const char *payload_json) {
  return submit_as(c, "acme", payload_json);
}

#endif
