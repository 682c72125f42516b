// bundle_sigstore_verify.mjs: verify a bundle's manifest.sigstore.json with @sigstore/verify
// (key + RFC 3161 only: tlogThreshold 0, ctlogThreshold 0, timestampThreshold 1).
// Usage: node bundle_sigstore_verify.mjs SIGSTORE.json SIGNER.pub.pem TSA-LEAF.pem TSA-CA.pem
// The TSA certificates come from the verifier's own trusted copies, in a TrustedRoot;
// the signing key is found by the bundle's hint. Exit 0 verified, 1 rejected, 2 usage.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const [bundlePath, keyPath, leafPath, caPath] = process.argv.slice(2);
if (!caPath) {
  console.error('usage: bundle_sigstore_verify.mjs SIGSTORE.json PUB.pem TSA-LEAF.pem TSA-CA.pem');
  process.exit(2);
}
const der = (p) => new crypto.X509Certificate(fs.readFileSync(p)).raw.toString('base64');
const root = TrustedRoot.fromJSON({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [{
    subject: { organization: 'Stella Test', commonName: 'Stella Test TSA' },
    certChain: { certificates: [{ rawBytes: der(leafPath) }, { rawBytes: der(caPath) }] },
    validFor: { start: '2000-01-01T00:00:00Z' },
  }],
});
const json = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
const hint = json.verificationMaterial.publicKey.hint;
const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));
const keys = (h) => {
  if (h !== hint) throw new Error(`unknown key hint ${h}`);
  return { publicKey, validFor: () => true };
};
try {
  const verifier = new Verifier(toTrustMaterial(root, keys), {
    tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 1,
  });
  verifier.verify(toSignedEntity(bundleFromJSON(json)));
  console.log(`@sigstore/verify: verified (key ${hint}, 1 RFC 3161 timestamp)`);
  process.exit(0);
} catch (e) {
  console.log(`@sigstore/verify: rejected: ${e.code || ''} ${e.message}`);
  process.exit(1);
}
