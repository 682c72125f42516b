/* cron.c: cron expression parser and UTC tick search (see cron.h).
 * Each field parses into a bit mask. The search walks calendar units from the largest:
 * a month that does not match jumps to the next (or, backwards, the previous) month, a
 * day to the next day, and so on, with proleptic Gregorian day arithmetic (Howard
 * Hinnant's days_from_civil), so it never consults the C library's time zone. */
#include "cron.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

typedef struct field_s {
  const char *name;
  int lo, hi;
  const char *const *names; /* accepted names, NULL-terminated */
  int name_base;            /* value of names[0] */
} field_t;

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const field_t F_SEC = {"second", 0, 59, NULL, 0};
static const field_t F_MIN = {"minute", 0, 59, NULL, 0};
static const field_t F_HOUR = {"hour", 0, 23, NULL, 0};
static const field_t F_DOM = {"day of month", 1, 31, NULL, 0};
static const field_t F_MON = {"month", 1, 12, months, 1};
static const field_t F_DOW = {"day of week", 0, 7, days, 0};

/* A number or a name at *p; advances *p. */
static int atom(const field_t *f, const char **p, const char *end, int *v, st_error_t *err) {
  const char *s = *p;
  if (s < end && isdigit((unsigned char)*s)) {
    long n = 0;
    int digits = 0;
    while (s < end && isdigit((unsigned char)*s)) {
      if (++digits > 4)
        return st_fail(err, ST_EINVAL, "cron: %s: number too long", f->name);
      n = n * 10 + (*s++ - '0');
    }
    if (n < f->lo || n > f->hi)
      return st_fail(err, ST_EINVAL, "cron: %s: %ld is outside %d-%d", f->name, n, f->lo, f->hi);
    *v = (int)n;
    *p = s;
    return 0;
  }
  if (f->names && end - s >= 3) {
    for (int i = 0; f->names[i]; i++)
      if (strncasecmp(s, f->names[i], 3) == 0 && (end - s == 3 || !isalpha((unsigned char)s[3]))) {
        *v = f->name_base + i;
        *p = s + 3;
        return 0;
      }
  }
  return st_fail(err, ST_EINVAL, "cron: %s: expected a number%s at \"%.*s\"", f->name,
                 f->names ? " or a name" : "", (int)(end - s > 16 ? 16 : end - s), s);
}

/* One field [s, end) into mask; *star when it starts with '*'. */
static int field(const field_t *f, const char *s, const char *end, uint64_t *mask, int *star,
                 st_error_t *err) {
  int rc;
  *mask = 0;
  *star = s < end && *s == '*';
  for (;;) {
    const char *e = memchr(s, ',', (size_t)(end - s));
    int a, b, step = 1, single = 0;
    if (!e)
      e = end;
    if (s == e)
      return st_fail(err, ST_EINVAL, "cron: %s: empty list element", f->name);
    if (*s == '*') {
      a = f->lo;
      b = f->hi;
      s++;
    } else {
      if ((rc = atom(f, &s, e, &a, err)))
        return rc;
      b = a;
      single = 1;
      if (s < e && *s == '-') {
        s++;
        if ((rc = atom(f, &s, e, &b, err)))
          return rc;
        if (b < a)
          return st_fail(err, ST_EINVAL, "cron: %s: range %d-%d is reversed", f->name, a, b);
        single = 0;
      }
    }
    if (s < e && *s == '/') {
      long n = 0;
      int digits = 0;
      if (single)
        return st_fail(err, ST_EINVAL, "cron: %s: a step needs * or a range, not %d", f->name, a);
      for (s++; s < e && isdigit((unsigned char)*s) && digits < 5; s++, digits++)
        n = n * 10 + (*s - '0');
      if (!digits || n < 1 || n > f->hi - f->lo + 1)
        return st_fail(err, ST_EINVAL, "cron: %s: step must be 1-%d", f->name, f->hi - f->lo + 1);
      step = (int)n;
    }
    if (s != e)
      return st_fail(err, ST_EINVAL, "cron: %s: unexpected \"%.*s\"", f->name,
                     (int)(e - s > 16 ? 16 : e - s), s);
    for (int v = a; v <= b; v += step)
      *mask |= (uint64_t)1 << v;
    if (e == end)
      return 0;
    s = e + 1;
  }
}

static const struct {
  const char *name, *expr;
} macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
              {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
              {"@hourly", "0 * * * *"}};

int st_cron_parse(const char *expr, int flags, st_cron_t *out, st_error_t *err) {
  const field_t *order5[] = {&F_MIN, &F_HOUR, &F_DOM, &F_MON, &F_DOW};
  const field_t *order6[] = {&F_SEC, &F_MIN, &F_HOUR, &F_DOM, &F_MON, &F_DOW};
  const char *start[7], *stop[7], *p;
  uint64_t masks[6];
  int stars[6], n = 0, rc;
  size_t len;

  memset(out, 0, sizeof(*out));
  if (!expr || (len = strnlen(expr, ST_CRON_MAX_LEN + 1)) == 0)
    return st_fail(err, ST_EINVAL, "cron: empty expression");
  if (len > ST_CRON_MAX_LEN)
    return st_fail(err, ST_EINVAL, "cron: longer than %d characters", ST_CRON_MAX_LEN);
  while (*expr == ' ' || *expr == '\t')
    expr++;
  if (*expr == '@') {
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
      size_t m = strlen(macros[i].name);
      if (strncasecmp(expr, macros[i].name, m) == 0 && strspn(expr + m, " \t") == strlen(expr + m))
        return st_cron_parse(macros[i].expr, 0, out, err);
    }
    return st_fail(err, ST_EINVAL, "cron: unknown macro \"%.16s\"", expr);
  }
  for (p = expr; *p;) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    if (n == 6)
      return st_fail(err, ST_EINVAL, "cron: more than %d fields",
                     flags & ST_CRON_SECONDS ? 6 : 5);
    start[n] = p;
    while (*p && *p != ' ' && *p != '\t')
      p++;
    stop[n++] = p;
  }
  if (n != 5 && !(n == 6 && (flags & ST_CRON_SECONDS)))
    return st_fail(err, ST_EINVAL, "cron: expected 5 fields (minute hour day-of-month month "
                                   "day-of-week), got %d", n);
  for (int i = 0; i < n; i++)
    if ((rc = field(n == 6 ? order6[i] : order5[i], start[i], stop[i], &masks[i], &stars[i],
                    err)))
      return rc;
  if (n == 5) {
    memmove(masks + 1, masks, 5 * sizeof(masks[0]));
    memmove(stars + 1, stars, 5 * sizeof(stars[0]));
    masks[0] = 1; /* second 0 */
  }
  out->sec = masks[0];
  out->min = masks[1];
  out->hour = (uint32_t)masks[2];
  out->dom = (uint32_t)masks[3];
  out->mon = (uint32_t)masks[4];
  out->dow = (uint32_t)(masks[5] & 0x7f) | (masks[5] >> 7 & 1); /* 7 is Sunday */
  out->dom_star = stars[3];
  out->dow_star = stars[5];
  return 0;
}

/* ---- calendar ------------------------------------------------------------ */

static int64_t floordiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = floordiv(y, 400);
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  int64_t era, doe, yoe, doy, mp;
  z += 719468;
  era = floordiv(z, 146097);
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

typedef struct tm_s {
  int64_t days, y;
  int m, d, wd, h, mi, s;
} tm_t;

static void split(int64_t t, tm_t *tm) {
  int64_t sod;
  tm->days = floordiv(t, 86400);
  sod = t - tm->days * 86400;
  civil_from_days(tm->days, &tm->y, &tm->m, &tm->d);
  tm->wd = (int)(((tm->days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
  tm->h = (int)(sod / 3600);
  tm->mi = (int)(sod / 60 % 60);
  tm->s = (int)(sod % 60);
}

static int day_ok(const st_cron_t *c, const tm_t *tm) {
  int dom = (c->dom >> tm->d) & 1, dow = (c->dow >> tm->wd) & 1;
  return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

int st_cron_matches(const st_cron_t *c, int64_t t) {
  tm_t tm;
  split(t, &tm);
  return (c->mon >> tm.m & 1) && day_ok(c, &tm) && (c->hour >> tm.h & 1) &&
         (c->min >> tm.mi & 1) && (c->sec >> tm.s & 1);
}

int st_cron_next(const st_cron_t *c, int64_t after, int64_t *out) {
  int64_t t = after + 1, limit = after + ST_CRON_HORIZON;
  tm_t tm;

  while (t <= limit) {
    split(t, &tm);
    if (!(c->mon >> tm.m & 1)) {
      t = days_from_civil(tm.m == 12 ? tm.y + 1 : tm.y, tm.m == 12 ? 1 : tm.m + 1, 1) * 86400;
    } else if (!day_ok(c, &tm)) {
      t = (tm.days + 1) * 86400;
    } else if (!(c->hour >> tm.h & 1)) {
      t = tm.days * 86400 + (tm.h + 1) * 3600;
    } else if (!(c->min >> tm.mi & 1)) {
      t = tm.days * 86400 + tm.h * 3600 + (tm.mi + 1) * 60;
    } else if (!(c->sec >> tm.s & 1)) {
      t++;
    } else {
      *out = t;
      return 0;
    }
  }
  return ST_ENOENT;
}

int st_cron_prev(const st_cron_t *c, int64_t at, int64_t *out) {
  int64_t t = at, limit = at - ST_CRON_HORIZON;
  tm_t tm;

  while (t >= limit) {
    split(t, &tm);
    if (!(c->mon >> tm.m & 1)) {
      t = days_from_civil(tm.y, tm.m, 1) * 86400 - 1;
    } else if (!day_ok(c, &tm)) {
      t = tm.days * 86400 - 1;
    } else if (!(c->hour >> tm.h & 1)) {
      t = tm.days * 86400 + tm.h * 3600 - 1;
    } else if (!(c->min >> tm.mi & 1)) {
      t = tm.days * 86400 + tm.h * 3600 + tm.mi * 60 - 1;
    } else if (!(c->sec >> tm.s & 1)) {
      t--;
    } else {
      *out = t;
      return 0;
    }
  }
  return ST_ENOENT;
}
