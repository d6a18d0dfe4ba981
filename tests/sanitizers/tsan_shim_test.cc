// `make test-tsan` only: checks that absl_sync_tsan_shim.cc is linked and gives TSan the
// happens-before edges of absl::Mutex (Lock, Await), absl::CondVar and absl::Notification.
// Without the shim every access below is reported as a data race (TSan then exits 66);
// with it the run is silent and exits 0.

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

int main() {
  absl::Mutex mu;
  absl::CondVar cv;
  int counter = 0;     // guarded by mu
  bool ready = false;  // guarded by mu
  int handed_off = 0;  // written before notified.Notify(), read after waiting for it
  absl::Notification notified;

  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 100; ++j) {
        absl::MutexLock lock(&mu);
        ++counter;
      }
    });
  }
  threads.emplace_back([&] {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&ready));
    ++counter;
  });
  threads.emplace_back([&] {
    absl::MutexLock lock(&mu);
    while (!ready) {
      cv.Wait(&mu);
    }
    ++counter;
  });
  threads.emplace_back([&] {
    notified.WaitForNotification();
    ++handed_off;
  });
  handed_off = 1;
  notified.Notify();
  {
    absl::MutexLock lock(&mu);
    ready = true;
    cv.Signal();
  }
  for (std::thread& t : threads) {
    t.join();
  }
  absl::MutexLock lock(&mu);
  return counter == 402 && handed_off == 2 ? 0 : 1;
}
