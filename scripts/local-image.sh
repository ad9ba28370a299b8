#!/usr/bin/env bash
# A Docker engine and the Lambda Python base image that `sam local invoke` looks up, built from local parts
# (Debian packages, a pyenv Python, awslambdaric from PyPI) for hosts that cannot reach an image registry.
# What it does and leaves behind: docs/operations.md, "In a Lambda container".
#
#   scripts/local-image.sh up       engine running + image tagged (idempotent: does only what is missing)
#   scripts/local-image.sh start    engine only, and only if Debian's docker.io is already installed
#   scripts/local-image.sh stop     stops the engine this script started (containers first); keeps images
#   scripts/local-image.sh status   prints what is there and exits 0 only if engine and image are ready
#   scripts/local-image.sh env      prints `export DOCKER_HOST=…` for the engine this script manages
#   scripts/local-image.sh clean    stop, then delete the engine's data root and the built root filesystem
#
# Needs root (dockerd, debootstrap, apt-get). Everything it makes lives under $STATE_DIR and $RUN_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY_VERSION="${LAMBDA_PY_VERSION:-3.13.0}"           # the pyenv Python copied to /var/lang
PY_MINOR="${PY_VERSION%.*}"                           # 3.13 → the tag SAM looks up
IMAGE_TAG="public.ecr.aws/lambda/python:${PY_MINOR}-x86_64"
BASE_TAG="vpce-guard-local/debian:bookworm-minbase"
STATE_DIR="${VPCE_GUARD_LOCAL_STATE:-/var/lib/vpce-guard-local}"
RUN_DIR="${VPCE_GUARD_LOCAL_RUN:-/run/vpce-guard-docker}"
SOCK="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/dockerd.pid"
LOG="$STATE_DIR/dockerd.log"
ROOTFS="$STATE_DIR/rootfs-bookworm"
CONTEXT="$STATE_DIR/image-context"
PINS="$ROOT/requirements/local-image.txt"
# Shared libraries the copied CPython links against at run time (measured: notes, "Extra libraries").
EXTRA_DEBS="ca-certificates,libexpat1,libncursesw6,libnsl2,libreadline8,libsqlite3-0,libtirpc3,libgssapi-krb5-2,\
libffi8,libbz2-1.0,liblzma5,libuuid1,libssl3,libstdc++6"
export DOCKER_HOST="unix://$SOCK"

log() { printf 'local-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root (dockerd, debootstrap and apt-get do); run it with sudo"
}

apt_install() {
  # Install Debian packages only when their command is missing; never starts services (policy-rc.d 101).
  local missing=()
  while [ $# -gt 0 ]; do command -v "$1" >/dev/null 2>&1 || missing+=("$2"); shift 2; done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  local rc_d=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$rc_d" ]; then printf '#!/bin/sh\nexit 101\n' >"$rc_d"; chmod +x "$rc_d"; created=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created" = 1 ] && rm -f "$rc_d"
  return 0
}

start_engine() {
  if engine_up; then log "engine already running ($DOCKER_HOST)"; return 0; fi
  need_root
  apt_install dockerd docker.io
  mkdir -p "$RUN_DIR" "$STATE_DIR/docker-data"
  if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then rm -f "$PIDFILE"; fi
  log "starting dockerd on $DOCKER_HOST (log: $LOG)"
  # --iptables=false: no NAT rules on this host. NOT --bridge=none: SAM reaches the emulator through a port
  # published on 127.0.0.1, and a container reaches the host (moto) at the bridge address 172.17.0.1.
  setsid dockerd --host "$DOCKER_HOST" --data-root "$STATE_DIR/docker-data" --exec-root "$RUN_DIR/exec" \
    --pidfile "$PIDFILE" --iptables=false >>"$LOG" 2>&1 </dev/null &
  local i
  for i in $(seq 1 120); do
    engine_up && { log "engine up after ~$((i / 4)) s"; return 0; }
    kill -0 $! 2>/dev/null || die "dockerd exited; last lines of $LOG: $(tail -5 "$LOG")"
    sleep 0.25
  done
  die "dockerd did not answer on $DOCKER_HOST within 30 s; see $LOG"
}

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  # The first deb822 source that serves bookworm itself (not -security); fall back to the official mirror.
  awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources \
    2>/dev/null | head -1 | grep . || echo "http://deb.debian.org/debian"
}

build_rootfs() {
  if [ -f "$ROOTFS/.complete" ]; then return 0; fi
  need_root
  apt_install debootstrap debootstrap
  local mirror; mirror="$(debian_mirror)"
  log "debootstrap minbase bookworm from $mirror into $ROOTFS (about 45 s)"
  rm -rf "$ROOTFS"
  mkdir -p "$ROOTFS"
  debootstrap --variant=minbase --include="$EXTRA_DEBS" bookworm "$ROOTFS" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $STATE_DIR/debootstrap.log"
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  touch "$ROOTFS/.complete"
}

image_inputs_hash() {
  # What the image is made of; a change to any of it rebuilds the image (and only then).
  { cat "$0" "$PINS"; echo "$PY_VERSION"; } | sha256sum | cut -c1-16
}

build_context() {
  local pyroot; pyroot="$(pyenv root 2>/dev/null)/versions/$PY_VERSION"
  [ -x "$pyroot/bin/python$PY_MINOR" ] || die "no Python $PY_VERSION at $pyroot (pyenv install $PY_VERSION)"
  rm -rf "$CONTEXT"; mkdir -p "$CONTEXT/lang" "$CONTEXT/runtime"
  log "copying Python $PY_VERSION to the image's /var/lang (no tests, no site-packages)"
  tar -C "$pyroot" -c \
    --exclude="./lib/python$PY_MINOR/test" --exclude="./lib/python$PY_MINOR/site-packages/*" \
    --exclude="./lib/python$PY_MINOR/config-$PY_MINOR-x86_64-linux-gnu" --exclude="./lib/python$PY_MINOR/idlelib" \
    --exclude="./lib/python$PY_MINOR/tkinter" --exclude="./lib/python$PY_MINOR/turtledemo" . | tar -C "$CONTEXT/lang" -x
  log "installing the runtime interface client into the image's /var/runtime ($PINS)"
  "$pyroot/bin/python$PY_MINOR" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-compile --only-binary=:all: \
    --target "$CONTEXT/runtime" -r "$PINS"
  cat >"$CONTEXT/runtime/bootstrap" <<'EOF'
#!/bin/sh
# What the Lambda Python runtime does at start: code, layers and the runtime client on the path, then the
# runtime interface client takes invocations from the emulator (RIE) and calls $_HANDLER.
export PYTHONPATH="/var/task:/opt/python/lib/python${PY_MINOR}/site-packages:/opt/python:/var/runtime"
exec /var/lang/bin/python3 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
EOF
  sed -i "s/\${PY_MINOR}/$PY_MINOR/" "$CONTEXT/runtime/bootstrap"
  chmod 755 "$CONTEXT/runtime/bootstrap"
  cat >"$CONTEXT/Dockerfile" <<EOF
FROM $BASE_TAG
COPY lang /var/lang
COPY runtime /var/runtime
ENV LANG=C.UTF-8 TZ=:/etc/localtime PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin \\
    LD_LIBRARY_PATH=/var/lang/lib:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib \\
    LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime
WORKDIR /var/task
LABEL vpce-guard.local-image.inputs=$(image_inputs_hash) \\
      vpce-guard.local-image.note="Debian bookworm + pyenv CPython $PY_VERSION + awslambdaric; not Amazon Linux"
ENTRYPOINT ["/var/runtime/bootstrap"]
EOF
}

build_image() {
  local want have
  want="$(image_inputs_hash)"
  have="$(docker image inspect --format '{{ index .Config.Labels "vpce-guard.local-image.inputs" }}' "$IMAGE_TAG" 2>/dev/null || true)"
  if [ "$have" = "$want" ]; then log "image $IMAGE_TAG is up to date"; return 0; fi
  build_rootfs
  if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "importing the root filesystem as $BASE_TAG"
    tar -C "$ROOTFS" --exclude=./.complete -c . | docker import - "$BASE_TAG" >/dev/null
  fi
  build_context
  log "building $IMAGE_TAG"
  # The legacy builder: no BuildKit component needed, and nothing is pulled (the base image is local).
  # Built under a candidate tag and checked before it takes the tag SAM uses, so a broken build never
  # passes for an up-to-date image on the next run.
  local candidate="$IMAGE_TAG-candidate"
  DOCKER_BUILDKIT=0 docker build --quiet -t "$candidate" "$CONTEXT" >/dev/null 2>"$STATE_DIR/build.log" \
    || die "docker build failed; see $STATE_DIR/build.log"
  docker run --rm --entrypoint /var/lang/bin/python3 -e PYTHONPATH=/var/runtime "$candidate" -c \
    "import sys, ssl, sqlite3, ctypes, awslambdaric, boto3; print('local-image: image has Python', sys.version.split()[0], 'boto3', boto3.__version__)" >&2 \
    || die "the built image cannot import its runtime; not tagging it"
  docker tag "$candidate" "$IMAGE_TAG"
  docker image rm "$candidate" >/dev/null
  # This engine is ours alone: earlier builds of the image are garbage, and so is the build context.
  docker image prune -f >/dev/null
  rm -rf "$CONTEXT"
  # Images SAM derived from an older base (…:3.13-rapid-x86_64) must be rebuilt from the new one.
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -F "public.ecr.aws/lambda/python:${PY_MINOR}-rapid" \
    | xargs -r docker image rm -f >/dev/null 2>&1 || true
}

stop_engine() {
  if [ ! -f "$PIDFILE" ]; then log "no engine started by this script is running"; return 0; fi
  local pid; pid="$(cat "$PIDFILE")"
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$PIDFILE"; log "engine was not running"; return 0; fi
  if engine_up; then
    docker ps -q | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local i
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then log "dockerd still running after 15 s, killing it"; kill -KILL "$pid"; fi
  rm -f "$PIDFILE" "$SOCK"
  log "engine stopped"
}

status() {
  local ok=0
  if engine_up; then echo "engine: running ($DOCKER_HOST)"; else echo "engine: not running"; ok=1; fi
  if [ "$ok" = 0 ] && docker image inspect "$IMAGE_TAG" >/dev/null 2>&1; then
    echo "image: $IMAGE_TAG present"
  else
    echo "image: $IMAGE_TAG absent"; ok=1
  fi
  return "$ok"
}

case "${1:-up}" in
  up) start_engine; build_image; log "ready: export DOCKER_HOST=$DOCKER_HOST" ;;
  start) command -v dockerd >/dev/null || die "dockerd is not installed (make local-image installs it)"
         start_engine ;;
  stop) stop_engine ;;
  status) status ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  clean) stop_engine; need_root; rm -rf "$STATE_DIR" "$RUN_DIR"; log "removed $STATE_DIR and $RUN_DIR" ;;
  *) die "usage: $0 up|start|stop|status|env|clean" ;;
esac
