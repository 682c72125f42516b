/* metrics.c: the metrics registry (families of series, atomics for values) and the
 * Prometheus 0.0.4 text renderer; plus the liveness/readiness state. */
#include "stella/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "stella/mem.h"

typedef enum { K_COUNTER, K_GAUGE, K_HISTOGRAM } kind_t;

static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                   2.5,   5,    10,    30,   60,  120,  300, 600};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

struct st_metric_s {
  struct st_metric_s *next;
  struct family_s *fam;
  char *type, *outcome;
  _Atomic uint64_t value; /* double bits: counter/gauge value, histogram sum */
  _Atomic uint64_t count; /* histogram */
  _Atomic uint64_t buckets[NBUCKETS]; /* histogram, not cumulative */
};

typedef struct family_s {
  struct family_s *next;
  char *name, *help;
  kind_t kind;
  st_metric_t *series, **tail;
} family_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static family_t *families, **families_tail = &families;

static uint64_t d2u(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}
static double u2d(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

static int name_ok(const char *s) {
  if (!s || !*s || (*s >= '0' && *s <= '9'))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
      return 0;
  return 1;
}

static int same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static st_metric_t *get(kind_t kind, const char *name, const char *help, const char *type,
                        const char *outcome) {
  family_t *f;
  st_metric_t *m = NULL;

  if (!name_ok(name) || !help)
    return NULL;
  pthread_mutex_lock(&lock);
  for (f = families; f; f = f->next)
    if (!strcmp(f->name, name))
      break;
  if (f && (f->kind != kind || strcmp(f->help, help)))
    goto done;
  if (!f) {
    if (!(f = st_calloc(1, sizeof(*f))))
      goto done;
    f->name = st_strdup(name);
    f->help = st_strdup(help);
    if (!f->name || !f->help) {
      st_free(f->name);
      st_free(f->help);
      st_free(f);
      goto done;
    }
    f->kind = kind;
    f->tail = &f->series;
    *families_tail = f;
    families_tail = &f->next;
  }
  for (m = f->series; m; m = m->next)
    if (same(m->type, type) && same(m->outcome, outcome))
      goto done;
  if (!(m = st_calloc(1, sizeof(*m))))
    goto done;
  m->fam = f;
  m->type = type ? st_strdup(type) : NULL;
  m->outcome = outcome ? st_strdup(outcome) : NULL;
  if ((type && !m->type) || (outcome && !m->outcome)) {
    st_free(m->type);
    st_free(m->outcome);
    st_free(m);
    m = NULL;
    goto done;
  }
  *f->tail = m;
  f->tail = &m->next;
done:
  pthread_mutex_unlock(&lock);
  return m;
}

st_metric_t *st_metric_counter(const char *name, const char *help, const char *type,
                               const char *outcome) {
  return get(K_COUNTER, name, help, type, outcome);
}
st_metric_t *st_metric_gauge(const char *name, const char *help, const char *type,
                             const char *outcome) {
  return get(K_GAUGE, name, help, type, outcome);
}
st_metric_t *st_metric_histogram(const char *name, const char *help, const char *type,
                                 const char *outcome) {
  return get(K_HISTOGRAM, name, help, type, outcome);
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
  uint64_t old = atomic_load(p);
  while (!atomic_compare_exchange_weak(p, &old, d2u(u2d(old) + v)))
    ;
}

void st_metric_inc(st_metric_t *m) { st_metric_add(m, 1); }

void st_metric_add(st_metric_t *m, double v) {
  if (!m || m->fam->kind == K_HISTOGRAM || !isfinite(v) || (m->fam->kind == K_COUNTER && v < 0))
    return;
  atomic_add_double(&m->value, v);
}

void st_metric_set(st_metric_t *m, double v) {
  if (m && m->fam->kind == K_GAUGE && isfinite(v))
    atomic_store(&m->value, d2u(v));
}

void st_metric_observe(st_metric_t *m, double v) {
  if (!m || m->fam->kind != K_HISTOGRAM || !isfinite(v))
    return;
  for (size_t i = 0; i < NBUCKETS; i++) {
    if (v <= bucket_le[i]) {
      atomic_fetch_add(&m->buckets[i], 1);
      break;
    }
  }
  atomic_add_double(&m->value, v);
  atomic_fetch_add(&m->count, 1);
}

double st_metric_value(const st_metric_t *m) {
  if (!m)
    return 0;
  if (m->fam->kind == K_HISTOGRAM)
    return (double)atomic_load(&((st_metric_t *)m)->count);
  return u2d(atomic_load(&((st_metric_t *)m)->value));
}

static int add_label_value(st_buf_t *b, const char *v) {
  int rc = 0;
  for (; *v && !rc; v++) {
    if (*v == '\\')
      rc = st_buf_adds(b, "\\\\");
    else if (*v == '"')
      rc = st_buf_adds(b, "\\\"");
    else if (*v == '\n')
      rc = st_buf_adds(b, "\\n");
    else
      rc = st_buf_addc(b, *v);
  }
  return rc;
}

/* name{type="..",outcome="..",le=".."} value */
static int add_sample(st_buf_t *b, const char *name, const char *suffix, const st_metric_t *m,
                      const char *le, double v) {
  int rc = st_buf_addf(b, "%s%s", name, suffix), first = 1;
  const char *keys[] = {"type", "outcome", "le"};
  const char *vals[] = {m->type, m->outcome, le};

  for (int i = 0; i < 3 && !rc; i++) {
    if (!vals[i])
      continue;
    rc = st_buf_addf(b, "%s%s=\"", first ? "{" : ",", keys[i]);
    if (!rc)
      rc = add_label_value(b, vals[i]);
    if (!rc)
      rc = st_buf_addc(b, '"');
    first = 0;
  }
  if (!rc && !first)
    rc = st_buf_addc(b, '}');
  return rc ? rc : st_buf_addf(b, " %.17g\n", v);
}

static int add_help(st_buf_t *b, const char *help) {
  int rc = 0;
  for (; *help && !rc; help++)
    rc = *help == '\\' ? st_buf_adds(b, "\\\\")
         : *help == '\n' ? st_buf_adds(b, "\\n")
                         : st_buf_addc(b, *help);
  return rc;
}

int st_metrics_render(st_buf_t *out) {
  static const char *const kinds[] = {"counter", "gauge", "histogram"};
  int rc = 0;

  pthread_mutex_lock(&lock);
  for (family_t *f = families; f && !rc; f = f->next) {
    rc = st_buf_addf(out, "# HELP %s ", f->name);
    if (!rc)
      rc = add_help(out, f->help);
    if (!rc)
      rc = st_buf_addf(out, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
    for (st_metric_t *m = f->series; m && !rc; m = m->next) {
      if (f->kind != K_HISTOGRAM) {
        rc = add_sample(out, f->name, "", m, NULL, u2d(atomic_load(&m->value)));
        continue;
      }
      uint64_t cum = 0;
      char le[32];
      for (size_t i = 0; i < NBUCKETS && !rc; i++) {
        cum += atomic_load(&m->buckets[i]);
        snprintf(le, sizeof(le), "%g", bucket_le[i]);
        rc = add_sample(out, f->name, "_bucket", m, le, (double)cum);
      }
      if (!rc)
        rc = add_sample(out, f->name, "_bucket", m, "+Inf", (double)atomic_load(&m->count));
      if (!rc)
        rc = add_sample(out, f->name, "_sum", m, NULL, u2d(atomic_load(&m->value)));
      if (!rc)
        rc = add_sample(out, f->name, "_count", m, NULL, (double)atomic_load(&m->count));
    }
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

/* ---- health ------------------------------------------------------------- */

static _Atomic uint64_t last_beat_ms;
static atomic_int ready_flag;
static char ready_reason[256] = "starting";

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void st_health_beat(void) { atomic_store(&last_beat_ms, mono_ms()); }

int st_health_live(uint64_t max_age_ms) {
  uint64_t beat = atomic_load(&last_beat_ms);
  return beat != 0 && mono_ms() - beat <= max_age_ms;
}

void st_health_set_ready(int ready, const char *reason) {
  pthread_mutex_lock(&lock);
  snprintf(ready_reason, sizeof(ready_reason), "%s", reason ? reason : "");
  atomic_store(&ready_flag, ready ? 1 : 0);
  pthread_mutex_unlock(&lock);
}

int st_health_ready(st_buf_t *reason_out) {
  int r;
  pthread_mutex_lock(&lock);
  r = atomic_load(&ready_flag);
  if (reason_out && st_buf_adds(reason_out, ready_reason))
    r = 0;
  pthread_mutex_unlock(&lock);
  return r;
}
