// mirror_tuf.mjs: a TUF client (tuf-js, nobody here wrote it) updating from a mirror tree
// the way an air-gapped consumer would: the tree is served over HTTP (metadata from
// tuf/, targets from the tree root), the client starts from its trusted root.json in
// CLIENT_DIR and keeps what it accepted there (so a later, older repository is a rollback).
//
// usage: node mirror_tuf.mjs update TREE CLIENT_DIR
//          refresh, then download every target and compare it with the tree's bytes;
//          prints "ok N targets" or "refused <ErrorName>: <message>" (exit 1)
//        node mirror_tuf.mjs rollback-snapshot OLD_TREE NEW_TREE OUT_TREE KEY.pem
//          OUT_TREE = NEW_TREE with OLD_TREE's snapshot and a fresh timestamp (version + 1,
//          validly signed with KEY) naming it: a snapshot rollback only the version rule stops
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Updater } = require('tuf-js');
const { canonicalize } = require('@tufjs/canonical-json');

const TARGETS = ['README.md', 'mirror.json', 'advisories/index.ndjson', 'vex/index.ndjson',
  'policy-packs/index.ndjson'];

function serve(tree) {
  const server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
    if (rel.split('/').includes('..')) { res.writeHead(400); res.end(); return; }
    try {
      const body = readFileSync(join(tree, rel));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function update(tree, clientDir) {
  const server = await serve(tree);
  const base = `http://127.0.0.1:${server.address().port}`;
  mkdirSync(join(clientDir, 'targets'), { recursive: true });
  try {
    const updater = new Updater({
      metadataDir: clientDir,
      metadataBaseUrl: `${base}/tuf`,
      targetDir: join(clientDir, 'targets'),
      targetBaseUrl: base,
    });
    await updater.refresh();
    for (const t of TARGETS) {
      const info = await updater.getTargetInfo(t);
      if (!info) throw new Error(`target ${t} not in targets.json`);
      const path = await updater.downloadTarget(info, join(clientDir, 'targets', t.replace(/\//g, '_')));
      if (!readFileSync(path).equals(readFileSync(join(tree, t)))) throw new Error(`${t} differs`);
    }
    console.log(`ok ${TARGETS.length} targets`);
    return 0;
  } catch (e) {
    console.log(`refused ${e.constructor.name}: ${e.message}`);
    return 1;
  } finally {
    server.close();
  }
}

function rollbackSnapshot(oldTree, newTree, outTree, keyPath) {
  cpSync(newTree, outTree, { recursive: true });
  const snap = readFileSync(join(oldTree, 'tuf/snapshot.json'));
  writeFileSync(join(outTree, 'tuf/snapshot.json'), snap);
  const ts = JSON.parse(readFileSync(join(newTree, 'tuf/timestamp.json'), 'utf8'));
  ts.signed.version += 1;
  ts.signed.meta['snapshot.json'] = {
    version: JSON.parse(snap).signed.version,
    length: snap.length,
    hashes: { sha256: createHash('sha256').update(snap).digest('hex') },
  };
  const key = createPrivateKey(readFileSync(keyPath));
  const sig = sign(null, Buffer.from(canonicalize(ts.signed)), key).toString('hex');
  ts.signatures = [{ keyid: ts.signatures[0].keyid, sig }];
  writeFileSync(join(outTree, 'tuf/timestamp.json'), JSON.stringify(ts));
  return 0;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'update') process.exit(await update(args[0], args[1]));
else if (mode === 'rollback-snapshot') process.exit(rollbackSnapshot(...args));
else { console.error('usage: mirror_tuf.mjs update|rollback-snapshot ...'); process.exit(2); }
