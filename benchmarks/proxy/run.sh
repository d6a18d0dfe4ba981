#!/usr/bin/env bash
# Proxy load run: dtab-proxy against nginx as a plain HTTP/1.1 reverse
# proxy, both in front of the same backend, driven by wrk. Measures, for
# each proxy, requests/s and the p50/p99 latency seen by wrk, the ratio of
# dtab-proxy's to nginx's, and dtab-proxy's memory at idle.
#
#   benchmarks/proxy/run.sh [BUILD_DIR]     (default: build; benchmarks/run.sh runs it)
#
# Everything runs on 127.0.0.1 from a temp dir (removed at exit; every
# process started is stopped at exit, also on failure or Ctrl-C):
#   backend     one nginx (1 worker, benchmarks/proxy/backend.nginx.conf.in)
#               answering every request with 200 "hello world\n", keep-alive;
#   nginx       a second nginx, worker_processes = PROXY_BENCH_WORKERS,
#               proxy_pass to an upstream block with `keepalive 64`,
#               HTTP/1.1 and `Connection ""` to the backend, no access log
#               (benchmarks/proxy/nginx-proxy.conf.in);
#   dtab-proxy  BUILD_DIR/bin/dtab-proxy (or $DTAB_PROXY) with `workers:
#               PROXY_BENCH_WORKERS` and one router `bench` whose static dtab
#               is `/svc/bench => /$/inet/127.0.0.1/BACKEND_PORT;`
#               (benchmarks/proxy/dtab-proxy.yaml.in).
# Every request, to either proxy, carries `Host: bench` (dtab-proxy's default
# identifier: /svc/bench) and `l5d-dtab: /host/world => /srv/world-v2;`, a
# one-dentry override that does not change the route but goes through the
# override parse/cache path (nginx forwards it as an ordinary header, so the
# bytes on the wire are the same). One request through each proxy must
# return 200 "hello world" before the load starts.
#
# Each round runs wrk (`--latency`, PROXY_BENCH_WRK_THREADS threads,
# PROXY_BENCH_CONNECTIONS connections) for 2 s of warm-up and then
# PROXY_BENCH_DURATION measured, against nginx and then dtab-proxy (odd
# rounds) or the other way round (even rounds), so that noise from other work
# on this shared machine falls on both; figures are medians over
# PROXY_BENCH_ROUNDS rounds. dtab-proxy's idle memory is its VmRSS after it
# has started and served the check request, before any load. Goals (PASS/MISS,
# on the medians):
#   req/s        dtab-proxy >= 1.0x nginx's
#   p99 latency  dtab-proxy <= 1.5x nginx's
#   idle RSS     dtab-proxy <= 20 MiB
# A MISS exits 0; a socket error or non-2xx response reported by wrk, a bad
# check response, or a process that dies or fails to start exits 1.
#
# Knobs (environment): PROXY_BENCH_WORKERS (1; dtab-proxy io threads = nginx
# worker_processes), PROXY_BENCH_CONNECTIONS (64), PROXY_BENCH_DURATION (10s),
# PROXY_BENCH_ROUNDS (3), PROXY_BENCH_WRK_THREADS (1), PROXY_BENCH_WARMUP (2s),
# PROXY_BENCH_ONLY_NGINX=1 (measure nginx alone, e.g. before dtab-proxy is
# built; no goals checked). Output: BUILD_DIR/bench/proxy.txt (what is printed,
# then wrk's raw output of every measured run) and proxy.json (every round
# and the medians). About 80 s with the defaults.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:-build}"
proxy_exe="${DTAB_PROXY:-${build_dir}/bin/dtab-proxy}"
out_dir="${build_dir}/bench"
nginx_exe="${NGINX:-/usr/sbin/nginx}"
wrk_exe="${WRK:-wrk}"
workers="${PROXY_BENCH_WORKERS:-1}"
connections="${PROXY_BENCH_CONNECTIONS:-64}"
duration="${PROXY_BENCH_DURATION:-10s}"
warmup="${PROXY_BENCH_WARMUP:-2s}"
rounds="${PROXY_BENCH_ROUNDS:-3}"
wrk_threads="${PROXY_BENCH_WRK_THREADS:-1}"
only_nginx="${PROXY_BENCH_ONLY_NGINX:-0}"
host_header="Host: bench"
dtab_header="l5d-dtab: /host/world => /srv/world-v2;"

die() {
  echo "proxy/run.sh: $*" >&2
  exit 1
}

for knob in WORKERS CONNECTIONS ROUNDS WRK_THREADS DURATION WARMUP; do
  var="${knob,,}"
  if [[ "${knob}" == DURATION || "${knob}" == WARMUP ]]; then
    [[ "${!var}" =~ ^[1-9][0-9]*[smh]?$ ]] || die "PROXY_BENCH_${knob} must be like 10s, not '${!var}'"
  else
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "PROXY_BENCH_${knob} must be a positive integer, not '${!var}'"
  fi
done
((connections >= wrk_threads)) || die "PROXY_BENCH_CONNECTIONS must be >= PROXY_BENCH_WRK_THREADS"
for exe in "${nginx_exe}" "$(command -v "${wrk_exe}" || echo "${wrk_exe}")" \
  "$(command -v curl || echo curl)" "$(command -v python3 || echo python3)"; do
  [[ -x "${exe}" ]] || die "${exe} not found (needs nginx, wrk, curl and python3)"
done
# The interpreter itself: a pyenv shim costs 0.2 s a call, and there are ~40.
py="$(python3 -c 'import sys; print(sys.executable)')"
if [[ "${only_nginx}" != 1 && ! -x "${proxy_exe}" ]]; then
  die "${proxy_exe} not found; build it first (cmake --build ${build_dir} -j2 --target dtab-proxy), or set PROXY_BENCH_ONLY_NGINX=1 to measure nginx alone"
fi
mkdir -p "${out_dir}"

# wrk's connections plus as many to the backend, per process, and some spare.
hard="$(ulimit -Hn)"
if [[ "${hard}" == unlimited || "${hard}" -gt 65536 ]]; then
  hard=65536
fi
ulimit -n "${hard}" 2>/dev/null || true
worker_connections=$((2 * connections + 256))

work="$(mktemp -d "${TMPDIR:-/tmp}/dtab-proxy-bench.XXXXXX")"
backend_pid="" nginx_pid="" proxy_pid="" wrk_pid=""

# True while PID runs (a zombie, exited but not yet reaped, does not count).
alive() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "${state}" && "${state}" != Z ]]
}

# stop PID: SIGTERM, up to 5 s to exit, then SIGKILL to it and its children
# (nginx workers outlive a killed master). Reaps it; the exit status is left
# in stop_status.
stop_status=0
stop() {
  local pid="$1" children i
  stop_status=0
  [[ -n "${pid}" ]] || return 0
  children="$(pgrep -P "${pid}" 2>/dev/null || true)"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "${pid}" || break
    sleep 0.1
  done
  if alive "${pid}"; then
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  wait "${pid}" 2>/dev/null || stop_status=$?
  for i in ${children}; do
    if alive "${i}"; then
      kill -KILL "${i}" 2>/dev/null || true
    fi
  done
}

cleanup() {
  trap - INT TERM
  stop "${wrk_pid}"
  stop "${proxy_pid}"
  stop "${nginx_pid}"
  stop "${backend_pid}"
  rm -rf "${work}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything printed also goes to proxy.txt (the summary adds to it).
say() {
  echo "$@" | tee -a "${work}/console"
}

# Two free ports on 127.0.0.1 (nginx cannot report what port 0 bound, so the
# port is picked here and released; a race with other processes is possible
# but unlikely).
read -r backend_port nginx_port < <("${py}" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
') || true
[[ -n "${backend_port:-}" && -n "${nginx_port:-}" ]] || die "could not pick free ports"

# fill TEMPLATE OUT: the template with @VARS@ replaced.
fill() {
  sed -e "s|@WORK@|${work}|g" -e "s|@WORKERS@|${workers}|g" \
    -e "s|@WORKER_CONNECTIONS@|${worker_connections}|g" \
    -e "s|@BACKEND_PORT@|${backend_port}|g" -e "s|@PROXY_PORT@|${nginx_port}|g" \
    "$1" >"$2"
}

# wait_port PID PORT NAME LOG: until 127.0.0.1:PORT accepts a connection;
# fails if PID exits first or after 10 s.
wait_port() {
  local pid="$1" port="$2" name="$3" log="$4" i
  for ((i = 0; i < 100; i++)); do
    if ! alive "${pid}"; then
      echo "proxy/run.sh: ${name} exited at startup; its log:" >&2
      cat "${log}" >&2 || true
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "proxy/run.sh: ${name} not listening on 127.0.0.1:${port} after 10 s; its log:" >&2
  cat "${log}" >&2 || true
  exit 1
}

# start_nginx NAME TEMPLATE PORT: sets started_pid.
started_pid=""
start_nginx() {
  local name="$1" dir="${work}/$1"
  mkdir -p "${dir}"
  fill "$2" "${dir}/nginx.conf"
  "${nginx_exe}" -p "${dir}/" -c "${dir}/nginx.conf" -e "${dir}/error.log" \
    >"${dir}/stdout" 2>&1 &
  started_pid=$!
  wait_port "${started_pid}" "$3" "${name} (nginx)" "${dir}/error.log"
}

# check NAME PORT: one request with the benchmark's headers must answer 200
# "hello world".
check() {
  local name="$1" port="$2" code body
  code="$(curl -sS --max-time 5 -o "${work}/check.body" -D "${work}/check.headers" \
    -w '%{http_code}' -H "${host_header}" -H "${dtab_header}" \
    "http://127.0.0.1:${port}/")" || code="curl failed"
  body="$(cat "${work}/check.body" 2>/dev/null || true)"
  if [[ "${code}" != 200 || "${body}" != "hello world" ]]; then
    echo "proxy/run.sh: check request through ${name} (127.0.0.1:${port}): status ${code}, expected 200 \"hello world\"; response:" >&2
    cat "${work}/check.headers" "${work}/check.body" >&2 2>/dev/null || true
    exit 1
  fi
}

rss_kib() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# CPU time (user + system, all threads) used so far by PID and its children,
# in clock ticks.
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() {
  local pid ticks=0 t
  for pid in "$1" $(pgrep -P "$1" || true); do
    t="$(sed 's/.*) //' "/proc/${pid}/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || t=0
    ticks=$((ticks + ${t:-0}))
  done
  echo "${ticks}"
}

# run_wrk OUT PORT DURATION: wrk in the background (so that Ctrl-C and the
# exit trap can stop it), its output to OUT.
run_wrk() {
  local rc=0
  "${wrk_exe}" --latency -t "${wrk_threads}" -c "${connections}" -d "$3" \
    -H "${host_header}" -H "${dtab_header}" "http://127.0.0.1:$2/" >"$1" 2>&1 &
  wrk_pid=$!
  wait "${wrk_pid}" || rc=$?
  wrk_pid=""
  if [[ "${rc}" -ne 0 ]]; then
    cat "$1" >&2
    die "wrk failed (status ${rc})"
  fi
}

# parse_wrk FILE: one JSON object with wrk's figures (latencies in ms); exits
# 1 when wrk reported socket errors or non-2xx responses or no result.
parse_wrk() {
  "${py}" - "$1" <<'PY'
import json
import re
import sys

text = open(sys.argv[1]).read()
to_ms = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}

def latency(pct):
    m = re.search(rf"^\s*{pct}%\s+([0-9.]+)(us|ms|s|m|h)\s*$", text, re.M)
    return float(m.group(1)) * to_ms[m.group(2)] if m else None

out = {"rps": None, "p50_ms": latency(50), "p75_ms": latency(75), "p90_ms": latency(90),
       "p99_ms": latency(99), "requests": None, "socket_errors": 0, "non_2xx": 0}
m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
if m:
    out["rps"] = float(m.group(1))
m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)", text, re.M)
if m:
    out["requests"] = int(m.group(1))
    out["seconds"] = float(m.group(2)) * to_ms[m.group(3)] / 1e3
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    out["socket_errors"] = sum(int(g) for g in m.groups())
    out["socket_errors_detail"] = m.group(0)
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m:
    out["non_2xx"] = int(m.group(1))
print(json.dumps(out))
ok = (out["rps"] and out["requests"] and out["p50_ms"] is not None and out["p99_ms"] is not None
      and out["socket_errors"] == 0 and out["non_2xx"] == 0)
sys.exit(0 if ok else 1)
PY
}

# measure ROUND NAME PORT PID: warm-up, then the measured run; appends one
# JSON line to runs.jsonl. Any wrk error fails the run.
measure() {
  local round="$1" name="$2" port="$3" pid="$4" tag="${1}-${2}" res cpu0 cpu1 bcpu0 bcpu1
  run_wrk "${work}/wrk-warmup-${tag}.txt" "${port}" "${warmup}"
  cpu0="$(cpu_ticks "${pid}")" bcpu0="$(cpu_ticks "${backend_pid}")"
  run_wrk "${work}/wrk-${tag}.txt" "${port}" "${duration}"
  cpu1="$(cpu_ticks "${pid}")" bcpu1="$(cpu_ticks "${backend_pid}")"
  for f in "${work}/wrk-warmup-${tag}.txt" "${work}/wrk-${tag}.txt"; do
    if ! res="$(parse_wrk "${f}")"; then
      cat "${f}" >&2
      cp "${f}" "${out_dir}/proxy_failed_wrk.txt"
      die "round ${round}, ${name}: wrk reported errors or no result (above; kept in ${out_dir}/proxy_failed_wrk.txt)"
    fi
  done
  alive "${pid}" || die "round ${round}: ${name} died during the run"
  alive "${backend_pid}" || die "round ${round}: the backend died during the run"
  say "$("${py}" - "${res}" "${round}" "${name}" "${cpu0}" "${cpu1}" "${bcpu0}" "${bcpu1}" \
    "${work}/runs.jsonl" "${clk_tck}" <<'PY'
import json
import sys

r = json.loads(sys.argv[1])
tck = float(sys.argv[9])
r.update(round=int(sys.argv[2]), proxy=sys.argv[3],
         proxy_cpu_s=(int(sys.argv[5]) - int(sys.argv[4])) / tck,
         backend_cpu_s=(int(sys.argv[7]) - int(sys.argv[6])) / tck)
with open(sys.argv[8], "a") as f:
    f.write(json.dumps(r) + "\n")
print(f"  round {r['round']} {r['proxy']:<10} {r['rps']:>10,.0f} req/s  "
      f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms")
PY
)"
}

# ---------------------------------------------------------------------------
start_loadavg="$(cut -d' ' -f1-3 /proc/loadavg)"
say "proxy: $(nproc) CPUs, load average ${start_loadavg} at the start"
say "proxy: wrk -t ${wrk_threads} -c ${connections}, ${warmup} warm-up + ${duration} measured," \
  "${rounds} rounds; ${workers} proxy worker(s); backend nginx 127.0.0.1:${backend_port}"

start_nginx backend "${here}/backend.nginx.conf.in" "${backend_port}"
backend_pid="${started_pid}"
check backend "${backend_port}"

start_nginx nginx-proxy "${here}/nginx-proxy.conf.in" "${nginx_port}"
nginx_pid="${started_pid}"
check nginx "${nginx_port}"
sleep 0.2
nginx_workers="$(pgrep -P "${nginx_pid}" | paste -sd' ')"
nginx_rss_master="$(rss_kib "${nginx_pid}")"
nginx_rss_workers=0
for p in ${nginx_workers}; do
  nginx_rss_workers=$((nginx_rss_workers + $(rss_kib "${p}")))
done
say "proxy: nginx (reverse proxy) listening on 127.0.0.1:${nginx_port}, master pid ${nginx_pid}, workers ${nginx_workers}"

proxy_port="" proxy_rss_idle=""
if [[ "${only_nginx}" != 1 ]]; then
  mkdir -p "${work}/dtab-proxy"
  fill "${here}/dtab-proxy.yaml.in" "${work}/dtab-proxy/proxy.yaml"
  "${proxy_exe}" --config "${work}/dtab-proxy/proxy.yaml" \
    >"${work}/dtab-proxy/stdout" 2>"${work}/dtab-proxy/stderr" &
  proxy_pid=$!
  for ((i = 0; i < 100; i++)); do  # up to 10 s
    line="$(grep -m 1 '^dtab-proxy: serving ' "${work}/dtab-proxy/stdout" 2>/dev/null || true)"
    [[ -z "${line}" ]] || break
    if ! alive "${proxy_pid}"; then
      cat "${work}/dtab-proxy/stdout" "${work}/dtab-proxy/stderr" >&2
      echo "proxy/run.sh: the config it was given:" >&2
      cat "${work}/dtab-proxy/proxy.yaml" >&2
      die "dtab-proxy exited at startup (its output and config above)"
    fi
    sleep 0.1
  done
  if [[ -z "${line}" ]]; then
    cat "${work}/dtab-proxy/stdout" "${work}/dtab-proxy/stderr" >&2
    die "dtab-proxy printed no 'dtab-proxy: serving admin=... bench=...' line within 10 s"
  fi
  proxy_port="$(grep -o ' bench=[^ ]*' <<<"${line}" | sed 's/.*://' || true)"
  [[ -n "${proxy_port}" ]] || die "no bench=IP:PORT in dtab-proxy's line: ${line}"
  check dtab-proxy "${proxy_port}"
  sleep 0.2
  proxy_rss_idle="$(rss_kib "${proxy_pid}")"
  say "proxy: dtab-proxy pid ${proxy_pid}: ${line}"
fi

measured=("nginx ${nginx_port} ${nginx_pid}")
if [[ "${only_nginx}" != 1 ]]; then
  measured+=("dtab-proxy ${proxy_port} ${proxy_pid}")
fi
say
for ((round = 1; round <= rounds; round++)); do
  order=("${measured[@]}")
  if ((round % 2 == 0)) && ((${#measured[@]} == 2)); then
    order=("${measured[1]}" "${measured[0]}")
  fi
  for entry in "${order[@]}"; do
    read -r name port pid <<<"${entry}"
    measure "${round}" "${name}" "${port}" "${pid}"
  done
done

say
say "proxy: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"

# After the load: both still answer, and how much memory they kept.
check nginx "${nginx_port}"
nginx_rss_after=0
for p in ${nginx_workers}; do
  nginx_rss_after=$((nginx_rss_after + $(rss_kib "${p}")))
done
proxy_rss_after="" proxy_exit=""
if [[ -n "${proxy_pid}" ]]; then
  check dtab-proxy "${proxy_port}"
  proxy_rss_after="$(rss_kib "${proxy_pid}")"
  stop "${proxy_pid}"
  proxy_pid=""
  proxy_exit="${stop_status}"
  cp "${work}/dtab-proxy/stderr" "${out_dir}/proxy_dtab-proxy.stderr"
fi

for f in "${work}"/wrk-[0-9]*.txt; do
  {
    echo
    echo "=== wrk output, $(basename "${f}" .txt) ==="
    cat "${f}"
  } >>"${work}/raw"
done

BENCH_WORKERS="${workers}" BENCH_CONNECTIONS="${connections}" BENCH_WRK_THREADS="${wrk_threads}" \
  BENCH_DURATION="${duration}" BENCH_WARMUP="${warmup}" BENCH_ROUNDS="${rounds}" \
  BENCH_LOADAVG="${start_loadavg}" BENCH_HEADERS="${host_header}|${dtab_header}" \
  PROXY_RSS_IDLE="${proxy_rss_idle}" PROXY_RSS_AFTER="${proxy_rss_after}" PROXY_EXIT="${proxy_exit}" \
  NGINX_RSS_MASTER="${nginx_rss_master}" NGINX_RSS_WORKERS="${nginx_rss_workers}" \
  NGINX_RSS_AFTER="${nginx_rss_after}" "${py}" - "${work}" "${out_dir}" <<'PY'
import json
import os
import statistics
import sys

work, out_dir = sys.argv[1], sys.argv[2]
env = os.environ
def kib(name):
    return int(env[name]) if env.get(name) else None
settings = {
    "workers": int(env["BENCH_WORKERS"]), "connections": int(env["BENCH_CONNECTIONS"]),
    "wrk_threads": int(env["BENCH_WRK_THREADS"]), "duration": env["BENCH_DURATION"],
    "warmup": env["BENCH_WARMUP"], "rounds": int(env["BENCH_ROUNDS"]),
    "cpus": os.cpu_count(), "load_average_at_start": env["BENCH_LOADAVG"],
    "headers": env["BENCH_HEADERS"].split("|"),
}
rss = {
    "dtab_proxy_idle_kib": kib("PROXY_RSS_IDLE"),
    "dtab_proxy_after_load_kib": kib("PROXY_RSS_AFTER"),
    "nginx_master_idle_kib": kib("NGINX_RSS_MASTER"),
    "nginx_workers_idle_kib": kib("NGINX_RSS_WORKERS"),
    "nginx_workers_after_load_kib": kib("NGINX_RSS_AFTER"),
}
proxy_exit = env["PROXY_EXIT"]
with open(os.path.join(work, "runs.jsonl")) as f:
    runs = [json.loads(line) for line in f if line.strip()]

lines = []
def out(s=""):
    print(s)
    lines.append(s)

names = [n for n in ("nginx", "dtab-proxy") if any(r["proxy"] == n for r in runs)]
medians = {}
for n in names:
    rs = [r for r in runs if r["proxy"] == n]
    medians[n] = {k: statistics.median(r[k] for r in rs)
                  for k in ("rps", "p50_ms", "p90_ms", "p99_ms")}
    medians[n]["proxy_cpu_us_per_req"] = statistics.median(
        r["proxy_cpu_s"] * 1e6 / r["requests"] for r in rs)
    medians[n]["backend_cpu_us_per_req"] = statistics.median(
        r["backend_cpu_s"] * 1e6 / r["requests"] for r in rs)

out()
out(f"{'round':>5} {'proxy':<11} {'req/s':>10} {'p50':>9} {'p90':>9} {'p99':>9} "
    f"{'proxy cpu/req':>14} {'backend cpu/req':>16}")
for r in runs:
    out(f"{r['round']:>5} {r['proxy']:<11} {r['rps']:>10,.0f} {r['p50_ms']:>7.2f}ms "
        f"{r['p90_ms']:>7.2f}ms {r['p99_ms']:>7.2f}ms "
        f"{r['proxy_cpu_s'] * 1e6 / r['requests']:>12.1f}us "
        f"{r['backend_cpu_s'] * 1e6 / r['requests']:>14.1f}us")
for n in names:
    m = medians[n]
    out(f"{'med':>5} {n:<11} {m['rps']:>10,.0f} {m['p50_ms']:>7.2f}ms {m['p90_ms']:>7.2f}ms "
        f"{m['p99_ms']:>7.2f}ms {m['proxy_cpu_us_per_req']:>12.1f}us "
        f"{m['backend_cpu_us_per_req']:>14.1f}us")
out("(cpu/req: user+system CPU of the proxy's processes, or of the backend, during the "
    "measured run, per request)")

results = []
ratios = {}
if "dtab-proxy" in medians:
    d, g = medians["dtab-proxy"], medians["nginx"]
    ratios = {"rps": d["rps"] / g["rps"], "p50": d["p50_ms"] / g["p50_ms"],
              "p99": d["p99_ms"] / g["p99_ms"]}
    results.append(("PASS" if ratios["rps"] >= 1.0 else "MISS",
                    f"req/s: dtab-proxy {d['rps']:,.0f} vs nginx {g['rps']:,.0f} "
                    f"({ratios['rps']:.2f}x, goal >= 1.0x)"))
    results.append(("PASS" if ratios["p99"] <= 1.5 else "MISS",
                    f"p99: dtab-proxy {d['p99_ms']:.2f} ms vs nginx {g['p99_ms']:.2f} ms "
                    f"({ratios['p99']:.2f}x, goal <= 1.5x)"))
    idle = rss["dtab_proxy_idle_kib"]
    results.append(("PASS" if idle <= 20480 else "MISS",
                    f"idle RSS: {idle / 1024:.1f} MiB (goal <= 20 MiB)"))

out()
out("proxy goals:")
if not results:
    out("  SKIP  dtab-proxy not measured (PROXY_BENCH_ONLY_NGINX=1): no goal checked")
for status, text in results:
    out(f"  {status:<5} {text}")
if ratios:
    out(f"  info  p50: dtab-proxy {medians['dtab-proxy']['p50_ms']:.2f} ms vs nginx "
        f"{medians['nginx']['p50_ms']:.2f} ms ({ratios['p50']:.2f}x)")
    per_round = []
    for rnd in sorted({r["round"] for r in runs}):
        by = {r["proxy"]: r for r in runs if r["round"] == rnd}
        per_round.append(f"{by['dtab-proxy']['rps'] / by['nginx']['rps']:.2f}x")
    out(f"  info  req/s ratio per round: {', '.join(per_round)}")
    out(f"  info  dtab-proxy RSS after the load: {rss['dtab_proxy_after_load_kib'] / 1024:.1f} MiB")
    if proxy_exit not in ("0", "143"):
        out(f"  info  dtab-proxy exited with status {proxy_exit} on SIGTERM "
            f"(stderr in {out_dir}/proxy_dtab-proxy.stderr)")
out(f"  info  nginx RSS at idle: master {rss['nginx_master_idle_kib'] / 1024:.1f} MiB + "
    f"workers {rss['nginx_workers_idle_kib'] / 1024:.1f} MiB "
    f"({rss['nginx_workers_after_load_kib'] / 1024:.1f} MiB after the load)")
misses = sum(1 for s, _ in results if s == "MISS")
if results:
    out(f"\n{len(results) - misses}/{len(results)} proxy goals met; "
        f"{out_dir}/proxy.txt and proxy.json")

with open(os.path.join(out_dir, "proxy.json"), "w") as f:
    json.dump({"settings": settings, "runs": runs, "medians": medians,
               "ratios_dtab_proxy_over_nginx": ratios, "rss": rss,
               "goals": [{"status": s, "text": t} for s, t in results]}, f, indent=2)
    f.write("\n")
with open(os.path.join(work, "console")) as f:
    console = f.read()
with open(os.path.join(work, "raw")) as f:
    raw = f.read()
with open(os.path.join(out_dir, "proxy.txt"), "w") as f:
    f.write(console + "\n".join(lines) + "\n" + raw)
PY
