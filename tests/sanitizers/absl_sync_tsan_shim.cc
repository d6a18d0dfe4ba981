// ThreadSanitizer build only (`make test-tsan`, docs/RELIABILITY.md "Sanitizers").
//
// Debian's libabsl_synchronization.so is not built with -fsanitize=thread, so absl::Mutex,
// absl::CondVar, absl::Notification and absl::BlockingCounter synchronize through atomics
// and futexes that TSan cannot see: every member guarded by an absl::Mutex would be reported
// as a race. (The headers' only TSan hook is __tsan_mutex_create in the inline constructor.)
//
// This file defines those classes' out-of-line members in the executable. The definitions
// interpose the library's: calls from our code bind here at static link time, and calls from
// gRPC's libraries (grpc_core::Mutex and gpr_mu are absl::Mutex) bind here at run time, since
// the TSan build exports these symbols (-Wl,--export-dynamic-symbol, tests/sanitizers/
// tsan.cmake). Each definition calls the library's own (dlsym RTLD_NEXT) and tells TSan what
// it did with the same __tsan_mutex_* calls, in the same places, as abseil's mutex.cc makes
// when abseil itself is built with TSan. Accesses made inside the library calls (abseil's
// internals, and absl::Condition functions it evaluates) are ignored, as in that build.
//
// Thread-safety: the lookups are function-local statics (thread-safe initialization).

#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tests/sanitizers/real_symbol.h"

namespace {

// The library's definition of the symbol `mangled` (see real_symbol.h).
template <typename Fn>
Fn Real(const char* mangled) {
  return dtabd::tsan::RealSymbol<Fn>("absl_sync_tsan_shim", mangled);
}

// Mangled-name prefixes for abseil's inline namespace on Debian 12 (`absl::debian3`).
#define SHIM_MUTEX "_ZN4absl7debian35Mutex"
#define SHIM_CONDVAR "_ZN4absl7debian37CondVar"

// Whether `mu` is held in shared mode: abseil's own test (mutex.cc, AwaitCommon) reads the
// writer bit (kMuWriter, 0x8) of the state word, Mutex's first member.
unsigned HeldFlags(const absl::Mutex* mu) {
  auto* word = reinterpret_cast<const std::atomic<intptr_t>*>(mu);
  return (word->load(std::memory_order_relaxed) & 0x8) != 0 ? 0 : __tsan_mutex_read_lock;
}

// Set while a wrapper runs the library's definition: the library's *WithTimeout members call
// the *WithDeadline ones (and Notification calls Mutex members) through the PLT, which lands
// in this file again; only the outermost call is annotated.
thread_local bool in_library = false;

template <typename F>
auto InLibrary(F call) {
  bool outer = !in_library;
  in_library = true;
  auto result = call();
  in_library = !outer;
  return result;
}

// A wait that releases `mu` and re-acquires it before returning (Await*, CondVar::Wait*),
// annotated as abseil's AwaitCommon and CondVar::WaitCommon are.
template <typename F>
auto ReleaseAndReacquire(absl::Mutex* mu, F wait) {
  if (in_library) {
    return wait();
  }
  unsigned flags = HeldFlags(mu);
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
  __tsan_mutex_pre_lock(mu, flags);
  auto result = InLibrary(wait);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// A lock acquisition (Lock, ReaderLock, LockWhen*...): `flags` is 0 or __tsan_mutex_read_lock.
template <typename F>
auto Acquire(absl::Mutex* mu, unsigned flags, F lock) {
  if (in_library) {
    return lock();
  }
  __tsan_mutex_pre_lock(mu, flags);
  auto result = InLibrary(lock);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// Whether `pc` is in this executable, where everything is built with -fsanitize=thread, as
// opposed to a shared library (Debian's gRPC, abseil...), which is not.
bool InInstrumentedCode(const void* pc) {
  static const void* const exe_base = [] {
    Dl_info self{};
    dladdr(reinterpret_cast<const void*>(&HeldFlags), &self);
    return self.dli_fbase;
  }();
  Dl_info info{};
  return dladdr(pc, &info) != 0 && info.dli_fbase == exe_base;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static auto real = Real<void (*)(Mutex*)>(SHIM_MUTEX "D2Ev");
  // A destruction by gRPC's own code is ordered after its last use by gRPC's reference
  // counts, atomics TSan cannot see in an uninstrumented library; TSan ignores memory
  // accesses from such libraries (ignore_noninstrumented_modules=1), and so does this.
  if (InInstrumentedCode(__builtin_return_address(0))) {
    __tsan_mutex_destroy(this, 0);
  }
  real(this);
}

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>(SHIM_MUTEX "4LockEv");
  Acquire(this, 0, [&] { real(this); return 0; });
}

void Mutex::ReaderLock() {
  static auto real = Real<void (*)(Mutex*)>(SHIM_MUTEX "10ReaderLockEv");
  Acquire(this, __tsan_mutex_read_lock, [&] { real(this); return 0; });
}

bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>(SHIM_MUTEX "7TryLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  bool locked = real(this);
  __tsan_mutex_post_lock(
      this, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static auto real = Real<bool (*)(Mutex*)>(SHIM_MUTEX "13ReaderTryLockEv");
  unsigned flags = __tsan_mutex_read_lock | __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(this, flags);
  bool locked = real(this);
  __tsan_mutex_post_lock(this, flags | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>(SHIM_MUTEX "6UnlockEv");
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  static auto real = Real<void (*)(Mutex*)>(SHIM_MUTEX "12ReaderUnlockEv");
  __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      SHIM_MUTEX "8LockWhenERKNS0_9ConditionE");
  Acquire(this, 0, [&] { real(this, cond); return 0; });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      SHIM_MUTEX "14ReaderLockWhenERKNS0_9ConditionE");
  Acquire(this, __tsan_mutex_read_lock, [&] { real(this, cond); return 0; });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      SHIM_MUTEX "19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Acquire(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      SHIM_MUTEX "20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Acquire(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      SHIM_MUTEX "25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Acquire(this, __tsan_mutex_read_lock, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      SHIM_MUTEX "26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Acquire(this, __tsan_mutex_read_lock, [&] { return real(this, cond, deadline); });
}

void Mutex::Await(const Condition& cond) {
  static auto real =
      Real<void (*)(Mutex*, const Condition&)>(SHIM_MUTEX "5AwaitERKNS0_9ConditionE");
  ReleaseAndReacquire(this, [&] { real(this, cond); return 0; });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      SHIM_MUTEX "16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return ReleaseAndReacquire(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      SHIM_MUTEX "17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return ReleaseAndReacquire(this, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  static auto real = Real<void (*)(CondVar*, Mutex*)>(SHIM_CONDVAR "4WaitEPNS0_5MutexE");
  ReleaseAndReacquire(mu, [&] { real(this, mu); return 0; });
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      SHIM_CONDVAR "15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return ReleaseAndReacquire(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      SHIM_CONDVAR "16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return ReleaseAndReacquire(mu, [&] { return real(this, mu, deadline); });
}

// Notification and BlockingCounter: the notifier's release pairs with the waiter's acquire
// (inside the library they are an atomic flag or count plus a private Mutex).
void Notification::Notify() {
  static auto real = Real<void (*)(Notification*)>("_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static auto real = Real<void (*)(const Notification*)>(
      "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  static auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified = real(this, timeout);
  if (notified) {
    __tsan_acquire(const_cast<Notification*>(this));
  }
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static auto real = Real<bool (*)(const Notification*, absl::Time)>(
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  bool notified = real(this, deadline);
  if (notified) {
    __tsan_acquire(const_cast<Notification*>(this));
  }
  return notified;
}

bool BlockingCounter::DecrementCount() {
  static auto real =
      Real<bool (*)(BlockingCounter*)>("_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  __tsan_release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  static auto real = Real<void (*)(BlockingCounter*)>("_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  __tsan_acquire(this);
}

ABSL_NAMESPACE_END
}  // namespace absl
