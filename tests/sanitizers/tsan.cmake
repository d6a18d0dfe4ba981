# Included through CMAKE_PROJECT_INCLUDE by `make test-tsan` only (docs/RELIABILITY.md
# "Sanitizers"). Every target created after this point links absl_sync_tsan_shim (TSan
# annotations for Debian's uninstrumented absl::Mutex and friends, and for the tags gRPC's
# completion queues hand between threads; see the two files), and every executable exports
# the shims' symbols so that gRPC's and abseil's own calls reach them too.
# gRPC's inline header code is left uninstrumented, as its libraries are (see the list).
string(APPEND CMAKE_CXX_FLAGS " -fsanitize-ignorelist=${CMAKE_CURRENT_LIST_DIR}/tsan_ignorelist.txt")
# The TSan runtime replaces operator new, as benchmarks/bench_util.cc does.
set(DTABD_SKIP_MICROBENCHMARKS ON)
find_package(absl CONFIG REQUIRED)
add_library(dtabd_tsan_absl_shim STATIC ${CMAKE_CURRENT_LIST_DIR}/absl_sync_tsan_shim.cc
  ${CMAKE_CURRENT_LIST_DIR}/grpc_cq_tsan_shim.cc)
target_link_libraries(dtabd_tsan_absl_shim PUBLIC absl::synchronization ${CMAKE_DL_LIBS})
target_include_directories(dtabd_tsan_absl_shim PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../..)
link_libraries(dtabd_tsan_absl_shim)
string(APPEND CMAKE_EXE_LINKER_FLAGS
  " -Wl,--export-dynamic-symbol=_ZN4absl7debian35Mutex*"
  " -Wl,--export-dynamic-symbol=_ZN4absl7debian37CondVar*"
  " -Wl,--export-dynamic-symbol=_ZNK4absl7debian312Notification*"
  " -Wl,--export-dynamic-symbol=_ZN4absl7debian312Notification*"
  " -Wl,--export-dynamic-symbol=_ZN4absl7debian315BlockingCounter*"
  " -Wl,--export-dynamic-symbol=grpc_call_start_batch"
  " -Wl,--export-dynamic-symbol=grpc_server_request_call"
  " -Wl,--export-dynamic-symbol=grpc_server_request_registered_call"
  " -Wl,--export-dynamic-symbol=grpc_completion_queue_next"
  " -Wl,--export-dynamic-symbol=grpc_completion_queue_pluck"
  # Pull both shims into executables whose own objects call neither.
  " -Wl,--undefined=_ZN4absl7debian35Mutex4LockEv"
  " -Wl,--undefined=grpc_completion_queue_next")

# The shim's own check (a plain executable: exit 0, and no report in the log directory).
find_package(Threads REQUIRED)
add_executable(tsan_shim_test ${CMAKE_CURRENT_LIST_DIR}/tsan_shim_test.cc)
target_link_libraries(tsan_shim_test PRIVATE absl::synchronization Threads::Threads)
set_target_properties(tsan_shim_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
enable_testing()
add_test(NAME tsan_shim_test COMMAND tsan_shim_test)
