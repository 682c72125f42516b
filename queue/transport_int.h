/* transport_int.h: state shared by transport.c (connections, claiming) and
 * transport_ops.c (settle queue, delayed mover, lease touch, queue stats). Internal. */
#ifndef STELLA_QUEUE_TRANSPORT_INT_H
#define STELLA_QUEUE_TRANSPORT_INT_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "stella/metrics.h"
#include "transport.h"

typedef struct st__conn_s {
  st_transport_t *t;
  redisAsyncContext *ac;
  uv_timer_t timer; /* reconnect backoff */
  unsigned backoff_ms;
  int up;           /* connected and set up */
  int blocking;     /* the XREADGROUP connection */
  int closed;       /* timer handle closed */
  /* watchdog: hiredis 0.14's libuv adapter drops poll errors, so a connection the server
   * reset can look alive forever. cmd: a PING outstanding since probe_ms; blk: the read or
   * claim outstanding since probe_ms. Past its bound the context is freed (reconnect). */
  int probe_out;
  uint64_t probe_ms;
} st__conn_t;

/* An entry delivered to the supervisor and not yet settled or released. */
typedef struct st__held_s {
  struct st__held_s *next;
  char *stream, *entry_id;
} st__held_t;

typedef struct st__op_s {
  struct st__op_s *next, **prev;
  const char *stream, *entry_id; /* into argv */
  int argc;
  char **argv;
  size_t *argvlen;
  int sent; /* awaiting a reply */
} st__op_t;

typedef struct st__type_s {
  char *name, *stream;
  unsigned reserved; /* slots promised to reads/claims in flight */
  char cursor[48];   /* XAUTOCLAIM cursor */
  st_metric_t *m_depth, *m_pending, *m_lag, *m_consumers;
} st__type_t;

struct st_transport_s {
  uv_loop_t *loop;
  st_transport_cbs_t cbs;
  char *host, *consumer;
  int port, db;
  uint64_t lease_ms;
  st__type_t *types;
  int ntypes;
  st__conn_t cmd, blk;
  uv_timer_t reclaim_timer, mover_timer, stats_timer;
  int timers_closed;
  int groups_missing;  /* XGROUP CREATE replies outstanding */
  int reading;         /* drain script or XREADGROUP outstanding */
  int read_drains;     /* the outstanding read is the drain script */
  int block_next;      /* the last drain found nothing: the next read blocks */
  int claiming;        /* XAUTOCLAIM outstanding (claim connection) */
  int claim_due;       /* the reclaim timer fired */
  char block_ms[24];   /* XREADGROUP BLOCK */
  int moving;          /* mover script outstanding */
  int stopped;         /* no more claiming */
  int closing;
  st__op_t *ops;       /* settle queue */
  st__held_t *held;    /* delivered, not yet settled */
  size_t nops;
  unsigned rr;         /* round-robin start over types */
  void (*close_done)(void *);
  void *close_ud;
  st_metric_t *m_delayed, *m_dlq, *m_reconnects;
};

/* transport_ops.c */
void st__ops_flush(st_transport_t *t);
void st__ops_free_all(st_transport_t *t);
void st__mover_tick(uv_timer_t *h);
void st__stats_tick(uv_timer_t *h); /* also the connections' watchdog */
/* Whether stream/entry_id is held or has a settle queued; st__unhold forgets a held one. */
int st__is_held(st_transport_t *t, const char *stream, const char *entry_id, size_t id_len);
void st__unhold(st_transport_t *t, const char *stream, const char *entry_id);
/* transport.c */
uint64_t st__now_mono_ms(void);
st_delivery_t *st__delivery_from(st_transport_t *t, int ti, const redisReply *entry);

#endif
