// Executor: a fixed pool of threads for blocking work (SQLite), so that
// gRPC reactions and Asio handlers never block (STYLE.md section 7).
//
// Thread-safety: Run may be called from any thread. Tasks run in FIFO order
// across the pool's threads.
#ifndef DTABD_SERVER_EXECUTOR_H_
#define DTABD_SERVER_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace dtabd::server {

class Executor {
 public:
  explicit Executor(int threads);
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  // Runs every queued task, then joins the threads.
  ~Executor();

  // Queues `task`. After shutdown has begun the task still runs (inline),
  // so callers waiting on it are never stranded.
  void Run(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // immutable after construction
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_EXECUTOR_H_
