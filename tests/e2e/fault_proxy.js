#!/usr/bin/env node
// fault_proxy.js: a loopback HTTP proxy in front of a registry for the OCI tests (Node
// stdlib only). Faults are deterministic, by method and per-method request count:
//   --fault PATCH:2:reset,PUT:1:503,POST:1:503   the 2nd PATCH has its connection reset
//     after part of its body arrived (nothing forwarded), the 1st PUT and POST get a 503.
//     A `reset` on a bodiless request resets before any answer.
// Bearer mode (--bearer USER:PASS --upstream-auth USER:PASS) stands in for a token server:
//   /v2/* without `Authorization: Bearer <token>` gets 401 with
//   `WWW-Authenticate: Bearer realm="http://<host>/token",service="stella-test",scope=...`;
//   GET /token?service=&scope= with Basic USER:PASS returns {"token":...} (a wrong
//   password gets 401); requests with a good token are forwarded with the registry's own
//   Basic credentials (--upstream-auth) instead.
// Every request is logged as one JSON line to --log FILE: {n, method, url, fault, status,
// forwarded}. The listening port is written to --port-file FILE.
'use strict';
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.upstream || !args.log || !args['port-file']) {
  console.error('usage: fault_proxy.js --upstream http://127.0.0.1:PORT --log FILE --port-file FILE ' +
                '[--fault METHOD:N:503|reset,...] [--bearer U:P --upstream-auth U:P]');
  process.exit(2);
}
const upstream = new URL(args.upstream);
const faults = new Map(); // "PATCH:2" -> "reset"
for (const f of (args.fault || '').split(',').filter(Boolean)) {
  const [m, n, kind] = f.split(':');
  faults.set(`${m}:${n}`, kind);
}
const counts = {};
let seq = 0;
const tokens = new Set();
const log = fs.openSync(args.log, 'a');
const record = (o) => fs.writeSync(log, JSON.stringify(o) + '\n');

function bearerGate(req, res) {
  if (!args.bearer) return true;
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/token') {
    const want = 'Basic ' + Buffer.from(args.bearer).toString('base64');
    if (req.headers.authorization !== want) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
      return false;
    }
    const t = crypto.randomBytes(16).toString('hex');
    tokens.add(t);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: t, expires_in: 300, scope: u.searchParams.getAll('scope').join(' ') }));
    return false;
  }
  const auth = req.headers.authorization || '';
  if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) {
    const m = u.pathname.match(/^\/v2\/(.+?)\/(blobs|manifests|tags|referrers)\//);
    const scope = m ? `,scope="repository:${m[1]}:pull,push"` : '';
    res.writeHead(401, {
      'Content-Type': 'application/json',
      'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="stella-test"${scope}`,
    });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}');
    return false;
  }
  return true;
}

const server = http.createServer((req, res) => {
  const n = ++seq;
  counts[req.method] = (counts[req.method] || 0) + 1;
  const fault = faults.get(`${req.method}:${counts[req.method]}`);
  const entry = { n, method: req.method, url: req.url, fault: fault || null, status: null, forwarded: false };
  if (fault === '503') {
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': 2 });
      res.end('{}');
      entry.status = 503;
      record(entry);
    });
    return;
  }
  if (fault === 'reset') {
    const len = parseInt(req.headers['content-length'] || '0', 10);
    let got = 0;
    const kill = () => { record(entry); req.socket.destroy(); };
    if (len === 0) return kill();
    req.on('data', (d) => { got += d.length; if (got >= Math.min(len, 1024)) { req.pause(); kill(); } });
    return;
  }
  if (!bearerGate(req, res)) { entry.status = res.statusCode; record(entry); req.resume(); return; }
  const headers = { ...req.headers };
  if (args.bearer) headers.authorization = 'Basic ' + Buffer.from(args['upstream-auth'] || '').toString('base64');
  const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ures) => {
    entry.status = ures.statusCode;
    entry.forwarded = true;
    const h = { ...ures.headers };
    if (args.bearer && h['www-authenticate']) delete h['www-authenticate'];
    res.writeHead(ures.statusCode, h);
    ures.pipe(res);
    ures.on('end', () => record(entry));
  });
  up.on('error', (e) => { entry.status = 502; entry.error = String(e); record(entry); res.destroy(); });
  req.pipe(up);
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => fs.writeFileSync(args['port-file'], String(server.address().port)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
