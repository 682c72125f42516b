#!/usr/bin/env node
// s3_fake.js: a local S3-compatible server for the object store tests.
//
// s3rver (npm) serves the S3 API from a directory, on an internal port. In front of it
// this proxy adds what s3rver lacks and real S3 does: every request's SigV4 signature
// is checked with AWS's own signer, @smithy/signature-v4 (re-signed from the headers it
// names; 403 SignatureDoesNotMatch unless equal; every x-amz-* header must be signed);
// a body is forwarded only once complete (S3 never stores an interrupted PUT; s3rver
// would keep the partial file) and only if its SHA-256 equals a hex
// x-amz-content-sha256 (400 XAmzContentSHA256Mismatch otherwise). Object Lock calls
// (?retention, ?legal-hold), unknown to s3rver, are answered here after their
// Content-MD5 is checked. s3rver's truncated ListObjectsV2 pages fail on OpenSSL 3 (its
// continuation token uses DES), so a list asks s3rver for up to 1000 keys and the proxy
// cuts the page to max-keys and sets IsTruncated itself. Each request is logged as one JSON line (method, url,
// headers, lock body, refusal reason) for the tests to inspect.
//
// Usage: node s3_fake.js DIR LOGFILE   (listens on 127.0.0.1, a free port; prints
// {"port":N} on stdout once ready). Credentials: S3RVER / S3RVER, bucket "stella".
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const S3rver = require('s3rver');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Hash } = require('@smithy/hash-node');

const [dir, logFile] = process.argv.slice(2);
if (!dir || !logFile) {
  console.error('usage: s3_fake.js DIR LOGFILE');
  process.exit(2);
}
const ACCESS = 'S3RVER';
const SECRET = 'S3RVER';

function reply(res, status, code) {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code></Error>`);
}

async function verify(req, url) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m || m[1] !== ACCESS) return 'malformed Authorization';
  const signed = m[4].split(';');
  for (const h of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!signed.includes(h)) return `${h} not signed`;
  for (const h of Object.keys(req.headers))
    if (h.startsWith('x-amz-') && !signed.includes(h)) return `${h} sent but not signed`;
  const headers = {};
  for (const h of signed) {
    if (req.headers[h] === undefined) return `signed header ${h} missing`;
    headers[h] = req.headers[h];
  }
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const date = req.headers['x-amz-date'];
  const when = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T` +
    `${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  if (Math.abs(Date.now() - when) > 15 * 60 * 1000) return 'request time too skewed';
  const signer = new SignatureV4({
    credentials: { accessKeyId: ACCESS, secretAccessKey: SECRET },
    region: m[3], service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false,
  });
  const out = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: req.headers.host, path: url.pathname, query, headers },
    { signingDate: when });
  return out.headers.authorization === auth ? null : 'signature does not match';
}

function checksumsAgree(req) {
  const sha = req.headers['x-amz-content-sha256'];
  const cs = req.headers['x-amz-checksum-sha256'];
  if (!cs) return true;
  return /^[0-9a-f]{64}$/.test(sha) && Buffer.from(sha, 'hex').toString('base64') === cs;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { done = true; resolve(Buffer.concat(chunks)); });
    req.on('aborted', () => resolve(null));
    req.on('close', () => { if (!done) resolve(null); });
  });
}

async function main() {
  fs.mkdirSync(dir, { recursive: true });
  const app = new S3rver({ silent: true, directory: dir, configureBuckets: [{ name: 'stella' }],
    address: '127.0.0.1', port: 0 });
  const inner = await app.run();
  // Synchronous appends: a test reads the log right after our reply, so each line must be
  // on disk before the response is sent (a write stream may lag behind under load).
  const logFd = fs.openSync(logFile, 'a');
  const log = { write: (line) => fs.writeSync(logFd, line) };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://local');
    const entry = { method: req.method, url: req.url, headers: req.headers };
    const refuse = (status, code, why) => {
      entry.refused = why;
      log.write(JSON.stringify(entry) + '\n');
      reply(res, status, code);
    };
    let why;
    try {
      why = await verify(req, url);
    } catch (e) {
      why = `verify failed: ${e.message}`;
    }
    const hasBody = req.method === 'PUT' || req.method === 'POST';
    const body = hasBody ? await readBody(req) : Buffer.alloc(0);
    if (body === null) {
      entry.refused = 'incomplete body: dropped';
      log.write(JSON.stringify(entry) + '\n');
      return;
    }
    if (!hasBody) req.resume();
    if (why) return refuse(403, 'SignatureDoesNotMatch', why);
    if (!checksumsAgree(req)) return refuse(400, 'BadDigest', 'checksum headers disagree');
    const declared = req.headers['x-amz-content-sha256'];
    if (/^[0-9a-f]{64}$/.test(declared) &&
        crypto.createHash('sha256').update(body).digest('hex') !== declared)
      return refuse(400, 'XAmzContentSHA256Mismatch', 'payload hash');
    if (req.method === 'PUT' && (url.searchParams.has('retention') || url.searchParams.has('legal-hold'))) {
      entry.body = body.toString('utf8');
      const md5 = crypto.createHash('md5').update(body).digest('base64');
      if (req.headers['content-md5'] !== md5) return refuse(400, 'InvalidDigest', 'content-md5');
      log.write(JSON.stringify(entry) + '\n');
      res.statusCode = 200;
      return res.end();
    }
    log.write(JSON.stringify(entry) + '\n');
    const listMax = req.method === 'GET' && url.searchParams.get('list-type') === '2'
      ? Number(url.searchParams.get('max-keys') || 1000) : null;
    let path = req.url;
    if (listMax !== null) {
      url.searchParams.set('max-keys', '1000');
      path = url.pathname + url.search;
    }
    const fwd = http.request({ host: '127.0.0.1', port: inner.port, method: req.method,
      path, headers: { ...req.headers, 'content-length': String(body.length) } }, (r) => {
      if (listMax === null || r.statusCode !== 200) {
        res.writeHead(r.statusCode, r.headers);
        return r.pipe(res);
      }
      const parts = [];
      r.on('data', (c) => parts.push(c));
      r.on('end', () => {
        let xml = Buffer.concat(parts).toString('utf8');
        const contents = xml.match(/<Contents>[\s\S]*?<\/Contents>/g) || [];
        const kept = contents.slice(0, listMax);
        xml = xml.replace(/<Contents>[\s\S]*<\/Contents>/, kept.join(''))
          .replace(/<IsTruncated>\w+<\/IsTruncated>/,
            `<IsTruncated>${contents.length > listMax}</IsTruncated>`)
          .replace(/<KeyCount>\d+<\/KeyCount>/, `<KeyCount>${kept.length}</KeyCount>`);
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(xml);
      });
    });
    fwd.on('error', () => reply(res, 502, 'BadGateway'));
    fwd.end(body);
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
