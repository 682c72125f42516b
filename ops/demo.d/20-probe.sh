# ops/demo.d/20-probe.sh: the job queue: a stellad (worker and scheduler roles, Postgres
# state sink, outbox relay) runs probe jobs from Redis Streams, one failing transiently once
# (retried with backoff), one failing permanently (dead-lettered), one cancelled while it
# runs; each job's state lives in Postgres and its lifecycle events reach stella:events.
# Sourced by ops/demo.sh (step, PATH and STELLA_* are set there; 10-migrate applied the
# schema).
step "job queue: starting stellad (worker,scheduler roles) and submitting probe jobs"
demo_log=$(mktemp /tmp/stella-demo-stellad.XXXXXX)
STELLA_OPS_LISTEN=127.0.0.1:0 STELLA_JOB_BACKOFF_BASE_MS=200 STELLA_JOB_CANCEL_POLL_MS=200 \
  stellad --roles worker,scheduler 2>"$demo_log" &
demo_pid=$!
for _ in $(seq 50); do grep -q "claim connection up" "$demo_log" && break; sleep 0.1; done
ok_id=$(stella job submit --type probe --tenant acme --payload '{"sleep_ms":200}')
retry_id=$(stella job submit --type probe --tenant acme --payload '{"fail":"transient","fail_times":1}')
perm_id=$(stella job submit --type probe --tenant acme --payload '{"fail":"permanent"}')
slow_id=$(stella job submit --type probe --tenant acme --payload '{"sleep_ms":30000}')
echo "submitted $ok_id (ok), $retry_id (fails once), $perm_id (fails permanently), $slow_id (slow)"

step "job queue: stella job watch (transitions from Postgres until final)"
stella job watch "$retry_id" --tenant acme
stella job watch "$perm_id" --tenant acme || echo "(exit $?: the job did not succeed)"
stella job watch "$ok_id" --tenant acme >/dev/null

step "job queue: stella job cancel on the running slow job"
for _ in $(seq 50); do stella job get "$slow_id" --tenant acme | grep -q "state    running" && break; sleep 0.1; done
stella job cancel "$slow_id" --tenant acme
stella job watch "$slow_id" --tenant acme || true

step "job queue: stella job get (state, attempts, result, error, transitions)"
stella job get "$retry_id" --tenant acme
stella job get "$perm_id" --tenant acme

step "job queue: lifecycle events relayed from the outbox to stella:events"
for _ in $(seq 30); do
  [ "$(redis-cli -u "$STELLA_REDIS_URL" --raw XRANGE stella:events - + | grep -c -e "$ok_id" -e "$retry_id" -e "$perm_id" -e "$slow_id")" -ge 4 ] && break
  sleep 0.1
done
redis-cli -u "$STELLA_REDIS_URL" --raw XRANGE stella:events - + |
  awk '/^type$/ { getline; t = $0 } /^event$/ { getline; match($0, /"job_id": "[^"]*"/);
       print t, substr($0, RSTART + 11, RLENGTH - 12) }' |
  grep -e "$ok_id" -e "$retry_id" -e "$perm_id" -e "$slow_id"

step "job queue: a cron schedule and an event trigger (fired by the scheduler role)"
stella schedule add --tenant acme --name demo-hourly --cron '0 * * * *' --type probe
stella schedule add --tenant acme --name demo-after-dlq --on job.dead_lettered --type probe
stella schedule list --tenant acme
stella schedule rm --tenant acme --name demo-hourly
stella schedule rm --tenant acme --name demo-after-dlq

step "job queue: stella queue stats, dead letters and metrics"
stella queue stats
stella queue dlq list
demo_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$demo_log" | cut -d: -f2)
curl -fsS "http://127.0.0.1:$demo_port/metrics" |
  grep -E '^stella_(jobs_(succeeded|retried|dead_lettered)_total|outbox_published_total)'

step "job queue: SIGTERM drains and stops stellad"
kill -TERM "$demo_pid"
wait "$demo_pid"
tail -n 2 "$demo_log"
rm -f "$demo_log"
