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
} st__conn_t;

typedef struct st__op_s {
  struct st__op_s *next, **prev;
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
  int reading;         /* XREADGROUP outstanding */
  int claiming;        /* XAUTOCLAIM outstanding */
  int moving;          /* mover script outstanding */
  int stopped;         /* no more claiming */
  int closing;
  st__op_t *ops;       /* settle queue */
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
void st__stats_tick(uv_timer_t *h);
/* transport.c */
st_delivery_t *st__delivery_from(st_transport_t *t, int ti, const redisReply *entry);

#endif
