/* router.c: method + path matching with `{name}` whole-segment parameters. The most
 * specific route wins (most literal segments), so /evidence/holds beats
 * /evidence/{id}. A parameter never matches "." or "..", and a path with an empty
 * segment ("//", trailing "/") matches nothing. */
#include <string.h>

#include "api_internal.h"
#include "stella/mem.h"

void st__router_init(st__router_t *r) { memset(r, 0, sizeof(*r)); }

static void route_release(st__route_t *rt) {
  st_free(rt->method);
  st_free(rt->pattern);
  st_free(rt->scope);
  for (int i = 0; i < rt->nsegs; i++)
    st_free(rt->segs[i]);
}

void st__router_release(st__router_t *r) {
  for (size_t i = 0; i < r->n; i++)
    route_release(&r->routes[i]);
  st_free(r->routes);
  memset(r, 0, sizeof(*r));
}

static int is_param(const char *seg) {
  size_t n = strlen(seg);
  return n > 2 && seg[0] == '{' && seg[n - 1] == '}';
}

static int name_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return 0;
  return n > 0;
}

static int split_pattern(st__route_t *rt, const char *pattern, st_error_t *err) {
  const char *p = pattern + 1;
  int params = 0;

  if (strcmp(pattern, "/") == 0)
    return 0;
  while (1) {
    size_t n = strcspn(p, "/");
    if (n == 0)
      return st_fail(err, ST_EINVAL, "route %s: empty segment", pattern);
    if (rt->nsegs == ST__MAX_SEGMENTS)
      return st_fail(err, ST_EINVAL, "route %s: more than %d segments", pattern,
                     ST__MAX_SEGMENTS);
    if (!(rt->segs[rt->nsegs] = st_strndup(p, n)))
      return st_fail(err, ST_ENOMEM, "route %s: out of memory", pattern);
    if (is_param(rt->segs[rt->nsegs++])) {
      if (!name_ok(p + 1, n - 2) || ++params > ST__MAX_PARAMS)
        return st_fail(err, ST_EINVAL, "route %s: bad or too many parameters", pattern);
    } else if (memchr(p, '{', n) || memchr(p, '}', n)) {
      return st_fail(err, ST_EINVAL, "route %s: a parameter must be a whole segment",
                     pattern);
    } else {
      rt->literals++;
    }
    if (!p[n])
      return 0;
    p += n + 1;
  }
}

int st__router_add(st__router_t *r, const st_api_route_t *route, st_error_t *err) {
  st__route_t rt;
  int rc = 0;

  memset(&rt, 0, sizeof(rt));
  if (!route->method || !route->pattern || route->pattern[0] != '/' || !route->handler)
    return st_fail(err, ST_EINVAL, "route %s %s: method, pattern (/...) and handler required",
                   route->method ? route->method : "?", route->pattern ? route->pattern : "?");
  if (route->body == ST_API_BODY_SINK && !route->sink)
    return st_fail(err, ST_EINVAL, "route %s %s: SINK body without a sink", route->method,
                   route->pattern);
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->routes[i].method, route->method) == 0 &&
        strcmp(r->routes[i].pattern, route->pattern) == 0)
      return st_fail(err, ST_EINVAL, "route %s %s: registered twice", route->method,
                     route->pattern);
  rt.r = *route;
  if (!(rt.method = st_strdup(route->method)) || !(rt.pattern = st_strdup(route->pattern)) ||
      (route->scope && !(rt.scope = st_strdup(route->scope)))) {
    rc = st_fail(err, ST_ENOMEM, "route %s: out of memory", route->pattern);
    goto done;
  }
  if ((rc = split_pattern(&rt, route->pattern, err)))
    goto done;
  rt.r.method = rt.method;
  rt.r.pattern = rt.pattern;
  rt.r.scope = rt.scope;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    st__route_t *nr = st_realloc(r->routes, cap * sizeof(*nr));
    if (!nr) {
      rc = st_fail(err, ST_ENOMEM, "route %s: out of memory", route->pattern);
      goto done;
    }
    r->routes = nr;
    r->cap = cap;
  }
  r->routes[r->n++] = rt;
done:
  if (rc)
    route_release(&rt);
  return rc;
}

static int seg_match(const st__route_t *rt, char **segs, int nsegs) {
  if (rt->nsegs != nsegs)
    return 0;
  for (int i = 0; i < nsegs; i++) {
    if (is_param(rt->segs[i])) {
      if (strcmp(segs[i], ".") == 0 || strcmp(segs[i], "..") == 0)
        return 0;
    } else if (strcmp(rt->segs[i], segs[i]) != 0) {
      return 0;
    }
  }
  return 1;
}

static void allow_add(char *allow, size_t cap, const char *m) {
  size_t n = strlen(allow), ml = strlen(m);
  const char *p = allow;
  while (*p) { /* skip duplicates */
    size_t tl = strcspn(p, ",");
    if (tl == ml && memcmp(p, m, ml) == 0)
      return;
    p += tl + (p[tl] == ',');
    while (*p == ' ')
      p++;
  }
  if (n + ml + 3 > cap)
    return;
  if (n)
    memcpy(allow + n, ", ", 2), n += 2;
  memcpy(allow + n, m, ml + 1);
}

int st__router_match(const st__router_t *r, const char *method, const char *path,
                     st__match_t *m) {
  char *segs[ST__MAX_SEGMENTS];
  int nsegs = 0, best = -1;
  const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
  int path_known = 0;
  char *p;

  memset(m, 0, sizeof(*m));
  if (path[0] != '/')
    return ST_ENOENT;
  if (!(m->buf = st_strdup(path)))
    return ST_ENOMEM;
  p = m->buf + 1;
  if (*p) {
    while (1) {
      char *slash = strchr(p, '/');
      if (nsegs == ST__MAX_SEGMENTS || p == slash || !*p)
        return ST_ENOENT;
      segs[nsegs++] = p;
      if (!slash)
        break;
      *slash = '\0';
      p = slash + 1;
    }
  }
  for (size_t i = 0; i < r->n; i++) {
    const st__route_t *rt = &r->routes[i];
    if (!seg_match(rt, segs, nsegs))
      continue;
    path_known = 1;
    if (strcmp(rt->method, want) == 0 && (best < 0 || rt->literals > r->routes[best].literals))
      best = (int)i;
  }
  if (best < 0) {
    if (!path_known)
      return ST_ENOENT;
    for (size_t i = 0; i < r->n; i++)
      if (seg_match(&r->routes[i], segs, nsegs)) {
        allow_add(m->allow, sizeof(m->allow), r->routes[i].method);
        if (strcmp(r->routes[i].method, "GET") == 0)
          allow_add(m->allow, sizeof(m->allow), "HEAD");
      }
    return ST_EPERM;
  }
  m->route = &r->routes[best];
  for (int i = 0; i < nsegs; i++)
    if (is_param(m->route->segs[i])) {
      m->names[m->nparams] = m->route->segs[i] + 1;
      m->name_lens[m->nparams] = strlen(m->route->segs[i]) - 2;
      m->values[m->nparams++] = segs[i];
    }
  return 0;
}

void st__match_release(st__match_t *m) {
  st_free(m->buf);
  m->buf = NULL;
}

const char *st_api_req_param(const st_api_req_t *req, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < req->match.nparams; i++)
    if (req->match.name_lens[i] == n && memcmp(req->match.names[i], name, n) == 0)
      return req->match.values[i];
  return NULL;
}
