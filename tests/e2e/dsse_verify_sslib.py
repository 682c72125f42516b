#!/usr/bin/python3
"""Verify a DSSE envelope with Debian's python3-securesystemslib.

Usage: dsse_verify_sslib.py ENVELOPE.json PUBKEY.pem  -> exit 0 verified, 1 not, 2 error.

Debian 12 ships securesystemslib 0.26, which has no dsse module (securesystemslib.dsse
arrived in 0.28), so the PAE is built here from the DSSE spec and each signature is
checked with securesystemslib.signer.SSlibKey.verify_signature. Base64 is decoded with
Python's own decoder, accepting the URL-safe alphabet as the spec requires."""
import base64
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib import keys as sslib_keys
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import Signature, SSlibKey


def b64(s):
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def load_key(pem):
    pub = serialization.load_pem_public_key(pem.encode())
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SSlibKey("00", "ed25519", "ed25519", {"public": raw.hex()})
    d = sslib_keys.import_ecdsakey_from_public_pem(pem, scheme="ecdsa-sha2-nistp256")
    return SSlibKey.from_securesystemslib_key(d)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        env = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        key = load_key(f.read())
    ptype = env["payloadType"].encode()
    body = b64(env["payload"])
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(body), body)
    for s in env["signatures"]:
        try:
            # securesystemslib wants hex keyids of its own; the DSSE keyid is only a hint.
            key.verify_signature(Signature(key.keyid, b64(s["sig"]).hex()), pae)
            print(f"securesystemslib {key.scheme}: verified")
            return 0
        except (UnverifiedSignatureError, VerificationError) as e:
            print(f"securesystemslib {key.scheme}: {e} ({e.__cause__})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
