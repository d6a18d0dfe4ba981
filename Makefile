# Thin wrapper over CMake. The README's two commands are `make demo` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build test demo bench thread-safety test-asan test-tsan clean

all: build

setup:
	@scripts/setup

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-smoke

# The hello-world staging story (README "The demo"); DEMO_ONCE=1 runs it and exits.
demo: build
	DEMO_BIN=$(BUILD_DIR)/bin examples/hello-world/demo.sh

bench: build
	benchmarks/run.sh $(BUILD_DIR)

# Mixed load for SOAK_SECONDS (default 600): dtab flips, 1,000 streams, proxy traffic with
# and without overrides; fails on a misroute or on RSS/fd growth (tests/soak/soak.sh,
# docs/RELIABILITY.md "Soak"). Output in $(BUILD_DIR)/soak/. A 20 s version runs in `make test`.
.PHONY: soak
soak: build
	tests/soak/soak.sh $(BUILD_DIR)

# libFuzzer targets (tests/fuzz/, docs/RELIABILITY.md "Fuzzing") in their own clang build
# (ASan + UBSan; only dtab and the proxy/server sources they reach, no gRPC). `make fuzz`
# runs each target for FUZZ_SECONDS on its corpus (kept in $(BUILD_DIR)-fuzz/fuzz/) and
# fails if any finds a crash; `make test` runs each for FUZZ_SMOKE_SECONDS from the seeds.
FUZZ_SECONDS ?= 180
FUZZ_SMOKE_SECONDS ?= 5
.PHONY: fuzz-build fuzz fuzz-smoke
fuzz-build: setup
	@test -f $(BUILD_DIR)-fuzz/build.ninja || CC=clang CXX=clang++ cmake -S . -B $(BUILD_DIR)-fuzz \
	  -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDTABD_FUZZ=ON
	cmake --build $(BUILD_DIR)-fuzz -j $(JOBS)

fuzz: fuzz-build
	tests/fuzz/run.sh $(BUILD_DIR)-fuzz $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	rm -rf $(BUILD_DIR)-fuzz/fuzz-smoke
	FUZZ_WORK=$(BUILD_DIR)-fuzz/fuzz-smoke tests/fuzz/run.sh $(BUILD_DIR)-fuzz $(FUZZ_SMOKE_SECONDS)

# Clang's -Wthread-safety over our libraries (STYLE.md section 7); CI runs it.
thread-safety: setup
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_DIR)-clang -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-Wthread-safety -Werror=thread-safety"
	cmake --build $(BUILD_DIR)-clang -j $(JOBS) --target dtabd_storage dtabd_cli dtabd_http dtabd_server dtabd_discovery dtabd_proxy

# The whole suite under sanitizers (docs/RELIABILITY.md "Sanitizers"), each in its own build
# directory; not part of `make test` (too slow for CI's budget). Child processes the tests
# start (dtabd, dtab-proxy, hello, world, dtabctl) are that directory's sanitized builds.
# -O1 without NDEBUG: DTABD_DCHECKs stay on. Every process writes its reports to
# <dir>/sanitizer-logs/ (a child's stderr may be a file no test reads), and the target fails
# if any report was written there, even when every test passed.
SAN_SUPP := $(CURDIR)/tests/sanitizers
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_LOGS = $(CURDIR)/$(BUILD_DIR)-asan/sanitizer-logs
test-asan: setup
	cmake -S . -B $(BUILD_DIR)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-O1 $(ASAN_FLAGS)" -DCMAKE_EXE_LINKER_FLAGS="$(ASAN_FLAGS)" \
	  -DCMAKE_SHARED_LINKER_FLAGS="$(ASAN_FLAGS)"
	cmake --build $(BUILD_DIR)-asan -j $(JOBS)
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	cd $(BUILD_DIR)-asan && \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=2:log_path=$(ASAN_LOGS)/asan \
	  LSAN_OPTIONS=suppressions=$(SAN_SUPP)/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(ASAN_LOGS)/ubsan \
	  ctest --output-on-failure -j $(JOBS) --timeout 900 -E '^soak_short_test$$'; \
	  status=$$?; cd $(CURDIR); \
	  echo "test-asan: soak_short_test not run: its RSS-growth check cannot hold under ASan" \
	    "(freed memory is quarantined, 256 MiB per process); leaks are LeakSanitizer's job here"; \
	  if [ -n "$$(ls -A $(ASAN_LOGS))" ]; then head -n 60 $(ASAN_LOGS)/*; \
	    echo "test-asan: sanitizer reports in $(ASAN_LOGS)"; exit 1; fi; exit $$status

# TSan: clang, with tests/sanitizers/tsan.cmake linking the absl::Mutex annotation shim into
# every executable (Debian's abseil and gRPC are not TSan-instrumented).
TSAN_LOGS = $(CURDIR)/$(BUILD_DIR)-tsan/sanitizer-logs
test-tsan: setup
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_DIR)-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-O1 -fno-omit-frame-pointer -fsanitize=thread" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
	  -DCMAKE_PROJECT_INCLUDE=$(SAN_SUPP)/tsan.cmake
	cmake --build $(BUILD_DIR)-tsan -j $(JOBS)
	rm -rf $(TSAN_LOGS) && mkdir -p $(TSAN_LOGS)
	cd $(BUILD_DIR)-tsan && \
	  TSAN_OPTIONS=suppressions=$(SAN_SUPP)/tsan.supp:ignore_noninstrumented_modules=1:halt_on_error=0:second_deadlock_stack=1:history_size=4:log_path=$(TSAN_LOGS)/tsan \
	  ctest --output-on-failure -j $(JOBS) --timeout 1800 $(TSAN_CTEST_ARGS); \
	  status=$$?; cd $(CURDIR); \
	  if [ -n "$$(ls -A $(TSAN_LOGS))" ]; then head -n 80 $(TSAN_LOGS)/*; \
	    echo "test-tsan: sanitizer reports in $(TSAN_LOGS)"; exit 1; fi; exit $$status

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-clang $(BUILD_DIR)-fuzz $(BUILD_DIR)-asan $(BUILD_DIR)-tsan
