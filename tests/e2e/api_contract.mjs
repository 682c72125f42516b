// api_contract.mjs: contract and interop checks against a running stellad (api role).
// Every response of every implemented route is validated against the OpenAPI document
// (bundled and dereferenced to JSON by @redocly/cli): the status must be documented, the media type must
// match, the body must validate against the schema (ajv, JSON Schema 2020-12), and the
// documented headers with schemas must be present and valid. JWTs are minted here with
// node's own crypto (ES256 as JOSE r||s, HS256), independently of stella's code, and
// stella-minted ES256 tokens are verified here.
// With a seventh argument `pg` (stellad has pg_url and redis_url) POST /jobs and GET /audit
// are checked too: submit, idempotent replay, 422, 400, 403, audit pages and cursor misuse,
// the timeline routes over two events api.sh ingested for tenant contract-pg, and the
// Evidence Locker and incident routes (upload, pending snapshot, holds, incident mode).
// usage: node api_contract.mjs BASE_URL SPEC_JSON ES256_PRIV_PEM ES256_PUB_PEM HS_SECRET STELLA_TOKEN [pg]
import { readFileSync } from 'node:fs';
import { createHash, createHmac, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [base, specPath, privPath, pubPath, secret, stellaToken, withPg] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
let failures = 0;
let checked = 0;

const b64u = (buf) => Buffer.from(buf).toString('base64url');
function jwt(alg, claims, key) {
  const head = b64u(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64u(JSON.stringify(claims));
  const input = `${head}.${body}`;
  let sig;
  if (alg === 'HS256') sig = createHmac('sha256', key).update(input).digest();
  else if (alg === 'ES256') sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  else sig = Buffer.alloc(0);
  return `${input}.${b64u(sig)}`;
}

function fail(msg) {
  failures++;
  console.error(`FAIL ${msg}`);
}

// The operation of a concrete path: an exact match, else a template whose `{param}`
// segments match one segment each (the one with the most literal segments wins).
function operation(path, method) {
  let item = spec.paths[path];
  if (!item) {
    let best = -1;
    for (const [tpl, it] of Object.entries(spec.paths)) {
      const t = tpl.split('/'), p = path.split('/');
      if (t.length !== p.length || !t.every((s, i) => s.startsWith('{') || s === p[i])) continue;
      const literals = t.filter((s) => !s.startsWith('{')).length;
      if (literals > best && it[method.toLowerCase()]) { best = literals; item = it; }
    }
  }
  return item && item[method.toLowerCase()];
}

// Validate one real response against the operation's documented response.
async function check(label, method, path, headers, wantStatus, reqBody) {
  const res = await fetch(base + path, { method, headers, body: reqBody });
  const text = await res.text();
  checked++;
  if (res.status !== wantStatus) return fail(`${label}: status ${res.status}, want ${wantStatus}: ${text}`);
  const op = operation(path.split('?')[0], method);
  if (!op) return fail(`${label}: ${method} ${path} is not in the spec`);
  const doc = op.responses[String(res.status)];
  if (!doc) return fail(`${label}: status ${res.status} is not documented for ${method} ${path}`);
  for (const [name, h] of Object.entries(doc.headers || {})) {
    const v = res.headers.get(name);
    if (v === null) { fail(`${label}: documented header ${name} missing`); continue; }
    const schema = h.schema || {};
    const value = schema.type === 'integer' ? Number(v) : v;
    if (!ajv.validate(schema, value)) fail(`${label}: header ${name}=${v}: ${ajv.errorsText()}`);
  }
  const ctype = (res.headers.get('content-type') || '').split(';')[0].trim();
  if (!doc.content) {
    if (text.length) fail(`${label}: body where none is documented`);
    return;
  }
  const media = doc.content[ctype];
  if (!media) return fail(`${label}: content type ${ctype} not documented (${Object.keys(doc.content)})`);
  const body = ctype.endsWith('json') ? JSON.parse(text) : text;
  if (!ajv.validate(media.schema, body)) fail(`${label}: body ${text}: ${ajv.errorsText()}`);
  if (ctype === 'application/problem+json' && body.instance !== res.headers.get('x-request-id'))
    fail(`${label}: problem instance is not the request id`);
  return { res, text, body };
}

const now = Math.floor(Date.now() / 1000);
const priv = createPrivateKey(readFileSync(privPath));
const pub = createPublicKey(readFileSync(pubPath));
const claims = { tenant: 'acme', scope: 'evidence:read audit:read', sub: 'node', exp: now + 300 };
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

await check('healthz', 'GET', '/healthz', {}, 200);
const spec200 = await check('openapi', 'GET', '/.well-known/openapi', {}, 200);
if (spec200) {
  const etag = spec200.res.headers.get('etag');
  const digest = createHash('sha256').update(spec200.text).digest('hex');
  if (etag !== `"${digest}"`) fail(`openapi: ETag ${etag} is not the sha256 of the body`);
  if (spec200.res.headers.get('x-api-version') !== spec.info.version) fail('openapi: X-API-Version');
  await check('openapi 304', 'GET', '/.well-known/openapi', { 'If-None-Match': etag }, 304);
}
// tokens minted by node: accepted
const who = await check('whoami ES256 (node)', 'GET', '/whoami', bearer(jwt('ES256', claims, priv)), 200);
if (who && (who.body.tenant !== 'acme' || who.body.subject !== 'node')) fail('whoami: wrong identity');
await check('whoami HS256 (node)', 'GET', '/whoami', bearer(jwt('HS256', claims, secret)), 200);
// token minted by stella: verified by node, accepted by the server
{
  const [h, p, s] = stellaToken.split('.');
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key: pub, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'));
  if (!ok) fail('stella-minted ES256 token does not verify with node');
  await check('whoami stella token', 'GET', '/whoami', bearer(stellaToken), 200);
}
// rejections
await check('no token', 'GET', '/whoami', {}, 401);
await check('expired', 'GET', '/whoami', bearer(jwt('HS256', { ...claims, exp: now - 3600 }, secret)), 401);
await check('alg none', 'GET', '/whoami', bearer(jwt('none', claims)), 401);
await check('forged', 'GET', '/whoami',
  bearer(jwt('HS256', claims, 'another-secret-another-secret-000')), 401);
await check('bad tenant', 'GET', '/whoami', bearer(jwt('HS256', { ...claims, tenant: 'a/b' }, secret)), 401);
// alg confusion: HS256 keyed with the ES256 public key PEM text
await check('alg confusion', 'GET', '/whoami',
  bearer(jwt('HS256', claims, readFileSync(pubPath))), 401);
// per-tenant quota: a burst of one tenant ends in 429 with Retry-After
{
  const t = jwt('HS256', { ...claims, tenant: 'burst' }, secret);
  let limited = false;
  for (let i = 0; i < 40 && !limited; i++) {
    const r = await fetch(base + '/whoami', { headers: bearer(t) });
    await r.text();
    limited = r.status === 429;
  }
  if (!limited) fail('quota: no 429 after 40 requests');
  else await check('rate limited', 'GET', '/whoami', bearer(t), 429);
  await check('other tenant unaffected', 'GET', '/whoami', bearer(jwt('HS256', claims, secret)), 200);
}

if (withPg === 'pg') {
  const t = jwt('HS256', { ...claims, tenant: 'contract-pg', scope: 'export:operator audit:read' }, secret);
  const json = { 'Content-Type': 'application/json' };
  const key = `contract-${Date.now()}`;
  const job = JSON.stringify({ type: 'probe', payload: { sleep_ms: 1 } });
  const first = await check('submit job', 'POST', '/jobs', { ...bearer(t), ...json, 'Idempotency-Key': key }, 202, job);
  const again = await check('replay job', 'POST', '/jobs', { ...bearer(t), ...json, 'Idempotency-Key': key }, 202, job);
  if (first && again && (again.text !== first.text || again.res.headers.get('idempotent-replayed') !== 'true'))
    fail('replay: not the first reply');
  await check('reused key', 'POST', '/jobs', { ...bearer(t), ...json, 'Idempotency-Key': key }, 422,
    JSON.stringify({ type: 'probe' }));
  await check('malformed json', 'POST', '/jobs', { ...bearer(t), ...json }, 400, '{"type":');
  await check('unknown job type', 'POST', '/jobs', { ...bearer(t), ...json }, 422, '{"type":"nope"}');
  await check('submit wrong scope', 'POST', '/jobs', { ...bearer(jwt('HS256', { ...claims, tenant: 'contract-pg' }, secret)), ...json }, 403, job);
  const page = await check('audit page', 'GET', '/audit?action=job.submit&limit=1', bearer(t), 200);
  if (page && page.body.items.length !== 1) fail('audit: no job.submit row');
  if (page && page.body.next_cursor) {
    await check('audit cursor, other filter', 'GET', `/audit?limit=1&cursor=${page.body.next_cursor}`, bearer(t), 400);
  }
  await check('audit bad time', 'GET', '/audit?since=yesterday', bearer(t), 400);
  await check('audit wrong scope', 'GET', '/audit', bearer(jwt('HS256', { ...claims, tenant: 'contract-pg', scope: 'export:operator' }, secret)), 403);
  const tl = bearer(jwt('HS256', { ...claims, tenant: 'contract-pg', scope: 'timeline:read' }, secret));
  const tlp = await check('timeline page', 'GET', '/timeline?type=contract.timeline&limit=1', tl, 200);
  if (tlp && (tlp.body.items.length !== 1 || !tlp.body.next_cursor)) fail('timeline: expected a first page of one with a cursor');
  if (tlp) {
    const id = encodeURIComponent(tlp.body.items[0].event_id);
    await check('timeline page 2', 'GET', `/timeline?type=contract.timeline&limit=1&cursor=${tlp.body.next_cursor}`, tl, 200);
    await check('timeline cursor, other filter', 'GET', `/timeline?limit=1&cursor=${tlp.body.next_cursor}`, tl, 400);
    await check('timeline event', 'GET', `/timeline/${id}`, tl, 200);
    const ev = await check('timeline evidence', 'GET', `/timeline/${id}/evidence`, tl, 200);
    if (ev && ev.body.evidence.length !== 1) fail('timeline evidence: expected one link');
    await check('timeline other tenant', 'GET', `/timeline/${id}`, bearer(jwt('HS256', { ...claims, tenant: 'contract-other', scope: 'timeline:read' }, secret)), 404);
  }
  await check('timeline unknown', 'GET', '/timeline/no-such-event/evidence', tl, 404);
  await check('timeline forged cursor', 'GET', '/timeline?cursor=eyJ2IjoxfQ.AAAA', tl, 400);
  await check('timeline wrong scope', 'GET', '/timeline', bearer(t), 403);

  // Evidence Locker: the portable export route's refusals (a tenant of its own)
  const evr = bearer(jwt('HS256', { ...claims, tenant: 'contract-evidence', scope: 'evidence:read' }, secret));
  await check('evidence export unknown', 'POST', '/evidence/no-such-bundle/export', evr, 404);
  await check('evidence export wrong scope', 'POST', '/evidence/no-such-bundle/export',
    bearer(jwt('HS256', { ...claims, tenant: 'contract-evidence', scope: 'timeline:read' }, secret)), 403);
  await check('evidence export no token', 'POST', '/evidence/no-such-bundle/export', {}, 401);

  // Evidence Locker routes (the api role alone: a snapshot stays pending, nothing seals;
  // two tenants of their own for the rate limit's burst)
  const evTok = (tenant, scope) => bearer(jwt('HS256', { ...claims, tenant, scope }, secret));
  const evw = evTok('contract-ev1', 'evidence:read evidence:write');
  const up = await check('evidence upload', 'PUT', '/evidence/artifacts',
    { ...evw, 'Content-Type': 'application/octet-stream' }, 201, 'contract artifact\n');
  if (up && up.body.sha256 !== createHash('sha256').update('contract artifact\n').digest('hex'))
    fail('evidence upload: sha256 is not the digest of the body');
  await check('evidence upload no token', 'PUT', '/evidence/artifacts', {}, 401, 'x');
  await check('evidence upload wrong scope', 'PUT', '/evidence/artifacts', evr, 403, 'x');
  const snapBody = JSON.stringify({ kind: 'evaluation', created: '2026-03-04T05:06:07Z',
    run: { run_id: 'contract', actor: 'node' }, inputs: [{ path: 'a.txt', sha256: up ? up.body.sha256 : '0'.repeat(64) }] });
  const snap = await check('evidence snapshot', 'POST', '/evidence/snapshot',
    { ...evw, ...json, 'Idempotency-Key': `ev-${key}` }, 202, snapBody);
  await check('evidence snapshot bad kind', 'POST', '/evidence/snapshot', { ...evw, ...json }, 422,
    JSON.stringify({ kind: 'nope' }));
  if (snap) {
    const id = snap.body.bundle_id;
    const got = await check('evidence get (pending)', 'GET', `/evidence/${id}`, evw, 200);
    if (got && (got.body.id !== id || got.body.status !== 'pending' || got.body.tenant !== 'contract-ev1'))
      fail(`evidence get: ${got.text}`);
    await check('evidence download not sealed', 'GET', `/evidence/${id}/download`, evw, 409);
    await check('evidence verify not sealed', 'POST', `/evidence/verify?id=${id}`, evw, 409);
    await check('evidence get other tenant', 'GET', `/evidence/${id}`, evTok('contract-ev2', 'evidence:read'), 404);
  }
  await check('evidence get unknown', 'GET', '/evidence/no-such-bundle', evw, 404);
  await check('evidence get no token', 'GET', '/evidence/no-such-bundle', {}, 401);
  await check('evidence download unknown', 'GET', '/evidence/no-such-bundle/download', evw, 404);
  const rep = await check('evidence verify not a bundle', 'POST', '/evidence/verify',
    { ...evw, 'Content-Type': 'application/gzip' }, 422, 'not a tgz');
  if (rep && (rep.body.ok !== false || !rep.body.checks.some((c) => c.status === 'fail')))
    fail('evidence verify: a garbage upload did not fail a check');
  await check('evidence verify nothing', 'POST', '/evidence/verify', evw, 400);
  const evh = evTok('contract-ev2', 'evidence:read evidence:hold');
  await check('evidence hold unknown', 'GET', '/evidence/hold/no-such-case', evh, 404);
  await check('evidence hold unknown bundle', 'POST', '/evidence/hold/contract-case', { ...evh, ...json }, 404,
    JSON.stringify({ reason: 'contract', bundle_ids: ['no-such-bundle'] }));
  await check('evidence hold neither', 'POST', '/evidence/hold/contract-case', { ...evh, ...json }, 422,
    JSON.stringify({ reason: 'contract' }));
  await check('evidence hold place', 'POST', '/evidence/hold/contract-case', { ...evh, ...json }, 201,
    JSON.stringify({ reason: 'contract', filter: { kind: 'job' } }));
  await check('evidence hold get', 'GET', '/evidence/hold/contract-case', evh, 200);
  await check('evidence hold release', 'DELETE', '/evidence/hold/contract-case', evh, 200);
  await check('evidence hold release again', 'DELETE', '/evidence/hold/contract-case', evh, 404);
  await check('evidence hold wrong scope', 'GET', '/evidence/hold/contract-case', evr, 403);
  await check('incident status', 'GET', '/incident', evh, 200);
  await check('incident bad key', 'POST', '/incident', { ...evh, ...json }, 422, JSON.stringify({ why: 'x' }));
  await check('incident activate', 'POST', '/incident', { ...evh, ...json }, 201,
    JSON.stringify({ reason: 'contract', extension_days: 1 }));
  await check('incident already active', 'POST', '/incident', { ...evh, ...json }, 200, JSON.stringify({ reason: 'again' }));
  await check('incident deactivate', 'DELETE', '/incident', evh, 200);
  await check('incident none active', 'DELETE', '/incident', evh, 404);
  await check('incident wrong scope', 'POST', '/incident', { ...evr, ...json }, 403, JSON.stringify({ reason: 'x' }));
  await check('incident no token', 'GET', '/incident', {}, 401);

  // Export Center (the api role alone: runs that plan are queued, none runs here; the
  // tenant has no ledger, so a run's scope is empty)
  // (two tenants of their own: the rate limit's burst is 20 requests)
  const op = bearer(jwt('HS256', { ...claims, tenant: 'contract-export', scope: 'export:viewer export:operator' }, secret));
  const ro = bearer(jwt('HS256', { ...claims, tenant: 'contract-export', scope: 'export:viewer' }, secret));
  const op2 = bearer(jwt('HS256', { ...claims, tenant: 'contract-export2', scope: 'export:viewer export:operator' }, secret));
  const name = `contract-${Date.now()}`;
  const prof = JSON.stringify({ name, kind: 'json:raw', filters: { ids: ['NOPE-1'] } });
  await check('export profile create', 'POST', '/exports/profiles', { ...op, ...json }, 201, prof);
  await check('export profile again', 'POST', '/exports/profiles', { ...op, ...json }, 409, prof);
  const bad = await check('export profile bad filter', 'POST', '/exports/profiles', { ...op, ...json }, 422,
    JSON.stringify({ name: 'bad', kind: 'json:raw', filters: { colour: 1 } }));
  if (bad && !String(bad.body.detail).includes('filters.colour')) fail('export: the 422 does not name the field');
  await check('export profile viewer', 'POST', '/exports/profiles', { ...ro, ...json }, 403, prof);
  await check('export profiles', 'GET', '/exports/profiles', ro, 200);
  await check('export profile get', 'GET', `/exports/profiles/${name}`, ro, 200);
  await check('export profile put', 'PUT', `/exports/profiles/${name}`, { ...op, ...json }, 200,
    JSON.stringify({ kind: 'json:raw', filters: { ids: ['NOPE-2'] } }));
  await check('export profile put renamed', 'PUT', `/exports/profiles/${name}`, { ...op, ...json }, 422,
    JSON.stringify({ name: 'other', kind: 'json:raw' }));
  await check('export run empty scope', 'POST', '/exports/runs', { ...op, ...json }, 422, JSON.stringify({ profile: name }));
  await check('export run unknown profile', 'POST', '/exports/runs', { ...op, ...json }, 404, JSON.stringify({ profile: 'nope' }));
  await check('export run extra field', 'POST', '/exports/runs', { ...op, ...json }, 422, JSON.stringify({ profile: name, x: 1 }));
  await check('export runs', 'GET', '/exports/runs?limit=5', ro, 200);
  await check('export runs bad limit', 'GET', '/exports/runs?limit=0', ro, 400);
  await check('export profile delete', 'DELETE', `/exports/profiles/${name}`, op, 204);
  await check('export profile gone', 'GET', `/exports/profiles/${name}`, ro, 404);
  const missing = '00000000-0000-4000-8000-000000000000';
  await check('export run missing', 'GET', `/exports/runs/${missing}`, op2, 404);
  await check('export run not a uuid', 'GET', '/exports/runs/x%27%3B', op2, 404);
  await check('export cancel missing', 'POST', `/exports/runs/${missing}/cancel`, op2, 404);
  await check('export download missing', 'GET', `/exports/runs/${missing}/download`, op2, 404);
  await check('export events missing', 'GET', `/exports/runs/${missing}/events`, op2, 404);
  await check('export events bad id', 'GET', `/exports/runs/${missing}/events`, { ...op2, 'Last-Event-ID': 'x' }, 400);
  await check('export attestation missing', 'GET', `/exports/${missing}/attestation`, op2, 404);
  await check('export verify missing', 'POST', `/exports/${missing}/verify`, op2, 404);
}

console.log(`contract: ${checked} responses checked, ${failures} failures`);
process.exit(failures ? 1 : 0);
