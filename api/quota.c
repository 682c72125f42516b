/* quota.c: per-tenant request rate as a token bucket (rate tokens per second, up to
 * burst). Buckets live in a small hash table under one mutex; when it fills, buckets
 * that have refilled completely (idle tenants) are dropped, so the table stays bounded
 * however many tenants call. Time is the monotonic clock in milliseconds. */
#include <math.h>
#include <string.h>

#include "api_internal.h"
#include "stella/mem.h"

#define NSLOTS 1024
#define MAX_ENTRIES 8192

typedef struct entry_s {
  char tenant[ST_JWT_TENANT_MAX + 1];
  st__bucket_t b;
  struct entry_s *next;
} entry_t;

struct st__quota_s {
  pthread_mutex_t lock;
  double rate, burst;
  entry_t *slots[NSLOTS];
  size_t count;
};

long st__bucket_take(st__bucket_t *b, int64_t now_ms, double rate, double burst) {
  double wait;
  if (now_ms > b->last_ms) {
    b->tokens = fmin(burst, b->tokens + (double)(now_ms - b->last_ms) * rate / 1000.0);
    b->last_ms = now_ms;
  }
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    return 0;
  }
  wait = ceil((1.0 - b->tokens) / rate);
  return wait < 1 ? 1 : (long)wait;
}

int st__quota_new(st__quota_t **out, double rate, double burst) {
  st__quota_t *q = st_calloc(1, sizeof(*q));
  if (!(*out = q))
    return ST_ENOMEM;
  pthread_mutex_init(&q->lock, NULL);
  q->rate = rate;
  q->burst = burst < 1 ? 1 : burst;
  return 0;
}

void st__quota_free(st__quota_t *q) {
  if (!q)
    return;
  for (size_t i = 0; i < NSLOTS; i++)
    for (entry_t *e = q->slots[i], *next; e; e = next) {
      next = e->next;
      st_free(e);
    }
  pthread_mutex_destroy(&q->lock);
  st_free(q);
}

static size_t slot_of(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h % NSLOTS;
}

/* Drop buckets that are full again at now_ms: forgetting them loses nothing. */
static void prune(st__quota_t *q, int64_t now_ms) {
  for (size_t i = 0; i < NSLOTS; i++) {
    entry_t **pp = &q->slots[i];
    while (*pp) {
      entry_t *e = *pp;
      double t = e->b.tokens + (double)(now_ms - e->b.last_ms) * q->rate / 1000.0;
      if (t >= q->burst) {
        *pp = e->next;
        st_free(e);
        q->count--;
      } else {
        pp = &e->next;
      }
    }
  }
}

long st__quota_take(st__quota_t *q, const char *tenant, int64_t now_ms) {
  size_t slot = slot_of(tenant);
  entry_t *e;
  long wait;

  if (q->rate <= 0)
    return 0;
  pthread_mutex_lock(&q->lock);
  for (e = q->slots[slot]; e && strcmp(e->tenant, tenant) != 0; e = e->next)
    ;
  if (!e) {
    if (q->count >= MAX_ENTRIES)
      prune(q, now_ms);
    /* a full table of busy tenants, or no memory: serve rather than refuse everyone */
    if (q->count >= MAX_ENTRIES || !(e = st_calloc(1, sizeof(*e)))) {
      pthread_mutex_unlock(&q->lock);
      return 0;
    }
    strncpy(e->tenant, tenant, ST_JWT_TENANT_MAX);
    e->b.tokens = q->burst;
    e->b.last_ms = now_ms;
    e->next = q->slots[slot];
    q->slots[slot] = e;
    q->count++;
  }
  wait = st__bucket_take(&e->b, now_ms, q->rate, q->burst);
  pthread_mutex_unlock(&q->lock);
  return wait;
}
