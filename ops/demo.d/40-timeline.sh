# ops/demo.d/40-timeline.sh: three events on stella:events (one republished, one poison),
# ingested once, then listed in source order and paged with a signed cursor.
# (sourced by ops/demo.sh, which sets PATH and the STELLA_* service variables)
step "timeline: publishing events to stella:events (one duplicate, one poison)"
export STELLA_TIMELINE_CURSOR_KEY=${STELLA_TIMELINE_CURSOR_KEY:-demo-cursor-key-change-me}
demo_tenant="demo-$$"
demo_ev() { printf '{"event_id":"%s","tenant":"%s","type":"%s","occurred_at":"2026-01-01T00:00:0%sZ","subject":"export/1","trace_id":"trace-demo"}' "$1" "$demo_tenant" "$2" "$3"; }
redis-cli -u "$STELLA_REDIS_URL" XADD stella:events '*' event "$(demo_ev e1 export.requested 1)" >/dev/null
redis-cli -u "$STELLA_REDIS_URL" XADD stella:events '*' event "$(demo_ev e2 export.built 2)" >/dev/null
redis-cli -u "$STELLA_REDIS_URL" XADD stella:events '*' event "$(demo_ev e1 export.requested 1)" >/dev/null
redis-cli -u "$STELLA_REDIS_URL" XADD stella:events '*' event '{"event_id":"oops"' >/dev/null
step "timeline: stella timeline ingest --once (stored 2, duplicate 1, poison 1 dead-lettered)"
stella timeline ingest --once || true
step "timeline: stella timeline query --trace trace-demo --limit 1 (then the next page by cursor)"
out=$(stella timeline query --tenant "$demo_tenant" --trace trace-demo --limit 1)
echo "$out"
cursor=$(echo "$out" | sed -n 's/^next: --cursor //p')
stella timeline query --tenant "$demo_tenant" --trace trace-demo --limit 1 --cursor "$cursor"
step "timeline: the same cursor with another filter is refused"
stella timeline query --tenant "$demo_tenant" --type export.built --cursor "$cursor" || true
