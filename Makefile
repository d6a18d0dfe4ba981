# Thin wrapper over CMake. The README's two commands are `make demo` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build test demo bench thread-safety clean

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

# The hello-world staging story (README "The demo"); DEMO_ONCE=1 runs it and exits.
demo: build
	DEMO_BIN=$(BUILD_DIR)/bin examples/hello-world/demo.sh

bench: build
	benchmarks/run.sh $(BUILD_DIR)

# Clang's -Wthread-safety over our libraries (STYLE.md section 7); CI runs it.
thread-safety: setup
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_DIR)-clang -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-Wthread-safety -Werror=thread-safety"
	cmake --build $(BUILD_DIR)-clang -j $(JOBS) --target dtabd_storage dtabd_cli dtabd_http dtabd_server dtabd_discovery dtabd_proxy

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-clang
