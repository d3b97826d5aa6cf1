#!/usr/bin/env bash
# The container images, built for real and run: `task checks:image`.
#
#   1. a local stand-in for the base image (scripts/checks/base-image.sh: Debian bookworm and
#      Python 3.11 of the official image's shape, checked), since no registry can be reached;
#   2. `buildah bud --isolation chroot` of the Dockerfile's api and worker targets on it, with
#      this machine's TLS trust store and pip configuration mounted read-only into the RUN steps
#      (never copied into an image); prints build times and image sizes;
#   3. what is inside: the non-root user and entrypoint, no build tools, no pip configuration
#      or trust store of this machine, pillow-simd with AVX2 instructions and every codec in both,
#      onnxruntime and verified model files in the worker only, every shared library that the
#      virtual environment loads present and from a package the official base has or the
#      Dockerfile installs (none from what only the stand-in has);
#   4. the images run: each image's root filesystem mounted (buildah mount) and its entrypoint
#      run with chroot as the image's user, on the host network, against this machine's
#      PostgreSQL (own database), RabbitMQ (own vhost), Redis and a moto S3 server: migrate and
#      api from the api image, the standard and the ML worker from the worker image, then one
#      job with a resize + WebP output and a blur_faces output over HTTP.
# Everything it starts or creates is removed on exit, failed or not; the built images and
# buildah's layer cache stay (later runs reuse them), as does the pillow-simd wheel cache.
#
# Needs: root, buildah, mmdebstrap, the services above, and .venv (moto, httpx and the sample
# photo: `task setup`). PIXTOOLS_IMAGE_NO_BUILD=1 skips the build and checks the images of the
# previous one again (development only). Bounded: every slow step has a timeout. Measured here
# on 2 shared cores: 10-13 minutes from empty caches, 1-2 with everything cached.
set -Eeuo pipefail
# The whole script is one block, read before it starts: editing the file during a run (it runs
# for many minutes) cannot change that run.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/checks/lib.sh
source "$ROOT/scripts/checks/lib.sh"

VENV_PY="${VENV:-$ROOT/.venv}/bin/python"
PG_ADMIN="${PIXTOOLS_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}"
RABBIT_HOST="${PIXTOOLS_TEST_RABBIT_HOST:-127.0.0.1:5672}"
REDIS_URL="${PIXTOOLS_TEST_REDIS:-redis://127.0.0.1:6379}/${PIXTOOLS_TEST_REDIS_DB:-11}"
BUILD_TIMEOUT="${PIXTOOLS_IMAGE_BUILD_TIMEOUT:-2400}"
TAG="${PIXTOOLS_IMAGE_TAG:-check}"
API_IMAGE="localhost/pixtools-api:$TAG"
WORKER_IMAGE="localhost/pixtools-worker:$TAG"
RUN_ID="image_$(date +%s)_$$"
WORK="$(mktemp -d /tmp/pixtools-image-check.XXXXXX)"
figures=()

die() {
    printf '\n*** image: FAILED: %s ***\n' "$*" >&2
    exit 1
}
figure() {
    figures+=("$*")
    printf '  %s\n' "$*"
}

# --- cleanup, on every exit ---------------------------------------------------------------
declare -A PIDS=()      # name -> pid of a process started in a chroot (its own session)
CONTAINERS=()           # buildah working containers
MOUNTS=()               # mount points inside them, unmounted in reverse order
MOTO_PID=""
BUILD_PID=""            # a running buildah bud (in the background, so a signal is handled at once)
DB_CREATED=""
VHOST_CREATED=""

cleanup() {
    local rc=$?
    set +e
    trap - ERR
    if [[ -n $BUILD_PID ]]; then
        # An interrupted build leaves its working containers behind: remove those it made.
        kill -TERM "$BUILD_PID" 2>/dev/null
        wait "$BUILD_PID" 2>/dev/null
        for ctr in $(buildah containers -q); do
            grep -qx "$ctr" "$WORK/containers-before" || buildah rm "$ctr" >/dev/null 2>&1
        done
    fi
    stop_processes 20
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount -R "${MOUNTS[$i]}" 2>/dev/null || umount -R -l "${MOUNTS[$i]}" 2>/dev/null
    done
    for ctr in "${CONTAINERS[@]}"; do
        buildah umount "$ctr" >/dev/null 2>&1
        buildah rm "$ctr" >/dev/null 2>&1
    done
    [[ -n $MOTO_PID ]] && kill "$MOTO_PID" 2>/dev/null
    if [[ -n $DB_CREATED ]]; then
        psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS \"$DB_CREATED\" WITH (FORCE)" >/dev/null 2>&1 \
            || echo "image: could not drop the database $DB_CREATED" >&2
    fi
    if [[ -n $VHOST_CREATED ]]; then
        local deleted=""
        for _ in 1 2 3; do
            if timeout 120 rabbitmqctl -q delete_vhost "$VHOST_CREATED" >/dev/null 2>&1; then
                deleted=1
                break
            fi
            sleep 2
        done
        [[ -n $deleted ]] || echo "image: could not delete the RabbitMQ vhost $VHOST_CREATED" >&2
    fi
    timeout 10 redis-cli -u "$REDIS_URL" flushdb >/dev/null 2>&1
    if ((rc != 0)); then
        for log in "$WORK"/*.log; do
            [[ -f $log ]] || continue
            printf '\n--- last lines of %s ---\n' "$(basename "$log")" >&2
            tail -n 40 "$log" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
# stop_processes [SECONDS]: SIGTERM to each main process, as Kubernetes does to a container, up
# to SECONDS (default 60) for all to finish (the workers finish in-flight work first), then
# SIGKILL to whatever is left of their process groups.
stop_processes() {
    local name alive grace=${1:-60} start=$SECONDS
    local deadline=$((SECONDS + grace))
    ((${#PIDS[@]})) || return 0
    for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null; done
    while ((SECONDS < deadline)); do
        alive=0
        for name in "${!PIDS[@]}"; do kill -0 "${PIDS[$name]}" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 1
    done
    local stuck=()
    for name in "${!PIDS[@]}"; do
        if kill -0 "${PIDS[$name]}" 2>/dev/null; then stuck+=("$name"); fi
        kill -KILL -- "-${PIDS[$name]}" 2>/dev/null
    done
    PIDS=()
    if ((${#stuck[@]})); then
        echo "  did not stop on SIGTERM within $grace s: ${stuck[*]}"
        return 1
    fi
    echo "  processes stopped in $((SECONDS - start)) s"
}
trap cleanup EXIT
# Killed (CI's timeout, ^C): exit through the EXIT trap, so everything is still cleaned up.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'echo "image: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

step "preflight"
[[ $(id -u) -eq 0 ]] || die "needs root (buildah, mount, chroot)"
for tool in buildah mmdebstrap chroot psql rabbitmqctl redis-cli objdump; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ -x $VENV_PY ]] || die "no $VENV_PY (task setup)"
"$VENV_PY" -c 'import moto, httpx, boto3; from tests.support import samples; samples.astronaut()' \
    || die "$VENV_PY lacks moto, httpx, boto3 or the sample photo (task setup)"
pg_isready -q -d "$PG_ADMIN" || die "PostgreSQL is not answering at $PG_ADMIN"
timeout 10 redis-cli -u "$REDIS_URL" ping >/dev/null || die "Redis is not answering"
buildah --version

# --- 1. the base --------------------------------------------------------------------------
step "base image (stand-in for python:3.11-slim-bookworm)"
start=$SECONDS
export BASE_EXTRAS_FILE="$WORK/base-extras.txt"
BASE_IMAGE="$(timeout 1500 bash scripts/checks/base-image.sh | tail -n 1)" || die "base image"
figure "base image $BASE_IMAGE ready in $((SECONDS - start)) s"

# --- 2. the build -------------------------------------------------------------------------
step "pip configuration and trust store for the RUN steps (mounted read-only, never copied)"
# pip inside the build reaches the package index as pip does here: this machine's effective pip
# configuration (files and PIP_* variables, merged as pip merges them) goes into one file
# mounted at /etc/pip.conf, and every local path it names (the trust store, wheel directories,
# local indexes, constraint files) is mounted read-only at the same place.
"$VENV_PY" - "$WORK/pip.conf" "$WORK/mounts" <<'PY'
import configparser
import os
import sys

from pip._internal.configuration import Configuration

conf = Configuration(isolated=False)
conf.load()
merged: dict[str, dict[str, str]] = {}
from_env: dict[str, str] = {}
def settings():
    """("section.name", value) in pip's precedence order. pip 23 yields those pairs from
    items(); pip 26 yields (file, {"section.name": value}) per configuration file."""
    for key, value in conf.items():
        if isinstance(value, dict):
            yield from value.items()
        else:
            yield key, value


for key, value in settings():
    section, _, name = key.partition(".")
    if section == ":env:":
        from_env[name] = value
    else:
        merged.setdefault(section, {})[name] = value
merged.setdefault("global", {}).update(from_env)  # variables override files, as in pip
parser = configparser.ConfigParser(interpolation=None)
for section, values in merged.items():
    parser[section] = values
with open(sys.argv[1], "w") as f:
    parser.write(f)
paths = set()
for values in merged.values():
    for value in values.values():
        for token in value.split():
            path = token.removeprefix("file://")
            if path.startswith("/") and os.path.exists(path):
                # A local "simple" index links to files beside it (../../files/...).
                if os.path.basename(path.rstrip("/")) == "simple":
                    path = os.path.dirname(path.rstrip("/"))
                paths.add(os.path.realpath(path) if os.path.isfile(path) else path)
with open(sys.argv[2], "w") as f:
    f.write("\n".join(sorted(paths)) + "\n")
PY
BUILD_MOUNTS=(-v /etc/ssl/certs:/etc/ssl/certs:ro -v "$WORK/pip.conf:/etc/pip.conf:ro")
while read -r path; do
    [[ -z $path || $path == /etc/ssl/certs* ]] && continue
    BUILD_MOUNTS+=(-v "$path:$path:ro")
done <"$WORK/mounts"
sed 's/^/  /' "$WORK/pip.conf"
printf '  mounts: %s\n' "${BUILD_MOUNTS[*]}"

build() {
    local target=$1 image=$2 start=$SECONDS
    step "buildah bud --target $target"
    buildah containers -q >"$WORK/containers-before"
    timeout "$BUILD_TIMEOUT" buildah bud --isolation chroot --format docker --layers --force-rm --pull=false \
        --build-arg BASE_IMAGE="$BASE_IMAGE" "${BUILD_MOUNTS[@]}" \
        --target "$target" -t "$image" -f Dockerfile . >"$WORK/build-$target.log" 2>&1 &
    BUILD_PID=$!
    local rc=0
    wait "$BUILD_PID" || rc=$?
    # Kept when the build failed or timed out: cleanup then removes what it left behind.
    ((rc != 0)) || BUILD_PID=""
    if ((rc != 0)); then
        tail -n 60 "$WORK/build-$target.log" >&2
        die "build of $target (log above; timeout ${BUILD_TIMEOUT}s)"
    fi
    grep -E '^install-pillow-simd: (ok|compiled|reusing)' "$WORK/build-$target.log" | sed 's/^/  /' || true
    figure "build $target: $((SECONDS - start)) s"
}
if [[ -n ${PIXTOOLS_IMAGE_NO_BUILD:-} ]]; then
    # Development only: check and run the images of an earlier build again.
    for image in "$API_IMAGE" "$WORKER_IMAGE"; do
        buildah inspect --type image "$image" >/dev/null || die "no $image to reuse"
    done
    echo "PIXTOOLS_IMAGE_NO_BUILD: reusing $API_IMAGE and $WORKER_IMAGE"
else
    build api "$API_IMAGE"
    build worker "$WORKER_IMAGE"
fi

step "image sizes"
for image in "$BASE_IMAGE" "$API_IMAGE" "$WORKER_IMAGE"; do
    figure "$(buildah images --format '{{.Name}}:{{.Tag}}  {{.Size}}' "$image" | sed -n 1p)"
done

# --- 3. what is inside --------------------------------------------------------------------
# mount_image IMAGE NAME: a fresh working container of IMAGE, its root filesystem mounted;
# sets MNT.
mount_image() {
    local ctr
    ctr="$(buildah from --pull=false --name "pixtools-$2-$RUN_ID" "$1")"
    CONTAINERS+=("$ctr")
    MNT="$(buildah mount "$ctr")"
}
config_of() { buildah inspect --type image --format "$2" "$1"; }

# prepare_root IMAGE NAME: a working container of IMAGE with what a container runtime would
# give it: /proc, /dev, /sys, the host's resolv.conf, /tmp as a fresh tmpfs (the pods' emptyDir)
# and the root filesystem read-only, as in the pods. Sets MNT.
prepare_root() {
    mount_image "$1" "$2"
    mount -t proc proc "$MNT/proc" 2>/dev/null || { mount --rbind /proc "$MNT/proc" && mount --make-rslave "$MNT/proc"; }
    MOUNTS+=("$MNT/proc")
    mount --rbind /dev "$MNT/dev" && mount --make-rslave "$MNT/dev"
    MOUNTS+=("$MNT/dev")
    mount --rbind /sys "$MNT/sys" && mount --make-rslave "$MNT/sys"
    MOUNTS+=("$MNT/sys")
    mount -t tmpfs -o mode=1777,size=512m tmpfs "$MNT/tmp"
    MOUNTS+=("$MNT/tmp")
    touch "$MNT/etc/resolv.conf"
    mount --bind -o ro /etc/resolv.conf "$MNT/etc/resolv.conf"
    MOUNTS+=("$MNT/etc/resolv.conf")
    # The pods run with readOnlyRootFilesystem: so do these processes (only /tmp is writable).
    mount -o remount,ro "$MNT" || die "cannot make the root filesystem of $2 read-only"
}

inspect_image() {
    local image=$1 kind=$2 problems=() mnt
    step "inside $image"
    prepare_root "$image" "inspect-$kind"
    mnt=$MNT
    [[ $(config_of "$image" '{{.OCIv1.Config.User}}') == "10001:10001" ]] || problems+=("user is not 10001:10001")
    [[ $(config_of "$image" '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}') == pixtools ]] || problems+=("entrypoint is not pixtools")
    for tool in gcc cc make pkg-config; do
        [[ -e $mnt/usr/bin/$tool ]] && problems+=("$tool is in the image")
    done
    # Nothing of this machine's build-time configuration stays behind. buildah leaves the mount
    # points of `-v` behind, empty (a build without them, as in production, has none): they must
    # stay empty.
    local leftovers=()
    for path in /etc/pip.conf $(cat "$WORK/mounts"); do
        [[ $path == /etc/ssl/certs* || ! -e $mnt$path ]] && continue
        if [[ (-f $mnt$path && -s $mnt$path) || (-d $mnt$path && -n $(ls -A "$mnt$path")) ]]; then
            problems+=("$path (mounted into the build) is in the image with content")
        else
            leftovers+=("$path")
        fi
    done
    ((${#leftovers[@]} == 0)) || echo "  empty mount points left by buildah: ${leftovers[*]}"
    local base_ca image_ca host_ca
    image_ca="$(sha256sum <"$mnt/etc/ssl/certs/ca-certificates.crt" | cut -c1-64)"
    base_ca="$(buildah run --isolation chroot "$BASE_CTR" -- cat /etc/ssl/certs/ca-certificates.crt | sha256sum | cut -c1-64)"
    host_ca="$(sha256sum </etc/ssl/certs/ca-certificates.crt | cut -c1-64)"
    [[ $image_ca == "$base_ca" ]] || problems+=("/etc/ssl/certs/ca-certificates.crt is not the base image's")
    [[ $image_ca != "$host_ca" || $host_ca == "$base_ca" ]] || problems+=("the image carries this machine's trust store")

    # pillow-simd: AVX2 instructions in the core module, and what it reports of itself.
    local imaging ymm
    imaging="$(find "$mnt/opt/venv/lib" -path '*/site-packages/PIL/_imaging.cpython-*.so' -print -quit)"
    ymm="$(objdump -d --no-show-raw-insn "$imaging" | grep -c '%ymm' || true)"
    # ~9,000 at -O3 with -mavx2; none without AVX2, ~1,000 if the Python build's -O2 prevailed.
    ((ymm > 5000)) || problems+=("PIL/_imaging has $ymm AVX2 (ymm) instructions, expected > 5000")
    local report
    report="$(chroot --userspec=10001:10001 "$mnt" /usr/bin/env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/tmp \
        python -c 'import json; from pixtools.imaging import build_info; print(json.dumps(build_info(), sort_keys=True))')"
    figure "$kind image: pillow $(python3 -c 'import json,sys; i=json.loads(sys.argv[1]); print(i["pillow_version"], "simd" if i["is_simd"] else "NOT simd", "avif:", i["avif"], "missing:", [k for k, v in i["features"].items() if not v] or "none")' "$report"), $ymm ymm instructions in _imaging"
    python3 -c 'import json,sys; i=json.loads(sys.argv[1]); sys.exit(0 if i["is_simd"] and all(i["features"].values()) else 1)' "$report" \
        || problems+=("pillow-simd with every codec: $report")

    # The ML runtime: in the worker and only there.
    if [[ $kind == worker ]]; then
        chroot --userspec=10001:10001 "$mnt" /usr/bin/env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/tmp \
            python -c 'import onnxruntime; from pixtools.ml.ops import verify_models; verify_models(); print("  onnxruntime", onnxruntime.__version__, "and every model file verified")' \
            || problems+=("onnxruntime or the model files")
    else
        [[ -z $(find "$mnt/opt/venv/lib" -maxdepth 3 -name 'onnxruntime*' -print -quit) ]] || problems+=("onnxruntime is in the api image")
    fi

    # Shared libraries: every ELF file of the virtual environment resolves all of its libraries,
    # and none comes from a package only the stand-in base has.
    local libs owners bad
    find "$mnt/opt/venv" -type f \( -name '*.so' -o -name '*.so.*' \) -printf '/%P\n' | sed 's|^|/opt/venv|' >"$WORK/elf-$kind"
    chroot "$mnt" /bin/bash -c 'while read -r f; do ldd "$f" 2>/dev/null | sed "s|^|$f: |"; done' <"$WORK/elf-$kind" >"$WORK/ldd-$kind" || true
    if grep -q 'not found' "$WORK/ldd-$kind"; then
        problems+=("unresolved libraries: $(grep -m 5 'not found' "$WORK/ldd-$kind" | tr '\n' ';')")
    fi
    libs="$(grep -o '=> /[^ ]*' "$WORK/ldd-$kind" | cut -c4- | grep -v '^/opt/venv/' | sort -u)"
    owners="$(chroot "$mnt" /bin/bash -c 'while read -r l; do
        dpkg -S "$l" 2>/dev/null || dpkg -S "${l#/usr}" 2>/dev/null || dpkg -S "/usr$l" 2>/dev/null || echo "NONE: $l"
    done' <<<"$libs" | cut -d: -f1 | sort -u)"
    grep -q '^NONE' <<<"$owners" && problems+=("libraries no package owns: $(grep '^NONE' <<<"$owners" | tr '\n' ' ')")
    bad="$(comm -12 <(sort -u "$BASE_EXTRAS_FILE") <(echo "$owners"))"
    [[ -z $bad ]] || problems+=("libraries loaded from packages only the stand-in base has: $bad")
    figure "$kind image: $(wc -l <"$WORK/elf-$kind") shared objects in /opt/venv load $(echo "$libs" | wc -l) system libraries from: $(echo $owners)"

    if ((${#problems[@]})); then
        printf '  %s\n' "${problems[@]}" >&2
        die "$image (above)"
    fi
    echo "ok: $image"
}
BASE_CTR="$(buildah from --pull=false --name "pixtools-base-$RUN_ID" "$BASE_IMAGE")"
CONTAINERS+=("$BASE_CTR")
inspect_image "$API_IMAGE" api
inspect_image "$WORKER_IMAGE" worker

# --- 4. the images run --------------------------------------------------------------------
step "services: PostgreSQL database, RabbitMQ vhost, Redis db, moto S3"
DB="pixtools_$RUN_ID"
psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$DB\"" && DB_CREATED=$DB
timeout 120 rabbitmqctl -q add_vhost "$RUN_ID" && VHOST_CREATED=$RUN_ID
timeout 120 rabbitmqctl -q set_permissions -p "$RUN_ID" guest '.*' '.*' '.*'
timeout 10 redis-cli -u "$REDIS_URL" flushdb >/dev/null
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MOTO_PORT="$(free_port)"
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "$VENV_PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
BUCKET="pixtools-${RUN_ID//_/-}"
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null && break; sleep 0.5; done
"$VENV_PY" -c 'import sys, boto3; boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket=sys.argv[2])' \
    "http://127.0.0.1:$MOTO_PORT" "$BUCKET"
echo "database $DB, vhost $RUN_ID, $REDIS_URL, s3://$BUCKET at 127.0.0.1:$MOTO_PORT"

API_PORT="$(free_port)"
SERVICE_ENV=(
    "PIXTOOLS_DATABASE_URL=${PG_ADMIN%/*}/$DB"
    "PIXTOOLS_RABBITMQ_URL=amqp://guest:guest@$RABBIT_HOST/$RUN_ID"
    "PIXTOOLS_REDIS_URL=$REDIS_URL"
    "PIXTOOLS_S3_BUCKET=$BUCKET"
    "PIXTOOLS_S3_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT"
    "PIXTOOLS_WEBHOOK_SECRET=image-check"
    "AWS_ACCESS_KEY_ID=test" "AWS_SECRET_ACCESS_KEY=test" "AWS_DEFAULT_REGION=us-east-1"
)
SERVICE_ENV[0]="${SERVICE_ENV[0]/postgresql:/postgresql+asyncpg:}"

# in_image IMAGE ROOT [ARG...]: the image's entrypoint (with ARGs, else its command) as the
# image's user, in its working directory, with its environment plus SERVICE_ENV.
in_image() {
    local image=$1 root=$2
    shift 2
    local user workdir env=() cmd=()
    user="$(config_of "$image" '{{.OCIv1.Config.User}}')"
    workdir="$(config_of "$image" '{{.OCIv1.Config.WorkingDir}}')"
    mapfile -t env < <(config_of "$image" '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' | grep -v '^$')
    mapfile -t cmd < <(config_of "$image" '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}' | grep -v '^$')
    if (($#)); then
        cmd+=("$@")
    else
        mapfile -t -O "${#cmd[@]}" cmd < <(config_of "$image" '{{range .OCIv1.Config.Cmd}}{{println .}}{{end}}' | grep -v '^$')
    fi
    [[ $user =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "$image runs as '$user', not a numeric non-root user"
    exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "${workdir:-/}" "${env[@]}" "${SERVICE_ENV[@]}" "${cmd[@]}"
}

# launch NAME IMAGE [ARG...]: in_image in the background, in its own session (stopped as a group).
launch() {
    local name=$1 image=$2
    shift 2
    prepare_root "$image" "$name"
    setsid bash -c "$(declare -f in_image config_of die); $(declare -p SERVICE_ENV); in_image \"\$@\"" \
        _ "$image" "$MNT" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS[$name]=$!
    echo "$name: pid ${PIDS[$name]} from $image ($*)"
}

step "migrate (api image)"
prepare_root "$API_IMAGE" migrate
start=$SECONDS
timeout 300 bash -c "$(declare -f in_image config_of die); $(declare -p SERVICE_ENV); in_image \"\$@\"" \
    _ "$API_IMAGE" "$MNT" migrate >"$WORK/migrate.log" 2>&1 || die "pixtools migrate"
cat "$WORK/migrate.log" | tail -n 3
figure "migrate: $((SECONDS - start)) s"

step "api (api image), standard and ML workers (worker image)"
start=$SECONDS
launch api "$API_IMAGE" api --host 127.0.0.1 --port "$API_PORT"
launch worker-standard "$WORKER_IMAGE"
launch worker-ml "$WORKER_IMAGE" worker --queues ml --processes 1 --threads 1
ready=""
for _ in $(seq 240); do
    for name in "${!PIDS[@]}"; do
        kill -0 "${PIDS[$name]}" 2>/dev/null || die "$name exited (its log is below)"
    done
    if curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null; then ready=1; break; fi
    sleep 0.5
done
[[ -n $ready ]] || die "api not ready after 120 s"
figure "api ready in $((SECONDS - start)) s"

step "a job over HTTP: resize + WebP (standard) and blur_faces (ML)"
timeout 360 "$VENV_PY" scripts/checks/image_job.py "http://127.0.0.1:$API_PORT" | tee "$WORK/job.out" \
    || die "the job"
figure "$(grep '^job ' "$WORK/job.out")"
for name in worker-standard worker-ml; do
    kill -0 "${PIDS[$name]}" 2>/dev/null || die "$name exited"
done

step "stop: SIGTERM to the api and the workers"
stop_processes >"$WORK/stop.out" || die "$(cat "$WORK/stop.out")"
figure "api and workers: $(sed 's/^ *//' "$WORK/stop.out")"

step "figures"
printf '  %s\n' "${figures[@]}"
echo
echo "== image: all checks passed"
exit 0
}
