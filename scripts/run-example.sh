#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job, the seeds' aggregator
# (examples/aggregator), on the embedded mini-cluster, end to end: it starts a local Kafka
# (`sluice dev kafka`) and a local influxd, produces a bounded batch of feedback events,
# aggregates them per ISP over 5-minute windows with exactly-once checkpoints, prints the
# points InfluxDB holds as a table, and stops what it started.
#   scripts/run-example.sh [--events=N] [--dimension=stream_id|isp|platform]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
events=100000
dimension=isp
for arg in "$@"; do
  case "$arg" in
    --events=*) events="${arg#*=}" ;;
    --dimension=*) dimension="${arg#*=}" ;;
    *) echo "run-example: unknown argument '$arg' (--events=N, --dimension=NAME)" >&2; exit 2 ;;
  esac
done
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
build="${SLUICE_BUILD_DIR:-$root/build}"

work="$(mktemp -d -t sluice-aggregator.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits up to 30 s for a command to succeed.
await() {
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "run-example: gave up waiting for: $*" >&2
  return 1
}

# Kafka: librdkafka's mock cluster, its bootstrap address on its first line.
"$build/bin/sluice" dev kafka --topic=feedback:8 >"$work/kafka.out" 2>"$work/kafka.log" </dev/null &
pids+=($!)
await test -s "$work/kafka.out"
kafka="$(head -1 "$work/kafka.out")"

# InfluxDB 1.x on a free loopback port, its data in the work directory.
influx_port="$(free_port)"
cat >"$work/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$(free_port)"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
[monitor]
  store-enabled = false
[logging]
  level = "warn"
EOF
influxd run -config "$work/influxdb.conf" >"$work/influxd.log" 2>&1 &
pids+=($!)
influx="http://127.0.0.1:$influx_port"
await curl -sf "$influx/ping"
curl -sf -XPOST "$influx/query" --data-urlencode "q=CREATE DATABASE aggregator" >/dev/null

echo "== producing $events feedback events to Kafka ($kafka, topic feedback)"
"$build/examples/produce_feedback" --kafka="$kafka" --topic=feedback --events="$events"

echo "== aggregating them per $dimension over 5-minute windows into InfluxDB ($influx)"
"$build/bin/sluice" run --local "$build/examples/aggregator.so" -- \
  --kafka="$kafka" --topic=feedback --influx="$influx/aggregator" --dimension="$dimension" \
  --window=5m --out-of-orderness=10s --bounded --parallelism=2 \
  --checkpoint-interval=1s --checkpoint-dir="$work/checkpoints" \
  --dead-letters="$work/dead-letters"
echo "== dead letters: $(cat "$work"/dead-letters/part-* 2>/dev/null | wc -l) (malformed or too late)"

echo "== SELECT * FROM feedback (InfluxDB)"
curl -sf -G "$influx/query" --data-urlencode db=aggregator \
  --data-urlencode "q=SELECT * FROM feedback GROUP BY $dimension" --data-urlencode epoch=ms \
  >"$work/points.json"
python3 - "$work/points.json" "$dimension" <<'PY'
import datetime, json, sys
rows = []
for series in json.load(open(sys.argv[1]))["results"][0].get("series", []):
    (value,) = series["tags"].values()
    for row in series["values"]:
        rows.append((row[0], value, dict(zip(series["columns"], row))))
rows.sort()
print("%-16s  %-10s %7s %7s %8s %10s %10s" %
      ("window end (UTC)", sys.argv[2], "users", "events", "offload", "rebuf p50", "rebuf p95"))
for time_ms, value, r in rows:
    end = datetime.datetime.fromtimestamp(time_ms / 1000, datetime.timezone.utc)
    print("%-16s  %-10s %7d %7d %7.1f%% %8dms %8dms" %
          (end.strftime("%Y-%m-%d %H:%M"), value, r["unique_users"], r["events"],
           100 * r["offload_ratio"], r["rebuffer_p50_ms"], r["rebuffer_p95_ms"]))
print("%d points" % len(rows))
PY
