#!/usr/bin/env bash
# Soak run (issue 8, "Soak"; `make soak`, and a short version in `make test`):
# mixed load on a fresh dtabd for SOAK_SECONDS, watching every process's
# memory and file descriptors and every answer's route.
#
#   tests/soak/soak.sh [BUILD_DIR]      (default: build)
#
# Everything runs on 127.0.0.1 (every listener on port 0), with a temp dir
# for the database and configs (removed at exit; every process started is
# stopped at exit, also on failure or Ctrl-C):
#   dtabd       BUILD_DIR/bin/dtabd, namespace `soak`, whose dtab is either
#               v1 `/svc/world => /$/inet/127.0.0.1/V1PORT;` or v2 (V2PORT);
#   world-v1/2  BUILD_DIR/bin/world --text world / --text earth;
#   dtab-proxy  one router `soak` (namespace soak, 1 worker); `Host: world`
#               names /svc/world;
#   fanout      BUILD_DIR/benchmarks/fanout_client --hold-s: SOAK_STREAMS
#               DeltaDtabs streams subscribed to `soak`, ACKing every version;
#   wrk x2      through the proxy, SOAK_CONNECTIONS connections each, each
#               pausing SOAK_DELAY_MS before every request
#               (tests/soak/responses.lua classifies every body):
#                 base      no override: every answer must be world-v1's or
#                           world-v2's (the dtab flips under it);
#                 override  `l5d-dtab: /svc/world => /$/inet/127.0.0.1/V2PORT`:
#                           every answer must be world-v2's (a world-v1
#                           answer is a misroute).
# Meanwhile, about every second, the base dtab flips between v1 and v2
# (`dtabctl apply --expect-version`, the time it was acknowledged recorded),
# `dtabctl rollout soak --wait` waits until the proxy and every stream ACKed
# it, and one request without override must then get the version just
# applied. Every SOAK_SAMPLE_S seconds, VmRSS and open fds of dtabd, the
# proxy, both backends and the fanout client are sampled.
#
# Checks (PASS/FAIL; any FAIL exits 1):
#   misroutes       override traffic: 0 world-v1 answers
#   answers         base traffic: 0 answers that are neither backend's
#   errors          0 non-200s and 0 wrk socket errors (both loads)
#   route checks    each post-rollout request got the version just applied,
#                   and, after the run, 5 requests get the last version
#   writes          every flip acknowledged (no conflict, no error), every
#                   rollout completed within 30 s
#   streams         all SOAK_STREAMS held throughout (none ended), no
#                   duplicate, no protocol error, all on the last version
#   alive           no process died during the run
#   rss / fds       per process: the median of the last third of the samples
#                   against the median of the second third: RSS growth over
#                   +20% AND +5 MiB, or fd growth over +10, fails (fewer than
#                   6 samples: not judged)
#   shutdown        dtabd and dtab-proxy exit 0 on SIGTERM
#
# Knobs (environment): SOAK_SECONDS (600), SOAK_STREAMS (1000),
# SOAK_SAMPLE_S (5), SOAK_FLIP_MS (1000), SOAK_CONNECTIONS (8 per load),
# SOAK_DELAY_MS (2), SOAK_OUT (BUILD_DIR/soak). Output in SOAK_OUT:
# summary.txt (what is printed at the end), samples.tsv (every sample),
# writes.tsv (every flip), wrk-{base,override}.txt, fanout.txt, logs/.
# Exit 77 (ctest: skipped) when wrk is not installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:-build}"
bin="${build_dir}/bin"
fanout_exe="${build_dir}/benchmarks/fanout_client"
wrk_exe="${WRK:-wrk}"
seconds="${SOAK_SECONDS:-600}"
streams="${SOAK_STREAMS:-1000}"
sample_s="${SOAK_SAMPLE_S:-5}"
flip_ms="${SOAK_FLIP_MS:-1000}"
connections="${SOAK_CONNECTIONS:-8}"
delay_ms="${SOAK_DELAY_MS:-2}"
out_dir="${SOAK_OUT:-${build_dir}/soak}"

die() {
  echo "soak: $*" >&2
  exit 1
}

for knob in SECONDS STREAMS SAMPLE_S FLIP_MS CONNECTIONS; do
  v="SOAK_${knob}"
  val="${!v:-}"
  [[ -z "${val}" || "${val}" =~ ^[1-9][0-9]*$ ]] || die "${v} must be a positive integer, not '${val}'"
done
[[ "${delay_ms}" =~ ^[0-9]+$ ]] || die "SOAK_DELAY_MS must be a non-negative integer"
if ! command -v "${wrk_exe}" >/dev/null; then
  echo "soak: ${wrk_exe} not found (apt-get install wrk): skipped" >&2
  exit 77
fi
for exe in "${bin}/dtabd" "${bin}/dtab-proxy" "${bin}/dtabctl" "${bin}/world" "${fanout_exe}"; do
  [[ -x "${exe}" ]] || die "${exe} not found; build first (make build)"
done
command -v curl >/dev/null || die "curl not found"
py="$(command -v python3)" || die "python3 not found"
usage="$("${fanout_exe}" --bad-flag 2>&1 || true)"
[[ "${usage}" == *--hold-s* ]] ||
  die "${fanout_exe} has no --hold-s; rebuild it (cmake --build ${build_dir} --target fanout_client)"

# Nothing here goes through an HTTP proxy (curl and gRPC honour these).
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY grpc_proxy

hard="$(ulimit -Hn)"
if [[ "${hard}" == unlimited || "${hard}" -gt 65536 ]]; then
  hard=65536
fi
ulimit -n "${hard}" 2>/dev/null || true

mkdir -p "${out_dir}"
rm -rf "${out_dir:?}/logs"
rm -f "${out_dir}"/{summary.txt,samples.tsv,writes.tsv,wrk-base.txt,wrk-override.txt,fanout.txt}
work="$(mktemp -d "${TMPDIR:-/tmp}/dtabd-soak.XXXXXX")"
mkdir -p "${work}/logs"

# Processes, by name; stopped in reverse order at exit.
names=() pids=()
declare -A pid_of=() exit_of=()

# True while PID runs (a zombie, exited but not yet reaped, does not count).
alive() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "${state}" && "${state}" != Z ]]
}

# stop NAME: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it and records
# its exit status in exit_of[NAME].
stop() {
  local name="$1" pid i rc=0
  pid="${pid_of[${name}]:-}"
  [[ -n "${pid}" ]] || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "${pid}" || break
    sleep 0.1
  done
  if alive "${pid}"; then
    echo "soak: ${name} (pid ${pid}) did not stop on SIGTERM within 10 s: killed" >&2
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  wait "${pid}" 2>/dev/null || rc=$?
  exit_of["${name}"]="${rc}"
  pid_of["${name}"]=""
}

cleanup() {
  local status=$? i
  set +e
  trap - INT TERM
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    stop "${names[i]}"
  done
  mkdir -p "${out_dir}/logs"
  cp "${work}"/logs/* "${out_dir}/logs/" 2>/dev/null
  rm -rf "${work}"
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: in the background, output to logs/NAME.log.
start() {
  local name="$1"
  shift
  "$@" >"${work}/logs/${name}.log" 2>&1 &
  names+=("${name}")
  pids+=("$!")
  pid_of["${name}"]=$!
}

# wait_for NAME WHAT SECONDS PROBE...: polls PROBE every 0.1 s until it
# succeeds; fails (with NAME's log) when NAME exits or SECONDS pass.
wait_for() {
  local name="$1" what="$2" limit="$3"
  shift 3
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ! alive "${pid_of[${name}]}"; then
      tail -n 30 "${work}/logs/${name}.log" >&2
      die "${name} exited before ${what} (its log above)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "${work}/logs/${name}.log" >&2
      die "${name}: no ${what} within ${limit} s (its log above)"
    fi
    sleep 0.1
  done
}
has_line() { grep -q "$2" "${work}/logs/$1.log"; }
# field NAME PATTERN: the first match of sed PATTERN (with \1) in NAME's log.
field() { sed -n "s/$2/\1/p" "${work}/logs/$1.log" | head -n 1; }

now_s() { echo "${EPOCHREALTIME}"; }
# ms_since T0: milliseconds since T0 (an EPOCHREALTIME value).
ms_since() {
  local t1="${EPOCHREALTIME}"
  echo $(((${t1/./} - ${1/./}) / 1000))
}

echo "soak: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start;" \
  "${seconds} s, ${streams} streams, flip every ${flip_ms} ms, sample every ${sample_s} s," \
  "2 x wrk -c ${connections} (${delay_ms} ms between requests per connection)"

# --- dtabd, the backends, the namespace ---------------------------------------
start dtabd "${bin}/dtabd" --db "${work}/dtabd.db" --grpc-addr 127.0.0.1:0 \
  --http-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0
wait_for dtabd "its serving line" 20 has_line dtabd '^dtabd: serving grpc='
dtabd_addr="$(field dtabd '^dtabd: serving grpc=\([^ ]*\).*')"
export DTABD_ADDR="${dtabd_addr}"
dtabctl() { "${bin}/dtabctl" "$@"; }

start world-v1 "${bin}/world" --listen 127.0.0.1:0 --text world
start world-v2 "${bin}/world" --listen 127.0.0.1:0 --text earth
wait_for world-v1 "its serving line" 20 has_line world-v1 '^world: serving '
wait_for world-v2 "its serving line" 20 has_line world-v2 '^world: serving '
v1_port="$(field world-v1 '^world: serving .*:\([0-9]*\)$')"
v2_port="$(field world-v2 '^world: serving .*:\([0-9]*\)$')"
[[ -n "${v1_port}" && -n "${v2_port}" ]] || die "no port in the backends' serving lines"
v1_mark="world (127.0.0.1:${v1_port})"
v2_mark="earth (127.0.0.1:${v2_port})"
printf '/svc/world => /$/inet/127.0.0.1/%s;\n' "${v1_port}" >"${work}/v1.dtab"
printf '/svc/world => /$/inet/127.0.0.1/%s;\n' "${v2_port}" >"${work}/v2.dtab"
override="/svc/world => /\$/inet/127.0.0.1/${v2_port}"

out="$(dtabctl create soak -f "${work}/v1.dtab" --comment "soak: v1")" || die "dtabctl create soak: ${out}"
version="$(dtabctl get soak | sed -n '1s/.* version=\([0-9]*\) .*/\1/p')"
[[ -n "${version}" ]] || die "no version in 'dtabctl get soak'"
serving_target=v1

# --- the proxy ----------------------------------------------------------------
cat >"${work}/proxy.yaml" <<EOF
# tests/soak/soak.sh: one router on dtabd's namespace soak.
admin: {ip: 127.0.0.1, port: 0}
workers: 1
control_plane: {address: ${dtabd_addr}}
routers:
  - label: soak
    namespace: soak
    servers: [{ip: 127.0.0.1, port: 0}]
EOF
start dtab-proxy "${bin}/dtab-proxy" --config "${work}/proxy.yaml"
wait_for dtab-proxy "its serving line" 20 has_line dtab-proxy '^dtab-proxy: serving '
proxy_admin="$(field dtab-proxy '^dtab-proxy: serving admin=\([^ ]*\).*')"
proxy_addr="$(field dtab-proxy '^dtab-proxy: serving .* soak=\([^ ]*\).*')"
[[ -n "${proxy_admin}" && -n "${proxy_addr}" ]] || die "no admin=/soak= in the proxy's serving line"
wait_for dtab-proxy "readiness" 20 curl -sf -o /dev/null "http://${proxy_admin}/ready"

# get [HEADER...]: one request for /svc/world through the proxy; the body.
get() {
  local args=(-s --max-time 10 -H "Host: world")
  local h
  for h in "$@"; do
    args+=(-H "${h}")
  done
  curl "${args[@]}" "http://${proxy_addr}/" 2>/dev/null || echo "curl failed"
}
mark_of() { if [[ "$1" == v1 ]]; then echo "${v1_mark}"; else echo "${v2_mark}"; fi; }

body="$(get)"
[[ "${body}" == *"${v1_mark}"* ]] || die "first request without override: '${body}', expected ${v1_mark}"
body="$(get "l5d-dtab: ${override}")"
[[ "${body}" == *"${v2_mark}"* ]] || die "first request with override: '${body}', expected ${v2_mark}"

# --- the streams ----------------------------------------------------------------
start fanout "${fanout_exe}" --server "${dtabd_addr}" --namespace soak --streams "${streams}" \
  --hold-s $((seconds + 600)) --timeout-s 120
wait_for fanout "its streams open" 130 has_line fanout '^fanout: holding '
echo "soak: $(grep -m 1 '^fanout: holding ' "${work}/logs/fanout.log")"

watched=(dtabd dtab-proxy world-v1 world-v2 fanout)
samples="${work}/samples.tsv"
printf 't_s\tprocess\tpid\trss_kib\tfds\n' >"${samples}"
died=""
t_start="${EPOCHREALTIME}"

sample() {
  local t name pid rss fds=()
  t="$(($(ms_since "${t_start}") / 1000))"
  for name in "${watched[@]}"; do
    pid="${pid_of[${name}]}"
    if ! alive "${pid}"; then
      [[ "${died}" == *" ${name}"* ]] || died+=" ${name}"
      continue
    fi
    rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid}/status" 2>/dev/null || true)"
    fds=("/proc/${pid}/fd/"*)
    printf '%s\t%s\t%s\t%s\t%s\n' "${t}" "${name}" "${pid}" "${rss:-0}" "${#fds[@]}" >>"${samples}"
  done
}

# --- the load -------------------------------------------------------------------
export SOAK_V1_MARK="${v1_mark}" SOAK_V2_MARK="${v2_mark}" SOAK_DELAY_MS="${delay_ms}"
sample
start wrk-base "${wrk_exe}" -t 1 -c "${connections}" -d "${seconds}s" --timeout 10s \
  -s "${here}/responses.lua" -H "Host: world" "http://${proxy_addr}/"
start wrk-override "${wrk_exe}" -t 1 -c "${connections}" -d "${seconds}s" --timeout 10s \
  -s "${here}/responses.lua" -H "Host: world" -H "l5d-dtab: ${override}" "http://${proxy_addr}/"

writes="${work}/writes.tsv"
printf 'version\ttarget\tacked_at_s\tapply_ms\trollout_ms\tcheck\n' >"${writes}"
write_errors=0 rollout_failures=0 route_checks=0 route_bad=0 first_route_bad="" flips=0
next_sample=$((sample_s * 1000))
end_ms=$((seconds * 1000))
while :; do
  tick="${EPOCHREALTIME}"
  elapsed="$(ms_since "${t_start}")"
  ((elapsed < end_ms)) || break
  if ((elapsed >= next_sample)); then
    sample
    next_sample=$((next_sample + sample_s * 1000))
  fi
  # Flip, compare-and-set on the version we wrote last.
  if [[ "${serving_target}" == v1 ]]; then target=v2; else target=v1; fi
  t0="${EPOCHREALTIME}"
  if out="$(dtabctl apply soak -f "${work}/${target}.dtab" --expect-version "${version}" \
    --comment "soak: ${target}" 2>&1)"; then
    apply_ms="$(ms_since "${t0}")"
    acked_s="$(($(ms_since "${t_start}")))"
    new_version="$(sed -n 's/.* applied as version \([0-9]*\) .*/\1/p' <<<"${out}")"
    if [[ -z "${new_version}" ]]; then
      write_errors=$((write_errors + 1))
      echo "soak: unexpected dtabctl apply output: ${out}" >&2
      break
    fi
    version="${new_version}" serving_target="${target}" flips=$((flips + 1))
    t1="${EPOCHREALTIME}"
    check=-
    rollout_ms=-
    if dtabctl rollout soak --wait --version "${version}" --timeout 30s \
      >"${work}/rollout.out" 2>&1; then
      rollout_ms="$(ms_since "${t1}")"
      body="$(get)"
      route_checks=$((route_checks + 1))
      if [[ "${body}" == *"$(mark_of "${target}")"* ]]; then
        check=ok
      else
        check=BAD
        route_bad=$((route_bad + 1))
        [[ -n "${first_route_bad}" ]] || first_route_bad="version ${version} (${target}): '${body}'"
      fi
    else
      rollout_failures=$((rollout_failures + 1))
      echo "soak: rollout of version ${version} did not complete:" >&2
      tail -n 5 "${work}/rollout.out" >&2
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${version}" "${target}" \
      "$((acked_s / 1000)).$(printf '%03d' $((acked_s % 1000)))" "${apply_ms}" "${rollout_ms}" \
      "${check}" >>"${writes}"
  else
    write_errors=$((write_errors + 1))
    echo "soak: dtabctl apply (expect version ${version}) failed: ${out}" >&2
    # Re-read the version so that the run goes on (and the failure shows).
    v="$(dtabctl get soak 2>/dev/null | sed -n '1s/.* version=\([0-9]*\) .*/\1/p')"
    [[ -z "${v}" ]] || version="${v}"
  fi
  for name in "${watched[@]}"; do
    alive "${pid_of[${name}]}" || { died+=" ${name}"; break 2; }
  done
  # Pace: the next flip flip_ms after this one started (periodic, not a sync).
  left=$((flip_ms - $(ms_since "${tick}")))
  if ((left > 0)); then
    sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
  fi
done
sample

# --- the end ----------------------------------------------------------------------
# wrk ends by itself after SOAK_SECONDS; allow 60 s more.
wrk_ok=1
for name in wrk-base wrk-override; do
  deadline=$((SECONDS + 60))
  while alive "${pid_of[${name}]}" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  alive "${pid_of[${name}]}" && { echo "soak: ${name} still running 60 s after its end" >&2; wrk_ok=0; }
  stop "${name}"
  cp "${work}/logs/${name}.log" "${out_dir}/${name}.txt"
done

# After the run: the last version reaches everyone and is what is served.
final_ok=0 final_bodies=""
if dtabctl rollout soak --wait --version "${version}" --timeout 30s >"${work}/rollout.out" 2>&1; then
  final_ok=1
  for i in 1 2 3 4 5; do
    body="$(get)"
    final_bodies+="${body}|"
    [[ "${body}" == *"$(mark_of "${serving_target}")"* ]] || final_ok=0
  done
else
  tail -n 5 "${work}/rollout.out" >&2
fi

stop fanout
cp "${work}/logs/fanout.log" "${out_dir}/fanout.txt"
held_line="$(grep -m 1 '^fanout: held ' "${out_dir}/fanout.txt" || true)"
stop dtab-proxy
stop dtabd
stop world-v1
stop world-v2
cp "${samples}" "${writes}" "${out_dir}/"

SOAK_SECONDS_RUN="$(($(ms_since "${t_start}") / 1000))" SOAK_STREAMS="${streams}" \
  SOAK_VERSION="${version}" SOAK_TARGET="${serving_target}" SOAK_FLIPS="${flips}" \
  SOAK_WRITE_ERRORS="${write_errors}" SOAK_ROLLOUT_FAILURES="${rollout_failures}" \
  SOAK_ROUTE_CHECKS="${route_checks}" SOAK_ROUTE_BAD="${route_bad}" \
  SOAK_FIRST_ROUTE_BAD="${first_route_bad}" SOAK_FINAL_OK="${final_ok}" \
  SOAK_FINAL_BODIES="${final_bodies}" SOAK_HELD_LINE="${held_line}" \
  SOAK_FANOUT_EXIT="${exit_of[fanout]:-}" SOAK_DTABD_EXIT="${exit_of[dtabd]:-}" \
  SOAK_PROXY_EXIT="${exit_of[dtab-proxy]:-}" SOAK_DIED="${died}" SOAK_WRK_OK="${wrk_ok}" \
  SOAK_SAMPLE_S="${sample_s}" \
  "${py}" - "${out_dir}" <<'PY'
import csv
import os
import re
import statistics
import sys

out_dir = sys.argv[1]
env = os.environ
lines = []
def out(s=""):
    print(s)
    lines.append(s)

results = []
def check(ok, text):
    results.append(("PASS" if ok else "FAIL", text))

def wrk_counts(name):
    try:
        text = open(os.path.join(out_dir, f"wrk-{name}.txt")).read()
    except OSError:
        return None, ""
    m = re.search(r"^soak-counts (.*?) first_bad=(.*)$", text, re.M)
    if not m:
        return None, text
    c = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    c["first_bad"] = m.group(2)
    r = re.search(r"^\s*(\d+) requests in", text, re.M)
    c["requests"] = int(r.group(1)) if r else sum(c[k] for k in ("v1", "v2", "other", "non200"))
    r = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    c["rps"] = float(r.group(1)) if r else 0.0
    return c, text

base, _ = wrk_counts("base")
over, _ = wrk_counts("override")
seconds = int(env["SOAK_SECONDS_RUN"])
streams = int(env["SOAK_STREAMS"])
out()
out(f"soak summary ({seconds} s; outputs in {out_dir}/)")
requests = 0
for name, c in (("base", base), ("override", over)):
    if c is None:
        out(f"  {name:<9} no result from wrk (see wrk-{name}.txt)")
        continue
    requests += c["requests"]
    errs = c["connect"] + c["read"] + c["write"] + c["timeout"]
    out(f"  {name:<9} {c['requests']:>9,} requests ({c['rps']:,.0f}/s): world-v1 {c['v1']:,}, "
        f"world-v2 {c['v2']:,}, other {c['other']}, non-200 {c['non200']}, socket errors {errs}")
out(f"  requests  {requests:,} in all")
flips = int(env["SOAK_FLIPS"])
rollouts = []
with open(os.path.join(out_dir, "writes.tsv")) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        if row["rollout_ms"] != "-":
            rollouts.append(float(row["rollout_ms"]))
rollouts.sort()
def pct(v, q):
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))] if v else float("nan")
out(f"  writes    {flips} flips acknowledged (last version {env['SOAK_VERSION']}, "
    f"{env['SOAK_TARGET']}); {env['SOAK_WRITE_ERRORS']} failed; rollout to proxy + streams "
    f"p50 {pct(rollouts, 0.5):.0f} ms, p99 {pct(rollouts, 0.99):.0f} ms, max "
    f"{(rollouts[-1] if rollouts else float('nan')):.0f} ms")
out(f"  checks    {env['SOAK_ROUTE_CHECKS']} post-rollout requests, {env['SOAK_ROUTE_BAD']} on the "
    f"wrong version")
held = env.get("SOAK_HELD_LINE", "")
out(f"  streams   {held or 'no summary from fanout_client'}")

# Samples: per process, the series summary and the growth check.
series = {}
with open(os.path.join(out_dir, "samples.tsv")) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        series.setdefault(row["process"], []).append(
            (int(row["t_s"]), int(row["rss_kib"]), int(row["fds"])))
out()
out(f"  {'process':<11} {'samples':>7} {'RSS start':>10} {'2nd 3rd':>9} {'last 3rd':>9} "
    f"{'end':>9} {'max':>9} {'fds start':>9} {'2nd':>5} {'last':>5} {'end':>5} {'max':>5}")
growth = []
for name in ("dtabd", "dtab-proxy", "world-v1", "world-v2", "fanout"):
    s = series.get(name, [])
    if not s:
        out(f"  {name:<11} no samples")
        growth.append((False, f"{name}: no samples"))
        continue
    n = len(s)
    rss = [x[1] for x in s]
    fds = [x[2] for x in s]
    mid = s[n // 3: 2 * n // 3]
    last = s[2 * n // 3:]
    rm = statistics.median(x[1] for x in mid) if mid else rss[0]
    rl = statistics.median(x[1] for x in last) if last else rss[-1]
    fm = statistics.median(x[2] for x in mid) if mid else fds[0]
    fl = statistics.median(x[2] for x in last) if last else fds[-1]
    mib = lambda k: f"{k / 1024:.1f}M"
    out(f"  {name:<11} {n:>7} {mib(rss[0]):>10} {mib(rm):>9} {mib(rl):>9} {mib(rss[-1]):>9} "
        f"{mib(max(rss)):>9} {fds[0]:>9} {fm:>5g} {fl:>5g} {fds[-1]:>5} {max(fds):>5}")
    if n < 6:
        growth.append((None, f"{name}: {n} samples, too few to judge growth"))
        continue
    d_rss = rl - rm
    rss_bad = d_rss > 5 * 1024 and d_rss > 0.2 * rm
    fd_bad = fl - fm > 10
    growth.append((not (rss_bad or fd_bad),
                   f"{name}: RSS {rm / 1024:.1f} -> {rl / 1024:.1f} MiB ({d_rss / 1024:+.1f}), "
                   f"fds {fm:g} -> {fl:g} ({fl - fm:+g})"))
out(f"  (medians of the second and last third of the samples, one every "
    f"{env['SOAK_SAMPLE_S']} s; growth fails past +20% and +5 MiB RSS, or +10 fds)")

# The checks.
if over is not None:
    check(over["v1"] == 0, f"misroutes: {over['v1']} of {over['requests']:,} override requests "
          f"answered by world-v1" + (f" (first: {over['first_bad']})" if over["v1"] else ""))
else:
    check(False, "misroutes: no result from the override load")
if base is not None:
    check(base["other"] == 0 and base["requests"] > 0,
          f"answers: {base['other']} of {base['requests']:,} base requests neither world-v1's "
          f"nor world-v2's" + (f" (first: {base['first_bad']})" if base["other"] else ""))
if over is not None:
    check(over["other"] == 0, f"answers: {over['other']} override requests neither backend's")
for name, c in (("base", base), ("override", over)):
    if c is not None:
        errs = c["connect"] + c["read"] + c["write"] + c["timeout"]
        check(c["non200"] == 0 and errs == 0,
              f"errors ({name}): {c['non200']} non-200, {errs} socket errors"
              + (f" (first: {c['first_bad']})" if c["non200"] else ""))
check(env["SOAK_WRK_OK"] == "1", "wrk ended on time")
check(int(env["SOAK_ROUTE_BAD"]) == 0 and int(env["SOAK_ROUTE_CHECKS"]) > 0,
      f"route checks: {env['SOAK_ROUTE_CHECKS']} requests right after a rollout, "
      f"{env['SOAK_ROUTE_BAD']} not on the version just applied"
      + (f" (first: {env['SOAK_FIRST_ROUTE_BAD']})" if env["SOAK_FIRST_ROUTE_BAD"] else ""))
check(env["SOAK_FINAL_OK"] == "1",
      f"after the run: version {env['SOAK_VERSION']} rolled out and served "
      f"({env['SOAK_TARGET']}) by 5 of 5 requests")
check(int(env["SOAK_WRITE_ERRORS"]) == 0 and int(env["SOAK_ROLLOUT_FAILURES"]) == 0 and flips > 0,
      f"writes: {flips} acknowledged, {env['SOAK_WRITE_ERRORS']} failed, "
      f"{env['SOAK_ROLLOUT_FAILURES']} rollouts not complete within 30 s")
m = re.search(r"held (\d+) streams .*: (\d+) versions received, newest held min (\d+) max (\d+); "
              r"(\d+) ended, (\d+) duplicates, (\d+) protocol errors", held)
if m:
    n, _, lo, hi, ended, dup, perr = (int(g) for g in m.groups())
    check(n == streams and ended == 0 and dup == 0 and perr == 0
          and lo == hi == int(env["SOAK_VERSION"]) and env["SOAK_FANOUT_EXIT"] == "0",
          f"streams: {n} held throughout, {ended} ended, {dup} duplicates, {perr} protocol "
          f"errors, all on version {lo}..{hi} (last {env['SOAK_VERSION']})")
else:
    check(False, f"streams: no summary from fanout_client (exit {env['SOAK_FANOUT_EXIT']})")
died = env["SOAK_DIED"].split()
check(not died, "alive: every process ran to the end" + (f" (died: {', '.join(died)})" if died else ""))
for ok, text in growth:
    if ok is None:
        results.append(("SKIP", f"growth: {text}"))
    else:
        check(ok, f"growth: {text}")
check(env["SOAK_DTABD_EXIT"] == "0" and env["SOAK_PROXY_EXIT"] == "0",
      f"shutdown: dtabd exit {env['SOAK_DTABD_EXIT']}, dtab-proxy exit {env['SOAK_PROXY_EXIT']} "
      f"on SIGTERM")

out()
for status, text in results:
    out(f"  {status:<5} {text}")
failed = sum(1 for s, _ in results if s == "FAIL")
out()
out(f"soak: {'FAIL' if failed else 'PASS'} ({len(results) - failed} of {len(results)} checks "
    f"passed or skipped)")
with open(os.path.join(out_dir, "summary.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
sys.exit(1 if failed else 0)
PY
