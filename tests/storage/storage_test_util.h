// Test helpers shared by the storage tests: a temporary directory removed on
// destruction, a fake clock, and Status matchers.
//
// Thread-safety: FakeClock is thread-safe; TempDir is not (one owner).
#ifndef DTABD_TESTS_STORAGE_STORAGE_TEST_UTIL_H_
#define DTABD_TESTS_STORAGE_STORAGE_TEST_UTIL_H_

#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/dtab_store.h"

namespace dtabd::storage {

// gtest printers, found by ADL, so failures show fields rather than bytes.
inline void PrintTo(const VersionedDtab& v, std::ostream* os) {
  *os << "{ns=" << v.ns << " version=" << v.version << " revision=" << v.revision << " dtab='"
      << v.dtab << "' author='" << v.author << "' comment='" << v.comment
      << "' created_at=" << absl::FormatTime(v.created_at) << " deleted=" << v.deleted << "}";
}
inline void PrintTo(const NamespaceSummary& s, std::ostream* os) {
  *os << "{ns=" << s.ns << " version=" << s.version << " revision=" << s.revision << "}";
}
inline bool operator==(const NamespaceSummary& a, const NamespaceSummary& b) {
  return a.ns == b.ns && a.version == b.version && a.revision == b.revision;
}

}  // namespace dtabd::storage

namespace dtabd::storage::testing {

// A fresh directory under ::testing::TempDir(), created by mkdtemp and
// removed recursively (with everything in it) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string base = ::testing::TempDir();
    if (base.empty() || base.back() != '/') {
      base += '/';
    }
    std::string templ = base + "dtabd_storage_XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp(" << templ << ") failed";
      return;
    }
    path_ = templ;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }

  const std::string& path() const { return path_; }
  // `name` inside the directory.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A clock that only moves when told to. Starts at a fixed instant.
class FakeClock {
 public:
  static constexpr int64_t kStartMicros = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

  absl::Time Now() const { return absl::FromUnixMicros(micros_.load()); }
  void Advance(absl::Duration d) { micros_.fetch_add(absl::ToInt64Microseconds(d)); }

 private:
  std::atomic<int64_t> micros_{kStartMicros};
};

// Matches an absl::Status or absl::StatusOr<T> whose code is `code`.
MATCHER_P(StatusIs, code,
          absl::StrCat(negation ? "does not have" : "has", " status code ",
                       absl::StatusCodeToString(code))) {
  const absl::Status s = [&] {
    if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
      return arg;
    } else {
      return arg.status();
    }
  }();
  *result_listener << "status is " << s;
  return s.code() == code;
}

// Matches an absl::Status or absl::StatusOr<T> whose code is `code` and
// whose message matches `message_matcher`.
MATCHER_P2(StatusIs, code, message_matcher,
           absl::StrCat(negation ? "does not have" : "has", " status code ",
                        absl::StatusCodeToString(code), " and a matching message")) {
  const absl::Status s = [&] {
    if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
      return arg;
    } else {
      return arg.status();
    }
  }();
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status s = [&] {
    if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
      return arg;
    } else {
      return arg.status();
    }
  }();
  *result_listener << "status is " << s;
  return s.ok();
}

// Matches an OK absl::StatusOr<T> whose value matches `value_matcher`.
MATCHER_P(IsOkAndHolds, value_matcher,
          negation ? "is not OK or holds a non-matching value" : "is OK and holds a match") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace dtabd::storage::testing

#define DTABD_TEST_CONCAT_INNER_(x, y) x##y
#define DTABD_TEST_CONCAT_(x, y) DTABD_TEST_CONCAT_INNER_(x, y)

// Asserts that `expr` (an absl::StatusOr<T>) is OK and moves its value into
// `lhs`, which may be a declaration. For use in void test bodies only.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(DTABD_TEST_CONCAT_(dtabd_test_sor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(sor, lhs, expr) \
  auto sor = (expr);                               \
  ASSERT_TRUE(sor.ok()) << sor.status();           \
  lhs = *std::move(sor)

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::dtabd::storage::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::dtabd::storage::testing::IsOk())

#endif  // DTABD_TESTS_STORAGE_STORAGE_TEST_UTIL_H_
