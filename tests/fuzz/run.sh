#!/usr/bin/env bash
# Runs every libFuzzer target of a DTABD_FUZZ build for a bounded time and
# prints, per target, the executions run and the findings (crash, leak,
# timeout and out-of-memory inputs). Exits 1 if any target found anything.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
#
# A target's dictionary, tests/fuzz/<target>.dict, is used when present.
# Each target starts from tests/fuzz/corpus/<target>/ copied into
# WORK/corpus/<target>/ (which keeps what earlier runs learned); findings go
# to WORK/findings/<target>/, logs to WORK/<target>.log. WORK is $FUZZ_WORK,
# default BUILD_DIR/fuzz. Reproduce a finding with BUILD_DIR/bin/<target> FILE.
set -u
build_dir=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
work=${FUZZ_WORK:-$build_dir/fuzz}
src_dir=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(dtab_parser_fuzz override_fuzz http_request_fuzz namerd_codec_fuzz fs_endpoints_fuzz)
fi

failed=0
printf '%-20s %12s %10s %8s  %s\n' target executions exec/s findings result
for t in "${targets[@]}"; do
  bin="$build_dir/bin/$t"
  corpus="$work/corpus/$t"
  findings="$work/findings/$t"
  log="$work/$t.log"
  mkdir -p "$corpus" "$findings"
  cp -n "$src_dir/corpus/$t/"* "$corpus/" 2>/dev/null
  before=$(ls -A "$findings" | wc -l)
  dict=()
  if [ -f "$src_dir/$t.dict" ]; then dict=(-dict="$src_dir/$t.dict"); fi
  "$bin" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  new=$(( $(ls -A "$findings" | wc -l) - before ))
  result=ok
  if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    result="FAILED (exit $rc; see $log)"
    failed=1
  fi
  printf '%-20s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$new" "$result"
  if [ "$new" -gt 0 ]; then
    ls -t "$findings" | head -"$new" | sed "s|^|    $findings/|"
    grep -m3 -E 'property violated|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' \
      "$log" | sed 's/^/    /'
  fi
done
exit $failed
