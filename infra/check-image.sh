#!/usr/bin/env bash
# Build the railwatch image and run compose.yaml's railwatch services from it, on the host's
# network, the way the stack uses them:
#   - a Prefect server (the railwatch image has the pinned Prefect; compose uses Prefect's own
#     image of the same version, on PostgreSQL; here it keeps SQLite);
#   - compose's `deploy` step, its command read from compose.yaml (work pool, rate limits,
#     `prefect deploy --all` of prefect.yaml);
#   - a Dask scheduler and one Dask worker;
#   - the worker: the image's default command, until /health answers and the image's own
#     HEALTHCHECK passes;
#   - a backfill of simulated scenes started through the `backfill` deployment, run by the
#     containerised worker with its tasks on the containerised Dask worker; the counts must
#     then be in the store on the shared /data volume.
# The catalog is the simulator (on /data). Clip store and counts are the embedded defaults (a
# folder and SQLite on /data) unless the production settings compose sets are set here too:
# RAILWATCH_STORE, RAILWATCH_S3_ENDPOINT_URL, AWS_*, RAILWATCH_DATABASE_URL (an S3 endpoint and
# a PostgreSQL server the host network reaches) are passed to every railwatch container.
#
# Usage: infra/check-image.sh            (from anywhere; docker by default)
#   ENGINE=podman BUILD_OPTS="--format docker" infra/check-image.sh
# Needs ports 4299, 8796, 8797 and 8080 free on the host; KEEP=1 leaves the containers running.
set -euo pipefail

ENGINE=${ENGINE:-docker}
TAG=${TAG:-railwatch:check}
BUILD_OPTS=${BUILD_OPTS:-}
START=${START:-2023-09-08}
END=${END:-2023-09-24}  # past 09-22, the surge's first day: its alert's quicklooks are rendered too
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=railwatch-check
API=http://127.0.0.1:4299/api
SCHEDULER=tcp://127.0.0.1:8796
VOLUME=$NAME-data

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    for c in prefect scheduler dask-worker worker; do
      printf -- '--- last lines of %s\n' "$c" >&2
      $ENGINE logs --tail 30 "$NAME-$c" >&2 2>/dev/null || true
    done
  fi
  [ -n "${KEEP:-}" ] && return  # KEEP=1: leave the containers running to look into
  $ENGINE rm -f "$NAME-prefect" "$NAME-scheduler" "$NAME-dask-worker" "$NAME-worker" >/dev/null 2>&1 || true
  $ENGINE volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT
# production settings given to this script go to every railwatch container
SETTINGS=()
for var in RAILWATCH_STORE RAILWATCH_S3_ENDPOINT_URL RAILWATCH_DATABASE_URL AWS_ACCESS_KEY_ID \
           AWS_SECRET_ACCESS_KEY AWS_REGION; do
  if [ -n "${!var:-}" ]; then SETTINGS+=(-e "$var"); fi
done
# a container on the host network, named, with the shared data volume
run_bg() {
  local name=$1; shift
  $ENGINE run -d --name "$NAME-$name" --network host -v "$VOLUME:/data" ${SETTINGS[@]+"${SETTINGS[@]}"} "$@" >/dev/null
}
run_once() { $ENGINE run --rm --network host -v "$VOLUME:/data" ${SETTINGS[@]+"${SETTINGS[@]}"} "$@"; }
wait_http() {  # url, what, seconds
  for _ in $(seq "$3"); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  fail "$2 did not answer at $1 within $3 s"
}

say "build $TAG"
# shellcheck disable=SC2086
$ENGINE build $BUILD_OPTS -t "$TAG" "$ROOT"

say "the image: non-root, installed as pinned"
uid=$($ENGINE run --rm "$TAG" id -u)
[ "$uid" = 10001 ] || fail "runs as uid $uid, not 10001"
$ENGINE run --rm "$TAG" pip check
$ENGINE run --rm -i "$TAG" python - <<'EOF'
from importlib.metadata import distributions
from packaging.requirements import Requirement
pins = {}
for line in open("/app/constraints.txt"):
    line = line.split("#")[0].strip()
    if line:
        req = Requirement(line)
        pins[req.name.lower().replace("_", "-")] = req.specifier
installed = list(distributions())
wrong = []
for dist in installed:
    name = dist.metadata["Name"].lower().replace("_", "-")
    if name in ("pip", "setuptools", "wheel"):  # packaging tools that come with the base image
        continue
    if name in pins and dist.version not in pins[name]:
        wrong.append(f"{name} {dist.version} (pinned {pins[name]})")
print(f"{len(installed)} distributions installed, {len(pins)} pins in constraints.txt, off pin: {wrong or 'none'}")
raise SystemExit(1 if wrong else 0)
EOF

$ENGINE volume rm -f "$VOLUME" >/dev/null 2>&1 || true
$ENGINE volume create "$VOLUME" >/dev/null
say "Prefect server, Dask scheduler and worker"
run_bg prefect "$TAG" prefect server start --host 127.0.0.1 --port 4299
run_bg scheduler "$TAG" dask scheduler --host 127.0.0.1 --port 8796 --dashboard-address 127.0.0.1:8797
run_bg dask-worker -e PREFECT_API_URL=$API -e DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=false "$TAG" \
  dask worker "$SCHEDULER" --nthreads 1 --memory-limit 4GB
wait_http "$API/health" "the Prefect server" 180
wait_http http://127.0.0.1:8797/health "the Dask scheduler" 60

say "the deploy step of compose.yaml"
deploy=$($ENGINE run --rm -v "$ROOT/infra:/infra:ro" "$TAG" python -c \
  'import yaml; print(yaml.safe_load(open("/infra/compose.yaml"))["services"]["deploy"]["command"][0])')
echo "$deploy"
run_once -e PREFECT_API_URL=$API "$TAG" sh -c "$deploy"

say "settings: store $(run_once "$TAG" python -c 'from railwatch.settings import get_settings as g; s = g(); print(s.store_url, "| counts", s.db_url.split("@")[-1])')"
say "simulated scenes $START … $END on the data volume"
run_once "$TAG" railwatch simulate --start "$START" --end "$END"

say "the worker (the image's default command) and its health check"
run_bg worker -e PREFECT_API_URL=$API -e RAILWATCH_DASK_ADDRESS=$SCHEDULER \
  -e DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=false "$TAG"
wait_http http://127.0.0.1:8080/health "the worker's health endpoint" 120
if [ "$ENGINE" = podman ]; then
  $ENGINE healthcheck run "$NAME-worker" || fail "the image's HEALTHCHECK failed"
else  # docker runs the HEALTHCHECK itself (after its start period); not run here, no engine
  for _ in $(seq 60); do
    health=$($ENGINE inspect --format '{{.State.Health.Status}}' "$NAME-worker")
    [ "$health" = healthy ] && break
    [ "$health" = unhealthy ] && fail "the image's HEALTHCHECK failed"
    sleep 3
  done
  [ "$health" = healthy ] || fail "the image's HEALTHCHECK did not pass within 180 s"
fi
echo "healthy"

say "a backfill through the deployment, run by the containerised worker"
run_once -e PREFECT_API_URL=$API "$TAG" prefect deployment run railwatch-backfill/backfill \
  --param "request={\"start\": \"$START\", \"end\": \"$END\"}" --watch --watch-timeout 900
run_once "$TAG" railwatch export --aoi tumangang --out /data/counts.csv >/dev/null
rows=$(run_once "$TAG" sh -c 'tail -n +2 /data/counts.csv | wc -l')
scenes=$(run_once "$TAG" sh -c 'ls /data/simulator/tumangang | grep -vc json')
echo "$rows stored count(s) for $scenes simulated scene(s)"
[ "$rows" -gt 0 ] && [ "$rows" = "$scenes" ] || fail "expected one count per simulated scene"
tasks=$(run_once "$TAG" python -c "from distributed import Client
with Client('$SCHEDULER', timeout=10) as c:
    print(c.run_on_scheduler(lambda dask_scheduler: sum(
        p.state_counts.get('memory', 0) for p in dask_scheduler.task_prefixes.values())))")
echo "Dask scheduler: $tasks task(s) computed"
[ "$tasks" -gt 0 ] || fail "no task ran on the containerised Dask worker"
quicklooks=$(run_once "$TAG" python -c "from railwatch.adapters.store import open_store
from railwatch.settings import get_settings
print(sum(k.endswith('/quicklook.png') for k in open_store(get_settings().store_url).list('tumangang/')))")
echo "$quicklooks alert quicklook(s) in the store"
if [[ "$END" > "2023-09-21" ]]; then
  [ "$quicklooks" -gt 0 ] || fail "the surge from 2023-09-22 has no quicklook in the store"
fi
say "OK"
