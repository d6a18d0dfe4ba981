// Disk full: with the database capped by Options.max_page_count, writes fail
// with ResourceExhausted and a clear message, while reads keep working,
// nothing acknowledged is damaged, and a later open with room writes again.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/sqlite_dtab_store.h"
#include "tests/storage/storage_test_util.h"

namespace dtabd::storage {
namespace {

using ::dtabd::storage::testing::IsOkAndHolds;
using ::dtabd::storage::testing::StatusIs;
using ::dtabd::storage::testing::TempDir;
using ::testing::HasSubstr;

// About 1.5 KiB of valid dtab text, distinct per `i`: a few fit in a page.
std::string BigText(int i) { return absl::StrCat("/svc=>/srv/n", i, "/", std::string(1500, 'p')); }

std::string NsFor(int i) { return absl::StrCat("full-", i % 3); }

class DiskFullTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<SqliteDtabStore>> Open(std::optional<int64_t> max_page_count) {
    SqliteDtabStore::Options o;
    o.path = dir_.File("full.db");
    o.max_page_count = max_page_count;
    return SqliteDtabStore::Open(o);
  }

  // Checks that `acked` (every acknowledged write, in commit order) reads
  // back intact through every read operation and is all the store holds.
  void ExpectIntact(SqliteDtabStore& store, const std::vector<VersionedDtab>& acked) {
    std::map<std::string, VersionedDtab> latest;
    for (const VersionedDtab& v : acked) {
      EXPECT_THAT(store.Get(v.ns, v.version), IsOkAndHolds(v));
      latest[v.ns] = v;
    }
    for (const auto& [ns, v] : latest) {
      EXPECT_THAT(store.Get(ns, std::nullopt), IsOkAndHolds(v));
      absl::StatusOr<HistoryPage> h = store.History(ns, 1000, 0);
      ASSERT_TRUE(h.ok()) << h.status();
      EXPECT_EQ(static_cast<int64_t>(h->versions.size()), v.version);
    }
    absl::StatusOr<std::vector<NamespaceSummary>> list = store.List();
    ASSERT_TRUE(list.ok()) << list.status();
    EXPECT_EQ(list->size(), latest.size());
    EXPECT_THAT(store.ChangesSince(0, 100'000), IsOkAndHolds(acked));
    EXPECT_THAT(store.CurrentRevision(), IsOkAndHolds(acked.back().revision));
    EXPECT_THAT(store.IntegrityCheck(), IsOkAndHolds(std::string("ok")));
  }

  TempDir dir_;
};

TEST_F(DiskFullTest, WritesPastMaxPageCountReturnResourceExhaustedAndReadsKeepWorking) {
  constexpr int64_t kMaxPages = 24;  // the schema takes about 8; room for a few writes
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDtabStore> store, Open(kMaxPages));

  std::vector<VersionedDtab> acked;
  absl::Status failure;
  for (int i = 0; i < 1000 && failure.ok(); ++i) {
    absl::StatusOr<VersionedDtab> w =
        i % 2 == 0 || acked.empty()
            ? store->Put(NsFor(i), BigText(i), {"writer", ""})
            : store->Update(acked.back().ns, BigText(i), acked.back().version, {"writer", ""});
    if (w.ok()) {
      acked.push_back(*w);
    } else {
      failure = w.status();
    }
  }
  ASSERT_FALSE(failure.ok()) << "the cap never filled";
  EXPECT_THAT(failure, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("full")));
  ASSERT_GE(acked.size(), 3u) << "the cap should leave room for a few writes";

  // Reads work and nothing acknowledged is damaged; the failed write left
  // no trace.
  ExpectIntact(*store, acked);

  // The store stays consistent under more failing writes.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(store->Put("full-new", BigText(1000 + i), {}),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  ExpectIntact(*store, acked);
  store.reset();

  // Reopening with the same cap works, for reading.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDtabStore> capped, Open(kMaxPages));
    ExpectIntact(*capped, acked);
    EXPECT_THAT(capped->Put("full-new", BigText(2000), {}),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }

  // With room again, writes succeed and continue the counters.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDtabStore> roomy, Open(10'000));
  ExpectIntact(*roomy, acked);
  const VersionedDtab& last = acked.back();
  ASSERT_OK_AND_ASSIGN(VersionedDtab next,
                       roomy->Update(last.ns, BigText(3000), last.version, {"writer", ""}));
  EXPECT_EQ(next.version, last.version + 1);
  EXPECT_EQ(next.revision, last.revision + 1);
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(VersionedDtab v, roomy->Put("full-new", BigText(4000 + i), {}));
    EXPECT_EQ(v.version, i + 1);
  }
  EXPECT_THAT(roomy->IntegrityCheck(), IsOkAndHolds(std::string("ok")));
}

TEST_F(DiskFullTest, OpenWithCapTooSmallForTheSchemaReturnsResourceExhausted) {
  EXPECT_THAT(Open(2), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("full")));
  // Nothing half-migrated is left behind: a roomy open starts cleanly.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDtabStore> store, Open(std::nullopt));
  ASSERT_OK_AND_ASSIGN(VersionedDtab v, store->Create("ns", "/a=>/b", {}));
  EXPECT_EQ(v.version, 1);
  EXPECT_EQ(v.revision, 1);
  EXPECT_THAT(store->IntegrityCheck(), IsOkAndHolds(std::string("ok")));
}

}  // namespace
}  // namespace dtabd::storage
