#!/usr/bin/env bash
# The hello-world staging story (README "The demo"; `make demo` runs this):
# dtabd, dtab-proxy and linkerd's hello/world sample services on loopback,
# then a narrated scenario: production traffic, one request staged to
# world-v2 with an l5d-dtab header, the same header ignored at the edge, a
# canary shift through dtabd (compare-and-set, rollout, history, rollback)
# and the delegator page. Then it serves until Ctrl-C, and stops everything
# it started.
#
#   examples/hello-world/demo.sh             # scenario, then serve until Ctrl-C
#   DEMO_ONCE=1 examples/hello-world/demo.sh # scenario, then stop and exit (0: serve)
#
# Exit status: 0 when every answer was the expected one; 1 when one was not,
# a process failed to start or died, or a port is busy (checked before
# anything starts). Everything it writes is under var/hello-world/ (dtabd's
# SQLite database, the proxy's configuration, disco/ and cache, logs/); a
# re-run reuses the database. Ports: the defaults below, or the environment.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

bin="${DEMO_BIN:-build/bin}"
example=examples/hello-world
state=var/hello-world
logs="$state/logs"

DTABD_GRPC_PORT="${DTABD_GRPC_PORT:-4321}"
DTABD_HTTP_PORT="${DTABD_HTTP_PORT:-4180}"
DTABD_ADMIN_PORT="${DTABD_ADMIN_PORT:-9991}"
PROXY_ADMIN_PORT="${PROXY_ADMIN_PORT:-9990}"
INGRESS_PORT="${INGRESS_PORT:-4142}"
EDGE_PORT="${EDGE_PORT:-8080}"
OUTGOING_PORT="${OUTGOING_PORT:-4140}"
HELLO_PORT="${HELLO_PORT:-7777}"
WORLD_V1_PORT="${WORLD_V1_PORT:-7778}"
WORLD_V2_PORT="${WORLD_V2_PORT:-7779}"

# Nothing here goes through an HTTP proxy (curl and gRPC honour these).
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY grpc_proxy
# dtabctl's default server, so the commands shown are the ones to type.
export DTABD_ADDR="127.0.0.1:$DTABD_GRPC_PORT"

if [ -t 1 ]; then
  bold=$'\033[1m' dim=$'\033[2m' red=$'\033[31m' reset=$'\033[0m'
else
  bold='' dim='' red='' reset=''
fi

say() { printf '\n%s%s%s\n' "$bold" "$*" "$reset"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$reset" || true; }
die() {
  printf '%sdemo: %s%s\n' "$red" "$*" "$reset" >&2
  exit 1
}

# --- before starting anything -----------------------------------------------

command -v curl >/dev/null || die "curl is missing (scripts/setup installs it)"
for b in dtabd dtab-proxy dtabctl hello world; do
  if [ ! -x "$bin/$b" ]; then
    note "$bin/$b is missing: building (make build)"
    make --no-print-directory build
    break
  fi
done
dtabctl="$bin/dtabctl"

# A port is busy when something accepts connections on it.
busy=()
for entry in "$DTABD_GRPC_PORT:dtabd gRPC" "$DTABD_HTTP_PORT:dtabd HTTP API" \
  "$DTABD_ADMIN_PORT:dtabd admin" "$PROXY_ADMIN_PORT:dtab-proxy admin" \
  "$INGRESS_PORT:ingress router" "$EDGE_PORT:edge listener" "$OUTGOING_PORT:outgoing router" \
  "$HELLO_PORT:hello" "$WORLD_V1_PORT:world-v1" "$WORLD_V2_PORT:world-v2"; do
  port="${entry%%:*}"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    busy+=("$port (${entry#*:})")
  fi
done
if [ "${#busy[@]}" -gt 0 ]; then
  die "busy on 127.0.0.1: $(printf '%s, ' "${busy[@]}" | sed 's/, $//')." \
    "Stop what listens there ('ss -ltnp' shows it; another demo?), or choose other ports" \
    "(e.g. EDGE_PORT=8081 make demo)."
fi

# --- processes ----------------------------------------------------------------

pids=()
names=()

stop_all() {
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  local deadline=$((SECONDS + 15))
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[i]}"
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      note "${names[i]} (pid $pid) did not stop on SIGTERM: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pids=()
  names=()
}
on_exit() {
  local status=$?
  set +e
  trap '' PIPE  # our stdout may be what went away: keep going, quietly
  if [ "${#pids[@]}" -gt 0 ]; then
    note "stopping ${names[*]}" 2>/dev/null || true
    stop_all
  fi
  exit "$status"
}
# Whatever ends the script (Ctrl-C, kill, a closed terminal or pipe, an
# error under set -e) goes through on_exit.
trap on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# start NAME COMMAND...: runs COMMAND in the background, output to logs/NAME.log.
start() {
  local name="$1"
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

# wait_for NAME WHAT PROBE...: polls PROBE until it succeeds (10 s at most),
# failing early, with the log, when NAME's process has exited.
wait_for() {
  local name="$1" what="$2" pid="${pids[${#pids[@]} - 1]}" i
  shift 2
  for i in "${!names[@]}"; do
    [ "${names[i]}" = "$name" ] && pid="${pids[i]}"
  done
  local deadline=$((SECONDS + 10))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "$name exited before $what; $logs/$name.log says:"$'\n'"$(tail -n 20 "$logs/$name.log")"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "$name: no $what within 10 s; see $logs/$name.log"
    fi
    sleep 0.1
  done
}
serving() { grep -q "^$2: serving " "$logs/$1.log"; }
http_ok() { curl -sf -o /dev/null "$@"; }

mkdir -p "$logs" "$state/disco"

# --- dtabd and its namespaces -------------------------------------------------

say "Starting dtabd (database $state/dtabd.db), the proxy and the services; logs in $logs/"
start dtabd "$bin/dtabd" --db "$state/dtabd.db" --grpc-addr "127.0.0.1:$DTABD_GRPC_PORT" \
  --http-addr "127.0.0.1:$DTABD_HTTP_PORT" --admin-addr "127.0.0.1:$DTABD_ADMIN_PORT"
wait_for dtabd "its serving line" serving dtabd dtabd
wait_for dtabd "readiness" http_ok "http://127.0.0.1:$DTABD_ADMIN_PORT/ready"

# Each namespace holds the example's dtab: created when missing; when an
# earlier run (or you) left another dtab there, set back with compare-and-set.
for ns in ingress outgoing; do
  file="$example/dtabs/$ns.dtab"
  rc=0
  current="$("$dtabctl" get "$ns" 2>&1)" || rc=$?
  if [ "$rc" -eq 4 ]; then
    printf '$ %s\n' "$dtabctl create $ns -f $file"
    "$dtabctl" create "$ns" -f "$file" --comment "make demo: $file"
  elif [ "$rc" -ne 0 ]; then
    die "dtabctl get $ns: $current"
  else
    version="$(sed -n '1s/.* version=\([0-9]*\) .*/\1/p' <<<"$current")"
    if [ "$("$dtabctl" fmt dtab - <<<"$current")" = "$("$dtabctl" fmt dtab - <"$file")" ]; then
      note "namespace $ns: kept (version $version, the example's dtab)"
    else
      printf '$ %s\n' "$dtabctl apply $ns -f $file --expect-version $version"
      "$dtabctl" apply "$ns" -f "$file" --expect-version "$version" \
        --comment "make demo: back to $file"
    fi
  fi
done

# --- the services and the proxy -----------------------------------------------

start world-v1 "$bin/world" --listen "127.0.0.1:$WORLD_V1_PORT" --text world
start world-v2 "$bin/world" --listen "127.0.0.1:$WORLD_V2_PORT" --text earth
start hello "$bin/hello" --listen "127.0.0.1:$HELLO_PORT" --proxy "127.0.0.1:$OUTGOING_PORT"
wait_for world-v1 "its serving line" serving world-v1 world
wait_for world-v2 "its serving line" serving world-v2 world
wait_for hello "its serving line" serving hello hello

# io.l5d.fs: one file per service, `host port` lines (the proxy watches them).
for svc in "hello $HELLO_PORT" "world-v1 $WORLD_V1_PORT" "world-v2 $WORLD_V2_PORT"; do
  read -r name port <<<"$svc"
  printf '127.0.0.1 %s\n' "$port" >"$state/disco/.$name.tmp"
  mv "$state/disco/.$name.tmp" "$state/disco/$name"
done
sed -e "s/{{ADMIN_PORT}}/$PROXY_ADMIN_PORT/" -e "s/{{DTABD_ADDR}}/127.0.0.1:$DTABD_GRPC_PORT/" \
  -e "s/{{INGRESS_PORT}}/$INGRESS_PORT/" -e "s/{{EDGE_PORT}}/$EDGE_PORT/" \
  -e "s/{{OUTGOING_PORT}}/$OUTGOING_PORT/" "$example/dtab-proxy.yaml" >"$state/dtab-proxy.yaml"
start dtab-proxy "$bin/dtab-proxy" --config "$state/dtab-proxy.yaml"
wait_for dtab-proxy "its serving line" serving dtab-proxy dtab-proxy
wait_for dtab-proxy "readiness (both namespaces from dtabd)" \
  http_ok "http://127.0.0.1:$PROXY_ADMIN_PORT/ready"
wait_for dtab-proxy "a first answer from hello" \
  http_ok -H "Host: www.hello.world" "127.0.0.1:$INGRESS_PORT"

cat <<EOF
  dtabd       gRPC 127.0.0.1:$DTABD_GRPC_PORT, namerd HTTP API 127.0.0.1:$DTABD_HTTP_PORT, admin 127.0.0.1:$DTABD_ADMIN_PORT
  dtab-proxy  ingress 127.0.0.1:$INGRESS_PORT, edge 127.0.0.1:$EDGE_PORT, outgoing 127.0.0.1:$OUTGOING_PORT, admin 127.0.0.1:$PROXY_ADMIN_PORT ($state/dtab-proxy.yaml)
  hello       127.0.0.1:$HELLO_PORT (calls world through 127.0.0.1:$OUTGOING_PORT)
  world-v1    127.0.0.1:$WORLD_V1_PORT
  world-v2    127.0.0.1:$WORLD_V2_PORT
EOF

# --- the scenario -------------------------------------------------------------

failures=0
# run COMMAND-TEXT [EXPECTED-LINE]: prints and runs a shell command, then
# its output; with EXPECTED-LINE, checks that the output is exactly that.
run() {
  local cmd="$1" expected="${2-}" out rc=0
  printf '%s$ %s%s\n' "$bold" "$cmd" "$reset"
  out="$(bash -c "$cmd" 2>&1)" || rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  [ "$rc" -eq 0 ] || note "(exit status $rc)"
  if [ "$#" -ge 2 ] && [ "$out" != "$expected" ]; then
    printf '%sdemo: expected: %s%s\n' "$red" "$expected" "$reset"
    failures=$((failures + 1))
  fi
  last_output="$out"
  last_status="$rc"
}
expect_status() {
  if [ "$last_status" -ne "$1" ]; then
    printf '%sdemo: expected exit status %s%s\n' "$red" "$1" "$reset"
    failures=$((failures + 1))
  fi
}

world="Hello (127.0.0.1:$HELLO_PORT) world (127.0.0.1:$WORLD_V1_PORT)!!"
earth="Hello (127.0.0.1:$HELLO_PORT) earth (127.0.0.1:$WORLD_V2_PORT)!!"
host='-H "Host: www.hello.world"'
override='-H "l5d-dtab: /host/world => /srv/world-v2;"'
curl_ingress="curl -s $host 127.0.0.1:$INGRESS_PORT"

say "1. Production traffic"
note "The ingress router names the request /svc/www.hello.world; namespace 'ingress' sends it to"
note "hello, which calls world through the outgoing router, where /host/world => /srv/world-v1."
run "$curl_ingress" "$world"

say "2. Stage world-v2 for one request, in production"
note "The ingress adds the l5d-dtab header to this request's dtab and passes it on as l5d-ctx-dtab;"
note "hello forwards every l5d-ctx-* header on its call, so the outgoing router binds /host/world"
note "to world-v2 for this request only. Everyone else still gets world:"
run "curl -s $host $override 127.0.0.1:$INGRESS_PORT" "$earth"
run "$curl_ingress" "$world"

say "3. The same header from the public, through the edge"
note "The edge listener (clear_context: true) drops every inbound l5d-* header, as nginx did in"
note "front of linkerd: public traffic cannot stage anything."
run "curl -s $host $override 127.0.0.1:$EDGE_PORT" "$world"

say "4. Shift real traffic with dtabd: a canary, then a rollback"
run "$dtabctl get outgoing"
base="$(sed -n '1s/.* version=\([0-9]*\) .*/\1/p' <<<"$last_output")"
[ -n "$base" ] || die "no version in 'dtabctl get outgoing'"
note "Compare-and-set: the change applies only if version $base is still the latest."
run "$dtabctl apply outgoing -f $example/dtabs/outgoing-canary.dtab --expect-version $base --comment 'canary: 1 in 10 calls to world-v2'"
expect_status 0
canary="$(sed -n 's/.* applied as version \([0-9]*\) .*/\1/p' <<<"$last_output")"
note "A second operator still holding version $base loses (exit 5) instead of overwriting it:"
run "$dtabctl apply outgoing -f $example/dtabs/outgoing.dtab --expect-version $base"
expect_status 5
run "$dtabctl diff outgoing $base ${canary:-$((base + 1))}"
note "dtabd streams the new version to every proxy; rollout --wait returns once all have ACKed it:"
run "$dtabctl rollout outgoing --wait"
expect_status 0
note "About one call in ten now reaches world-v2:"
run "for i in \$(seq 50); do $curl_ingress; done | sort | uniq -c"
run "$dtabctl history outgoing --limit 5"
run "$dtabctl rollback outgoing --to $base"
expect_status 0
run "$dtabctl rollout outgoing --wait"
expect_status 0
run "for i in \$(seq 20); do $curl_ingress; done | sort | uniq -c" \
  "$(printf '%7d %s' 20 "$world")"

say "5. See why a request went where it did"
cat <<EOF
Open the delegator in a browser:

  http://127.0.0.1:$PROXY_ADMIN_PORT/delegator

choose the outgoing router, enter the path /svc/world and the override
/host/world => /srv/world-v2, and run it: the tree shows the world-v2 branch chosen (nothing
typed there is saved). The same, filled in:

  http://127.0.0.1:$PROXY_ADMIN_PORT/delegator#router=outgoing&path=/svc/world&dtab=/host/world%20%3D%3E%20/srv/world-v2

Also: http://127.0.0.1:$PROXY_ADMIN_PORT/dtabs (the dtabs the proxy runs, with their versions) and
  $dtabctl explain outgoing /svc/world --override '/host/world => /srv/world-v2'
EOF

if [ "$failures" -gt 0 ]; then
  die "$failures answer(s) differed from the expected ones (logs in $logs/)"
fi
if [ "${DEMO_ONCE:-0}" != 0 ]; then
  say "Done (DEMO_ONCE): stopping everything."
  exit 0
fi

say "Serving until Ctrl-C."
while :; do
  wait -n "${pids[@]}" || true
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      die "${names[i]} exited; $logs/${names[i]}.log says:"$'\n'"$(tail -n 20 "$logs/${names[i]}.log")"
    fi
  done
done
