# ops/demo.d/20-probe.sh: the job queue: a worker-only stellad runs probe jobs from Redis
# Streams, one failing transiently once (retried with backoff), one failing permanently
# (dead-lettered). Sourced by ops/demo.sh (step, PATH and STELLA_* are set there).
step "job queue: starting stellad (worker role) and submitting probe jobs"
demo_log=$(mktemp /tmp/stella-demo-stellad.XXXXXX)
STELLA_OPS_LISTEN=127.0.0.1:0 STELLA_JOB_BACKOFF_BASE_MS=200 stellad --roles worker 2>"$demo_log" &
demo_pid=$!
for _ in $(seq 50); do grep -q "claim connection up" "$demo_log" && break; sleep 0.1; done
ok_id=$(stella job submit --type probe --tenant acme --payload '{"sleep_ms":200}')
retry_id=$(stella job submit --type probe --tenant acme --payload '{"fail":"transient","fail_times":1}')
perm_id=$(stella job submit --type probe --tenant acme --payload '{"fail":"permanent"}')
echo "submitted $ok_id (ok), $retry_id (fails once), $perm_id (fails permanently)"
for _ in $(seq 100); do
  [ "$(grep -c '"state":"succeeded"\|"state":"dead_lettered"' "$demo_log")" -ge 3 ] && break
  sleep 0.1
done

step "job queue: what happened (state sink log lines)"
grep '"msg":"job.transition"' "$demo_log" | grep -v '"state":"progress"' |
  sed -E 's/.*"job_id":"([^"]*)".*"state":"([^"]*)".*"attempt":"([^"]*)".*"reason":"([^"]*)".*/\1 \2 attempt=\3 \4/'

step "job queue: stella queue stats, dead letters and metrics"
stella queue stats
stella queue dlq list
demo_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$demo_log" | cut -d: -f2)
curl -fsS "http://127.0.0.1:$demo_port/metrics" | grep -E '^stella_jobs_(succeeded|retried|dead_lettered)_total'

step "job queue: SIGTERM drains and stops stellad"
kill -TERM "$demo_pid"
wait "$demo_pid"
tail -n 2 "$demo_log"
rm -f "$demo_log"
