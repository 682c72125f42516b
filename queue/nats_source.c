/* nats_source.c: JetStream durable pull consumer over libnats (3.4). */
#include "nats_source.h"

#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

#include "stella/mem.h"

struct st_nats_source_s {
  natsConnection *nc;
  jsCtx *js;
  natsSubscription *sub;
  char *name;        /* "nats:<stream>" */
  char *dlq_subject;
};

static int nfail(st_error_t *err, const char *what, natsStatus s, jsErrCode jerr) {
  const char *last = nats_GetLastError(NULL);
  return st_fail(err, s == NATS_NO_MEMORY ? ST_ENOMEM : ST_ENET, "nats: %s: %s%s%s (js %d)",
                 what, natsStatus_GetText(s), last ? ": " : "", last ? last : "", (int)jerr);
}

static int ensure_stream(st_nats_source_t *src, const st_nats_source_opts_t *o,
                         st_error_t *err) {
  jsStreamInfo *si = NULL;
  jsStreamConfig sc;
  jsErrCode jerr = 0;
  const char *subjects[1] = {o->subject};
  natsStatus s = js_GetStreamInfo(&si, src->js, o->stream, NULL, &jerr);

  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return 0;
  }
  if (s != NATS_NOT_FOUND || !o->create_stream)
    return nfail(err, "stream lookup", s, jerr);
  jsStreamConfig_Init(&sc);
  sc.Name = o->stream;
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  if ((s = js_AddStream(&si, src->js, &sc, NULL, &jerr)) != NATS_OK)
    return nfail(err, "create stream", s, jerr);
  jsStreamInfo_Destroy(si);
  return 0;
}

int st_nats_source_open(const st_nats_source_opts_t *o, st_nats_source_t **out,
                        st_error_t *err) {
  st_nats_source_t *src = NULL;
  natsOptions *no = NULL;
  jsSubOptions so;
  jsErrCode jerr = 0;
  natsStatus s;
  int rc = 0;

  *out = NULL;
  if (!o->url || !o->stream || !*o->stream || !o->subject || !*o->subject || !o->durable ||
      !*o->durable || strchr(o->durable, '.'))
    return st_fail(err, ST_EINVAL, "nats: url, stream, subject and a durable name without "
                                   "'.' are required");
  if (!(src = st_calloc(1, sizeof(*src))) ||
      !(src->dlq_subject = st_strdup(o->dlq_subject ? o->dlq_subject : "stella.dlq.timeline")) ||
      !(src->name = st_malloc(strlen(o->stream) + 6))) {
    rc = st_fail(err, ST_ENOMEM, "nats: out of memory");
    goto done;
  }
  sprintf(src->name, "nats:%s", o->stream);
  if ((s = natsOptions_Create(&no)) != NATS_OK || (s = natsOptions_SetURL(no, o->url)) ||
      (s = natsOptions_SetTimeout(no, 5000)) ||
      (s = natsConnection_Connect(&src->nc, no)) != NATS_OK) {
    rc = nfail(err, o->url, s, 0);
    goto done;
  }
  if ((s = natsConnection_JetStream(&src->js, src->nc, NULL)) != NATS_OK) {
    rc = nfail(err, "jetstream", s, 0);
    goto done;
  }
  if ((rc = ensure_stream(src, o, err)))
    goto done;
  jsSubOptions_Init(&so);
  so.Stream = o->stream;
  so.Config.Durable = o->durable;
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.AckWait = (o->ack_wait_ms ? o->ack_wait_ms : 30000) * 1000000LL;
  so.Config.MaxAckPending = o->max_ack_pending ? o->max_ack_pending : 10000;
  if ((s = js_PullSubscribe(&src->sub, src->js, o->subject, o->durable, NULL, &so, &jerr)) !=
      NATS_OK) {
    rc = nfail(err, "pull subscribe", s, jerr);
    goto done;
  }
  *out = src;
  src = NULL;
done:
  natsOptions_Destroy(no);
  st_nats_source_close(src);
  return rc;
}

void st_nats_source_close(st_nats_source_t *src) {
  if (!src)
    return;
  natsSubscription_Destroy(src->sub); /* v3.4: keeps the durable consumer */
  jsCtx_Destroy(src->js);
  natsConnection_Destroy(src->nc);
  st_free(src->name);
  st_free(src->dlq_subject);
  st_free(src);
}

const char *st_nats_source_name(const st_nats_source_t *src) { return src->name; }

void st_nats_shutdown(void) { nats_Close(); }

void st_nats_batch_release(st_nats_batch_t *b) {
  natsMsgList *list = b->priv;
  if (list) {
    natsMsgList_Destroy(list);
    st_free(list);
  }
  st_free(b->msgs);
  memset(b, 0, sizeof(*b));
}

static const char *header(natsMsg *m, const char *key) {
  const char *v = NULL;
  return natsMsgHeader_Get(m, key, &v) == NATS_OK ? v : NULL;
}

int st_nats_fetch(st_nats_source_t *src, size_t max, int timeout_ms, st_nats_batch_t *out,
                  st_error_t *err) {
  natsMsgList *list = NULL;
  jsErrCode jerr = 0;
  natsStatus s;
  int rc = 0;

  memset(out, 0, sizeof(*out));
  if (max == 0 || max > ST_NATS_FETCH_MAX || timeout_ms <= 0)
    return st_fail(err, ST_EINVAL, "nats: fetch of 1..%d messages with a positive timeout",
                   ST_NATS_FETCH_MAX);
  if (!(list = st_calloc(1, sizeof(*list))))
    return st_fail(err, ST_ENOMEM, "nats: out of memory");
  out->priv = list;
  s = natsSubscription_Fetch(list, src->sub, (int)max, timeout_ms, &jerr);
  if (s == NATS_TIMEOUT && list->Count == 0)
    return 0;
  if (s != NATS_OK && s != NATS_TIMEOUT) {
    rc = nfail(err, "fetch", s, jerr);
    goto done;
  }
  if (list->Count && !(out->msgs = st_calloc((size_t)list->Count, sizeof(*out->msgs)))) {
    rc = st_fail(err, ST_ENOMEM, "nats: out of memory");
    goto done;
  }
  for (int i = 0; i < list->Count; i++) {
    natsMsg *m = list->Msgs[i];
    st_nats_msg_t *d = &out->msgs[i];
    jsMsgMetaData *meta = NULL;
    if ((s = natsMsg_GetMetaData(&meta, m)) != NATS_OK) {
      rc = nfail(err, "message metadata", s, 0);
      goto done;
    }
    d->stream_seq = meta->Sequence.Stream;
    d->delivered = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
    d->data = natsMsg_GetData(m);
    d->len = (size_t)natsMsg_GetDataLength(m);
    d->event_id = header(m, "Stella-Event-Id");
    d->tenant = header(m, "Stella-Tenant");
    d->type = header(m, "Stella-Type");
    out->n = (size_t)i + 1;
  }
done:
  if (rc)
    st_nats_batch_release(out);
  return rc;
}

static natsMsg *msg_at(st_nats_batch_t *b, size_t i) {
  natsMsgList *list = b->priv;
  return list && i < b->n ? list->Msgs[i] : NULL;
}

int st_nats_ack(st_nats_batch_t *b, size_t i, st_error_t *err) {
  natsMsg *m = msg_at(b, i);
  jsErrCode jerr = 0;
  natsStatus s;
  if (!m)
    return st_fail(err, ST_EINVAL, "nats: no message %zu in the batch", i);
  s = natsMsg_AckSync(m, NULL, &jerr);
  return s == NATS_OK ? 0 : nfail(err, "ack", s, jerr);
}

int st_nats_nak(st_nats_batch_t *b, size_t i, st_error_t *err) {
  natsMsg *m = msg_at(b, i);
  natsStatus s;
  if (!m)
    return st_fail(err, ST_EINVAL, "nats: no message %zu in the batch", i);
  s = natsMsg_Nak(m, NULL);
  return s == NATS_OK ? 0 : nfail(err, "nak", s, 0);
}

int st_nats_dead_letter(st_nats_source_t *src, st_nats_batch_t *b, size_t i,
                        const char *reason, st_error_t *err) {
  natsMsg *m = msg_at(b, i), *d = NULL;
  char seq[24];
  natsStatus s;
  int rc = 0;

  if (!m)
    return st_fail(err, ST_EINVAL, "nats: no message %zu in the batch", i);
  snprintf(seq, sizeof(seq), "%llu", (unsigned long long)b->msgs[i].stream_seq);
  if ((s = natsMsg_Create(&d, src->dlq_subject, NULL, natsMsg_GetData(m),
                          natsMsg_GetDataLength(m))) != NATS_OK ||
      (s = natsMsgHeader_Set(d, "Stella-Dlq-Reason", reason)) != NATS_OK ||
      (s = natsMsgHeader_Set(d, "Stella-Dlq-Source", src->name)) != NATS_OK ||
      (s = natsMsgHeader_Set(d, "Stella-Dlq-Seq", seq)) != NATS_OK ||
      (s = natsConnection_PublishMsg(src->nc, d)) != NATS_OK ||
      (s = natsConnection_Flush(src->nc)) != NATS_OK) {
    rc = nfail(err, "dead-letter publish", s, 0);
    goto done;
  }
  if ((s = natsMsg_Term(m, NULL)) != NATS_OK)
    rc = nfail(err, "term", s, 0);
done:
  natsMsg_Destroy(d);
  return rc;
}

int st_nats_backlog(st_nats_source_t *src, long long *pending, long long *ack_pending,
                    st_error_t *err) {
  jsConsumerInfo *ci = NULL;
  jsErrCode jerr = 0;
  natsStatus s = natsSubscription_GetConsumerInfo(&ci, src->sub, NULL, &jerr);

  *pending = *ack_pending = -1;
  if (s != NATS_OK)
    return nfail(err, "consumer info", s, jerr);
  *pending = ci->NumPending > (uint64_t)INT64_MAX ? INT64_MAX : (long long)ci->NumPending;
  *ack_pending = (long long)ci->NumAckPending;
  jsConsumerInfo_Destroy(ci);
  return 0;
}
