#!/usr/bin/env bash
# Runs a docker-compose command for this project, with or without a Docker engine.
#
#   deploy/compose.sh job                # the reference job (the default)
#   deploy/compose.sh up --build ...     # any docker-compose command
#   deploy/compose.sh down --remove-orphans
#
# `job` builds the image, starts the parties and follows every container's log,
# starts the coordinator once both parties are healthy, waits for it to end, stops
# the parties and exits with the coordinator's code. Unlike `up
# --abort-on-container-exit`, a party that crashes and comes back through its
# restart policy does not end the job: the coordinator recovers it.
#
# - With a Docker engine (`docker info` answers), it runs docker-compose (or
#   `docker compose`) as it is.
# - Without one, it runs rootful podman behind the Docker API for as long as the
#   command runs, and docker-compose against it. Missing Debian packages are
#   installed (root and apt needed). When no `python:3.11-slim` image can be had
#   (no registry), a minimal Debian base with python3 is built from this
#   machine's own apt sources and tagged so, once. podman runs no healthchecks
#   without systemd, so this script runs them every 2 s while the command runs.
#
# Before the command it makes the host folders the services mount (runs/alice,
# runs/bob, runs/coordinator) and chooses the containers' user: the caller's own
# uid, or, for root, the image's unprivileged user 10001, which is then given the
# runs folders and read access to the mounted keys (group 10001, mode 0640).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { echo "compose.sh: $*" >&2; }
die() { say "$*"; exit 2; }

if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  compose=(docker compose)
fi

# Commands run in the background so that a signal to this script (Ctrl-C,
# `timeout`, CI cancellation) reaches it at once; it is passed on to the command
# as SIGTERM (a background command of a script ignores SIGINT), which
# docker-compose handles as Ctrl-C: it stops the containers it started before
# this script goes on (and, without Docker, stops podman's API). `stopped_by` is
# then 128 + the signal's number, as a shell would report it.
stopped_by=0
child=""
on_signal() {
  stopped_by=$1
  [ -z "$child" ] || kill -s TERM "$child" 2>/dev/null || true
}
trap "on_signal 130" INT
trap "on_signal 143" TERM
trap "on_signal 129" HUP

run_interruptibly() {
  local status=0
  [ "$stopped_by" = 0 ] || return "$stopped_by"
  "$@" &
  child=$!
  while :; do
    wait "$child" && status=0 || status=$?
    kill -0 "$child" 2>/dev/null || break  # a signal only interrupted the wait
  done
  child=""
  [ "$stopped_by" = 0 ] || [ "$status" != 0 ] || status=$stopped_by
  return "$status"
}

run_compose() {
  run_interruptibly "${compose[@]}" "$@"
}

# Shows every container's log until the containers stop. docker-compose v1's
# `logs --follow` can end with a traceback when the engine reports the start of a
# container it can no longer inspect (seen with podman's API); it is then started
# again, and shows each log from its start once more, so that no line is lost
# (earlier lines repeat), up to 5 times. $1 is a file that is not empty once the
# job is over.
follow_logs() {
  local done_file=$1 follower="" status tries=0
  trap '[ -z "$follower" ] || kill "$follower" 2>/dev/null; exit 0' TERM
  while :; do
    "${compose[@]}" logs --follow &
    follower=$!
    wait "$follower" && status=0 || status=$?
    follower=""
    [ "$status" != 0 ] && [ ! -s "$done_file" ] || return 0
    tries=$((tries + 1))
    if [ "$tries" -gt 5 ]; then
      say "docker-compose stopped following the logs $tries times; the job goes on \
without them (\`deploy/compose.sh logs\` shows them)"
      return 0
    fi
    say "docker-compose stopped following the logs (exit $status); following them again from their start"
    sleep 1
  done
}

# The reference job (see the top of this file); $1 is the engine's command line
# tool, for `wait`. Whatever happens (a failed build, an unhealthy party, a
# signal), the parties are stopped before this returns.
run_job() {
  local engine=$1 status=0 logs="" coordinator="" exit_file
  exit_file=$(mktemp "${TMPDIR:-/tmp}/splitrec-job.XXXXXX")
  # A new coordinator container each time, so that the log below begins with
  # this job; parties are recreated for the same reason (their outputs live in
  # the mounted runs folders, which stay).
  if run_compose rm --force --stop coordinator \
      && run_compose up --build --detach --force-recreate alice bob; then
    follow_logs "$exit_file" &
    logs=$!
    if run_compose up --detach coordinator; then
      coordinator=$("${compose[@]}" ps -q coordinator) || true
      [ -n "$coordinator" ] || { say "no coordinator container"; status=1; }
    else
      status=$?
    fi
  else
    status=$?
  fi
  if [ "$status" = 0 ]; then
    run_interruptibly "$engine" wait "$coordinator" >"$exit_file" || status=$?
    [ "$status" != 0 ] || status=$(tr -dc 0-9 <"$exit_file")
    [ -n "$status" ] || status=1
  fi
  [ "$stopped_by" = 0 ] || status=$stopped_by
  echo "$status" >"$exit_file"  # the job is over: the log follower may end
  # The parties stop gracefully; the log stream ends with them.
  "${compose[@]}" stop >/dev/null 2>&1 || true
  if [ -n "$logs" ]; then
    for _ in $(seq 50); do kill -0 "$logs" 2>/dev/null || break; sleep 0.2; done
    kill "$logs" 2>/dev/null || true
    wait "$logs" 2>/dev/null || true
  fi
  rm -f "$exit_file"
  if [ "$stopped_by" != 0 ]; then
    say "stopped by a signal; the containers are stopped (exit $status)"
  else
    say "the job ended with exit code $status; the containers are stopped"
  fi
  return "$status"
}

# Runs the command line given to this script through the engine $1.
run_command() {
  if [ "$2" = job ]; then run_job "$1"; else shift; run_compose "$@"; fi
}

prepare_mounts() {
  local runs=${SPLITREC_RUNS:-./runs} certs=${SPLITREC_CERTS:-./certs}
  mkdir -p "$runs/alice" "$runs/bob" "$runs/coordinator"
  if [ -z "${SPLITREC_UID:-}" ]; then
    if [ "$(id -u)" = 0 ]; then
      export SPLITREC_UID=10001 SPLITREC_GID=10001
      chown -R 10001:10001 "$runs/alice" "$runs/bob" "$runs/coordinator"
      for key in "$certs"/alice.key "$certs"/bob.key "$certs"/coordinator.key; do
        if [ -f "$key" ]; then chgrp 10001 "$key" && chmod 0640 "$key"; fi
      done
    else
      export SPLITREC_UID SPLITREC_GID
      SPLITREC_UID=$(id -u) SPLITREC_GID=$(id -g)
    fi
  fi
}

# docker-compose's own name for this project, so that the healthcheck loop below
# only touches this project's containers.
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-$(basename "$root" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9_-')}

[ $# -gt 0 ] || set -- job
[ "$1" != job ] || [ $# -eq 1 ] || die "job takes no arguments (SPLITREC_EPOCHS sets the epochs)"
prepare_mounts

if docker info >/dev/null 2>&1; then
  run_command docker "$@"
  exit $?
fi

# --- no Docker engine: rootful podman behind the Docker API --------------------
[ "$(id -u)" = 0 ] || die "no Docker engine answers, and podman needs root here: \
run this as root (sudo), or start a Docker engine"

install_missing() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "install these packages: ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}
# netavark needs iptables for the bridge network; docker-compose v1 the API.
install_missing podman runc netavark aardvark-dns iptables uidmap slirp4netns docker-compose
# Chosen again now that it is installed: a docker CLI without its compose
# plugin (`docker compose` missing) may have been picked above.
compose=(docker-compose)

state=$(mktemp -d "${TMPDIR:-/tmp}/splitrec-compose.XXXXXX")
# Containers may not ask for more than this machine allows.
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat > "$state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
CONF
export CONTAINERS_CONF="$state/containers.conf"

base=docker.io/library/python:3.11-slim
if ! podman image exists "$base"; then
  if ! timeout 60 podman pull -q "$base" >/dev/null 2>&1; then
    suite=${SPLITREC_BASE_SUITE:-bookworm}
    say "no $base to pull: building one from Debian $suite (python3, venv, pip), once"
    install_missing mmdebstrap
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || die "no Debian mirror found in this machine's apt sources"
    nice mmdebstrap --quiet --variant=minbase \
      --include=python3,python3-venv,python3-pip,ca-certificates,passwd \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
      --customize-hook='ln -sf python3 "$1"/usr/bin/python' \
      "$suite" "$state/base.tar" "deb $mirror $suite main"
    podman import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
      "$state/base.tar" "localhost/splitrec-base:$suite" >/dev/null
    rm -f "$state/base.tar"
    podman tag "localhost/splitrec-base:$suite" "$base"
  fi
fi

socket="$state/podman.sock"
podman system service --time=0 "unix://$socket" >"$state/service.log" 2>&1 &
service=$!
(
  while :; do
    for id in $(podman ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
                  --filter health=starting) \
              $(podman ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
                  --filter health=unhealthy); do
      podman healthcheck run "$id" >/dev/null 2>&1 || true
    done
    sleep 2
  done
) &
health=$!
cleanup() {
  kill "$health" 2>/dev/null || true
  kill "$service" 2>/dev/null || true
  wait "$service" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || die "podman's API did not start: $(cat "$state/service.log")"
export DOCKER_HOST="unix://$socket"

run_command podman "$@"
