#!/usr/bin/env bash
# timeline_schema.sh: schemas/json/event-v1.schema.json and the ingester's decoder agree.
# Debian's python3-jsonschema (Draft 2020-12, a validator nobody here wrote) and
# `stella timeline validate` must give the same verdict on every sample: valid envelopes
# (minimal, full, nulls, msgpack-free JSON) and one invalid envelope per rule (missing or
# malformed field, unknown field, evidence rules, size limits). Date validity beyond the
# pattern is not compared: Debian's jsonschema has no date-time format checker (the C tests
# cover impossible dates).
set -euo pipefail
STELLA="${STELLA_BIN_DIR:?}/bin/stella"
SRC="${STELLA_SOURCE_DIR:?}"
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || {
  echo "skipping: python3-jsonschema missing (ops/deps.sh)" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
STELLA="$STELLA" SCHEMA="$SRC/schemas/json/event-v1.schema.json" TMP="$tmp" /usr/bin/python3 - <<'PY'
import copy, json, os, subprocess, sys
from jsonschema import Draft202012Validator

schema = json.load(open(os.environ["SCHEMA"]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
D = "sha256:" + "ab" * 32
base = {"event_id": "ev-1", "tenant": "acme", "type": "export.built",
        "occurred_at": "2026-01-02T03:04:05.123456+01:00"}
full = dict(base, schema="stella.event/v1", subject="export/42", actor="alice",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736", correlation_id="c-1",
            payload={"n": 1, "nested": {"a": [1, 2]}},
            evidence=[{"digest": D, "bundle_id": "b-1", "manifest_ref": "bundles/b-1/manifest.dsse.json"},
                      {"digest": "sha512:" + "0" * 128}])
def without(k):
    d = copy.deepcopy(base); del d[k]; return d
def with_(**kw):
    d = copy.deepcopy(full); d.update(kw); return d
samples = {
    "minimal": base, "full": full,
    "nulls": dict(base, subject=None, actor=None, trace_id=None, payload=None, evidence=None),
    "no_event_id": without("event_id"), "no_tenant": without("tenant"),
    "no_type": without("type"), "no_time": without("occurred_at"),
    "tenant_chars": with_(tenant="acme/other"), "tenant_long": with_(tenant="a" * 65),
    "type_upper": with_(type="Export.Built"), "type_number": with_(type=5),
    "unknown_field": with_(tracer="x"), "schema_other": with_(schema="stella.event/v2"),
    "event_id_empty": with_(event_id=""), "event_id_long": with_(event_id="e" * 129),
    "subject_long": with_(subject="s" * 513), "actor_empty": with_(actor=""),
    "time_words": with_(occurred_at="yesterday"),
    "payload_array": with_(payload=[1]), "evidence_object": with_(evidence={"digest": D}),
    "evidence_md5": with_(evidence=[{"digest": "md5:" + "0" * 32}]),
    "evidence_upper_hex": with_(evidence=[{"digest": "sha256:" + "AB" * 32}]),
    "evidence_no_digest": with_(evidence=[{"bundle_id": "b"}]),
    "evidence_unknown": with_(evidence=[{"digest": D, "size": 1}]),
    "evidence_65": with_(evidence=[{"digest": D}] * 65),
    "evidence_64": with_(evidence=[{"digest": D}] * 64),
    "not_object": [base],
}
bad = 0
for name, doc in samples.items():
    path = os.path.join(os.environ["TMP"], name + ".json")
    json.dump(doc, open(path, "w"))
    want = v.is_valid(doc)
    r = subprocess.run([os.environ["STELLA"], "timeline", "validate", path],
                       capture_output=True, text=True)
    got = r.returncode == 0
    if want != got:
        bad += 1
        print(f"DISAGREE {name}: jsonschema={want} stella={got}: {r.stdout.strip()}", file=sys.stderr)
# Malformed bytes: stella refuses, and Python's json refuses too.
open(os.path.join(os.environ["TMP"], "trunc.json"), "w").write('{"event_id":')
r = subprocess.run([os.environ["STELLA"], "timeline", "validate",
                    os.path.join(os.environ["TMP"], "trunc.json")], capture_output=True)
if r.returncode != 1:
    bad += 1; print("truncated JSON accepted", file=sys.stderr)
print(f"timeline schema: {len(samples)} samples, {bad} disagreements")
sys.exit(1 if bad else 0)
PY
