// bench_queue.mjs: stellad (probe jobs, Postgres state sink, outbox relay) against BullMQ
// (no-op jobs) on the same Redis with the same concurrency, in one run.
//
// Per system: (1) throughput: N jobs submitted as fast as one client can (pipelined XADDs of
// msgpack envelopes / Queue.addBulk) while the consumer runs; the clock stops when the last
// job is done: for stellad, its stream entry acknowledged, which happens only after the
// succeeded state and its outbox row committed in Postgres; for BullMQ, the last
// `completed` event. (2) latency at half load: jobs submitted at half the measured rate for
// a few seconds; submit-to-start is the time from just before the submit to the job's start
// (stellad: its `started` transition committed in Postgres, read from stellad's JSON log;
// BullMQ: the processor function entered).
//
// Env: REDIS_URL (redis://host:port/db, flushed!), PG_URL (service role), PG_ADMIN_URL
// (psql check of the jobs rows), STELLAD (binary), N (5000), CONC (4), LAT_SECONDS (6).
// `node bench_queue.mjs bullworker` is the BullMQ worker child (its own process, as
// stellad is).
import { execFileSync, fork, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../e2e/package.json'));
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');
const { Packr } = require('msgpackr');

const REDIS_URL = process.env.REDIS_URL;
const N = Number(process.env.N || 5000);
const CONC = Number(process.env.CONC || 4);
const LAT_SECONDS = Number(process.env.LAT_SECONDS || 6);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

if (process.argv[2] === 'bullworker') {
  // child: count completions, record submit-to-start of jobs that carry t0
  const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
  let expect = 0, done = 0;
  const lat = [];
  const worker = new Worker('bench', async (job) => {
    if (job.data.t0) lat.push(Date.now() - job.data.t0);
  }, { connection, concurrency: CONC });
  worker.on('completed', () => {
    if (++done === expect) process.send({ done, t: Date.now(), lat: lat.splice(0) });
  });
  process.on('message', async (m) => {
    if (m.expect) {
      expect = m.expect;
      done = 0;
      process.send({ ready: true });
    }
    if (m.stop) {
      await worker.close();
      await connection.quit();
      process.exit(0);
    }
  });
  await worker.waitUntilReady();
  process.send({ up: true });
} else {
  await main();
}

function envelope(packr, tenant, jobId) {
  return packr.pack({ v: 1, job_id: jobId, tenant, type: 'probe', attempt: 1, not_before: 0,
                      payload: {} });
}

// Submit `ids` at `rate` per second (Infinity = all at once, pipelined in chunks of 500);
// submit(ids) sends one chunk. Returns the submit time of each id.
async function pace(ids, rate, submit) {
  const t = new Map();
  if (rate === Infinity) {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const now = Date.now();
      chunk.forEach((id) => t.set(id, now));
      await submit(chunk, now);
    }
    return t;
  }
  const start = Date.now();
  let sent = 0;
  while (sent < ids.length) {
    const due = Math.min(ids.length, Math.floor(((Date.now() - start) / 1000) * rate) + 1);
    if (due > sent) {
      const chunk = ids.slice(sent, due);
      const now = Date.now();
      chunk.forEach((id) => t.set(id, now));
      await submit(chunk, now);
      sent = due;
    }
    await sleep(5);
  }
  return t;
}

async function stellaRun(redis, tenant, count, rate, log) {
  const packr = new Packr({ useRecords: false });
  const ids = Array.from({ length: count }, () => randomUUID());
  const t0 = Date.now();
  const submitted = await pace(ids, rate, async (chunk) => {
    const p = redis.pipeline();
    for (const id of chunk) p.xadd('stella:jobs:probe', '*', 'e', envelope(packr, tenant, id));
    await p.exec();
  });
  for (;;) { // acknowledged entries are deleted: an empty stream means all committed
    const [len, pending] = await Promise.all([
      redis.xlen('stella:jobs:probe'), redis.xpending('stella:jobs:probe', 'stellad')]);
    if (len === 0 && Number(pending[0]) === 0) break;
    await sleep(5);
  }
  const t1 = Date.now();
  const started = new Map();
  for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
    if (!line.includes('"state":"started"')) continue;
    const j = JSON.parse(line);
    if (submitted.has(j.job_id)) started.set(j.job_id, Date.parse(j.ts));
  }
  const lat = ids.filter((id) => started.has(id)).map((id) => started.get(id) - submitted.get(id));
  return { seconds: (t1 - t0) / 1000, jobsPerSec: count / ((t1 - t0) / 1000), lat };
}

async function stella(redis) {
  const log = path.join(os.tmpdir(), `bench-queue-stellad-${process.pid}.log`);
  const tenant = `bench-${process.pid}`;
  fs.writeFileSync(log, '');
  const child = spawn(process.env.STELLAD, ['--roles', 'worker'], {
    env: { ...process.env, STELLA_REDIS_URL: REDIS_URL, STELLA_PG_URL: process.env.PG_URL,
           STELLA_WORKER_THREADS: String(CONC), STELLA_PG_POOL_SIZE: String(CONC + 2),
           STELLA_OPS_LISTEN: 'off', STELLA_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', fs.openSync(log, 'a')],
  });
  while (!fs.readFileSync(log, 'utf8').includes('claim connection up')) await sleep(50);
  const tp = await stellaRun(redis, tenant, N, Infinity, log);
  const m = Math.max(50, Math.round((tp.jobsPerSec / 2) * LAT_SECONDS));
  const half = await stellaRun(redis, tenant, m, tp.jobsPerSec / 2, log);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  const rows = execFileSync('psql', [process.env.PG_ADMIN_URL, '-Atc',
    `SELECT count(*) FILTER (WHERE state = 'succeeded') || ' ' || count(*) FROM jobs WHERE tenant_id = '${tenant}'`]).toString().trim();
  const events = execFileSync('psql', [process.env.PG_ADMIN_URL, '-Atc',
    `SELECT count(*) FROM outbox WHERE tenant_id = '${tenant}' AND type = 'job.succeeded'`]).toString().trim();
  fs.unlinkSync(log);
  return { tp, half, m, rows, events };
}

async function bull() {
  const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('bench', { connection });
  const child = fork(fileURLToPath(import.meta.url), ['bullworker'], { env: process.env });
  const next = () => new Promise((r) => child.once('message', r));
  await next(); // up
  const run = async (count, rate, withT0) => {
    child.send({ expect: count });
    await next(); // ready
    const done = next();
    const ids = Array.from({ length: count }, (_, i) => i);
    const t0 = Date.now();
    await pace(ids, rate, (chunk, now) =>
      queue.addBulk(chunk.map(() => ({ name: 'noop', data: withT0 ? { t0: now } : {} }))));
    const m = await done;
    return { seconds: (m.t - t0) / 1000, jobsPerSec: count / ((m.t - t0) / 1000), lat: m.lat };
  };
  const tp = await run(N, Infinity, false);
  const m = Math.max(50, Math.round((tp.jobsPerSec / 2) * LAT_SECONDS));
  const half = await run(m, tp.jobsPerSec / 2, true);
  child.send({ stop: true });
  await new Promise((r) => child.on('exit', r));
  await queue.close();
  await connection.quit();
  return { tp, half, m };
}

async function main() {
  const redis = new IORedis(REDIS_URL);
  await redis.flushdb();
  const s = await stella(redis);
  await redis.flushdb();
  const b = await bull();
  await redis.flushdb();
  await redis.quit();
  const f = (x) => x.toFixed(0);
  console.log(`jobs: ${N} (throughput), concurrency ${CONC}, latency runs ${LAT_SECONDS} s at half load`);
  console.log(`stellad  ${f(s.tp.jobsPerSec)} jobs/s (${s.tp.seconds.toFixed(2)} s)  ` +
              `submit-to-start p50 ${pct(s.half.lat, 50)} ms p99 ${pct(s.half.lat, 99)} ms ` +
              `(${s.half.lat.length} of ${s.m} jobs at ${f(s.tp.jobsPerSec / 2)}/s)`);
  console.log(`         Postgres: jobs succeeded/rows ${s.rows.replace(' ', '/')}, job.succeeded outbox rows ${s.events}`);
  console.log(`bullmq   ${f(b.tp.jobsPerSec)} jobs/s (${b.tp.seconds.toFixed(2)} s)  ` +
              `submit-to-start p50 ${pct(b.half.lat, 50)} ms p99 ${pct(b.half.lat, 99)} ms ` +
              `(${b.half.lat.length} of ${b.m} jobs at ${f(b.tp.jobsPerSec / 2)}/s)`);
  console.log(`ratio stellad/bullmq jobs/s: ${(s.tp.jobsPerSec / b.tp.jobsPerSec).toFixed(2)}`);
  process.exit(0);
}
