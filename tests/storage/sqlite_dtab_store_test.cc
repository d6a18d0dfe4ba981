// The DtabStore contract (storage/dtab_store.h) on SqliteDtabStore: every
// operation and error code, validation, audit fields, concurrent
// compare-and-set writers, and reopening a store on the same file.
#include "storage/sqlite_dtab_store.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "dtab/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/dtab_store.h"
#include "tests/storage/storage_test_util.h"

namespace dtabd::storage {
namespace {

using ::dtabd::storage::testing::FakeClock;
using ::dtabd::storage::testing::IsOk;
using ::dtabd::storage::testing::IsOkAndHolds;
using ::dtabd::storage::testing::StatusIs;
using ::dtabd::storage::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

// A valid dtab whose text names `tag`, so versions are distinguishable.
std::string Text(absl::string_view tag) { return absl::StrCat("/svc=>/srv/", tag); }

const WriteMeta kMeta{"alice", "change"};

class SqliteDtabStoreTest : public ::testing::Test {
 protected:
  SqliteDtabStore::Options Options() {
    SqliteDtabStore::Options o;
    o.path = dir_.File("dtabs.db");
    o.clock = [this] { return clock_.Now(); };
    return o;
  }

  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> s = SqliteDtabStore::Open(Options());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  // Closes the store and opens it again on the same file.
  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> s = SqliteDtabStore::Open(Options());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  // Every version of `ns`, newest first, read page by page.
  std::vector<VersionedDtab> FullHistory(absl::string_view ns, int page_size = 1000) {
    std::vector<VersionedDtab> out;
    int64_t before = 0;
    do {
      absl::StatusOr<HistoryPage> page = store_->History(ns, page_size, before);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) {
        break;
      }
      out.insert(out.end(), page->versions.begin(), page->versions.end());
      before = page->next_before_version;
    } while (before != 0);
    return out;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteDtabStore> store_;
};

// --- List ---

TEST_F(SqliteDtabStoreTest, ListOfEmptyStoreIsEmpty) {
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store_->List());
  EXPECT_THAT(list, IsEmpty());
}

TEST_F(SqliteDtabStoreTest, ListReturnsLiveNamespacesSortedByNameWithCurrentVersion) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab zeta, store_->Create("zeta", Text("z"), kMeta));
  ASSERT_OK_AND_ASSIGN(VersionedDtab alpha, store_->Create("alpha", Text("a"), kMeta));
  ASSERT_OK_AND_ASSIGN(VersionedDtab upper, store_->Create("Beta", Text("b"), kMeta));
  ASSERT_OK_AND_ASSIGN(VersionedDtab alpha2, store_->Update("alpha", Text("a2"), 1, kMeta));
  ASSERT_OK_AND_ASSIGN(VersionedDtab m, store_->Create("m_1-x", Text("m"), kMeta));

  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store_->List());
  // Byte order: upper case sorts before lower case.
  EXPECT_THAT(list, ElementsAre(NamespaceSummary{"Beta", 1, upper.revision},
                                NamespaceSummary{"alpha", 2, alpha2.revision},
                                NamespaceSummary{"m_1-x", 1, m.revision},
                                NamespaceSummary{"zeta", 1, zeta.revision}));
  (void)alpha;
}

TEST_F(SqliteDtabStoreTest, ListExcludesTombstonedNamespaces) {
  ASSERT_OK(store_->Create("a", Text("a"), kMeta).status());
  ASSERT_OK(store_->Create("b", Text("b"), kMeta).status());
  ASSERT_OK(store_->Delete("a", kMeta, std::nullopt).status());

  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store_->List());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].ns, "b");
}

TEST_F(SqliteDtabStoreTest, LatestOfAllIncludesTombstonesSortedByName) {
  ASSERT_OK(store_->Create("b", Text("b1"), kMeta).status());
  ASSERT_OK(store_->Update("b", Text("b2"), 1, kMeta).status());
  ASSERT_OK(store_->Create("a", Text("a1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab tomb, store_->Delete("a", kMeta, std::nullopt));

  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> all, store_->LatestOfAll());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], tomb);
  EXPECT_TRUE(all[0].deleted);
  EXPECT_EQ(all[1].ns, "b");
  EXPECT_EQ(all[1].version, 2);
  EXPECT_EQ(all[1].dtab, Text("b2"));
}

// --- Get ---

TEST_F(SqliteDtabStoreTest, GetWithoutVersionReturnsLatestVersion) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab v2, store_->Update("ns", Text("v2"), 1, kMeta));

  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, v2);
  EXPECT_EQ(got.version, 2);
  EXPECT_EQ(got.dtab, Text("v2"));
  EXPECT_FALSE(got.deleted);
}

TEST_F(SqliteDtabStoreTest, GetWithVersionReturnsThatVersion) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab v1, store_->Create("ns", Text("v1"), kMeta));
  ASSERT_OK(store_->Update("ns", Text("v2"), 1, kMeta).status());

  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", 1));
  EXPECT_EQ(got, v1);
  EXPECT_EQ(got.dtab, Text("v1"));
}

TEST_F(SqliteDtabStoreTest, GetOfTombstoneVersionReturnsItWithDeletedSet) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab tomb, store_->Delete("ns", kMeta, std::nullopt));

  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", 2));
  EXPECT_EQ(got, tomb);
  EXPECT_TRUE(got.deleted);
  EXPECT_EQ(got.dtab, "");
}

TEST_F(SqliteDtabStoreTest, GetLatestOfDeletedNamespaceReturnsNotFound) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());

  EXPECT_THAT(store_->Get("ns", std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'ns'")));
}

TEST_F(SqliteDtabStoreTest, GetOfUnknownNamespaceReturnsNotFound) {
  EXPECT_THAT(store_->Get("nope", std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(store_->Get("nope", 1), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SqliteDtabStoreTest, GetOfMissingVersionReturnsNotFound) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  EXPECT_THAT(store_->Get("ns", 2), StatusIs(absl::StatusCode::kNotFound, HasSubstr("2")));
  EXPECT_THAT(store_->Get("ns", 0), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Get("ns", -1), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SqliteDtabStoreTest, GetWithInvalidNamespaceReturnsInvalidArgument) {
  EXPECT_THAT(store_->Get("a/b", std::nullopt), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Get("", 1), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Create ---

TEST_F(SqliteDtabStoreTest, CreateReturnsVersionOneWithTextAndRevision) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab v, store_->Create("ns", Text("v1"), kMeta));
  EXPECT_EQ(v.ns, "ns");
  EXPECT_EQ(v.version, 1);
  EXPECT_EQ(v.revision, 1);
  EXPECT_EQ(v.dtab, Text("v1"));
  EXPECT_FALSE(v.deleted);
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, v);
}

TEST_F(SqliteDtabStoreTest, CreateStoresTextExactlyAsWritten) {
  const std::string text = "  # comment\n/a => /b ;\n/c=>/d|/e  ";
  ASSERT_OK(store_->Create("ns", text, kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got.dtab, text);
}

TEST_F(SqliteDtabStoreTest, CreateAcceptsEmptyDtab) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab v, store_->Create("ns", "", kMeta));
  EXPECT_EQ(v.dtab, "");
  EXPECT_FALSE(v.deleted);
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_FALSE(got.deleted);
}

TEST_F(SqliteDtabStoreTest, CreateOfExistingNamespaceReturnsAlreadyExists) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->CurrentRevision());

  EXPECT_THAT(store_->Create("ns", Text("again"), kMeta),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'ns'")));
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got.version, 1);
  EXPECT_EQ(got.dtab, Text("v1"));
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(rev));
}

TEST_F(SqliteDtabStoreTest, CreateAfterDeleteContinuesVersionCount) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab tomb, store_->Delete("ns", kMeta, std::nullopt));
  EXPECT_EQ(tomb.version, 2);

  ASSERT_OK_AND_ASSIGN(VersionedDtab v3, store_->Create("ns", Text("v3"), kMeta));
  EXPECT_EQ(v3.version, 3);
  EXPECT_FALSE(v3.deleted);
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, v3);

  std::vector<VersionedDtab> history = FullHistory("ns");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].version, 3);
  EXPECT_TRUE(history[1].deleted);
  EXPECT_EQ(history[2].dtab, Text("v1"));
}

// --- Update (compare-and-set) ---

TEST_F(SqliteDtabStoreTest, UpdateWithCurrentVersionWritesNextVersion) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab v1, store_->Create("ns", Text("v1"), kMeta));
  ASSERT_OK_AND_ASSIGN(VersionedDtab v2, store_->Update("ns", Text("v2"), 1, kMeta));
  EXPECT_EQ(v2.version, 2);
  EXPECT_GT(v2.revision, v1.revision);
  EXPECT_EQ(v2.dtab, Text("v2"));
  ASSERT_OK_AND_ASSIGN(VersionedDtab v3, store_->Update("ns", Text("v3"), 2, kMeta));
  EXPECT_EQ(v3.version, 3);
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, v3);
}

TEST_F(SqliteDtabStoreTest, CompareAndSetWithStaleVersionReturnsAborted) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Update("ns", Text("v2"), 1, kMeta).status());
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->CurrentRevision());

  absl::StatusOr<VersionedDtab> stale = store_->Update("ns", Text("lost"), 1, kMeta);
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted,
                              HasSubstr("current version is 2")));
  EXPECT_THAT(CurrentVersionFromStatus(stale.status()), Optional(int64_t{2}));

  // An expected version from the future is stale too.
  absl::StatusOr<VersionedDtab> future = store_->Update("ns", Text("lost"), 7, kMeta);
  EXPECT_THAT(future, StatusIs(absl::StatusCode::kAborted, HasSubstr("2")));
  EXPECT_THAT(CurrentVersionFromStatus(future.status()), Optional(int64_t{2}));

  // Nothing was written.
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got.version, 2);
  EXPECT_EQ(got.dtab, Text("v2"));
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(rev));
}

TEST_F(SqliteDtabStoreTest, UpdateOfUnknownNamespaceReturnsNotFound) {
  EXPECT_THAT(store_->Update("nope", Text("x"), 0, kMeta),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(store_->Update("nope", Text("x"), 1, kMeta), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->List(), IsOkAndHolds(IsEmpty()));
}

TEST_F(SqliteDtabStoreTest, UpdateOfDeletedNamespaceReturnsNotFound) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
  EXPECT_THAT(store_->Update("ns", Text("x"), 2, kMeta), StatusIs(absl::StatusCode::kNotFound));
}

TEST(CurrentVersionFromStatusTest, IsEmptyForStatusWithoutPayload) {
  EXPECT_EQ(CurrentVersionFromStatus(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(CurrentVersionFromStatus(absl::AbortedError("x")), std::nullopt);
  absl::Status garbage = absl::AbortedError("x");
  garbage.SetPayload(kCurrentVersionPayload, absl::Cord("not a number"));
  EXPECT_EQ(CurrentVersionFromStatus(garbage), std::nullopt);
}

// --- Put ---

TEST_F(SqliteDtabStoreTest, PutCreatesMissingNamespaceAtVersionOne) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab v, store_->Put("ns", Text("v1"), kMeta));
  EXPECT_EQ(v.version, 1);
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, v);
}

TEST_F(SqliteDtabStoreTest, PutReplacesExistingNamespaceWithoutVersionCheck) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Put("ns", Text("v2"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab v3, store_->Put("ns", Text("v3"), kMeta));
  EXPECT_EQ(v3.version, 3);
  EXPECT_EQ(v3.dtab, Text("v3"));
  EXPECT_EQ(FullHistory("ns").size(), 3u);
}

TEST_F(SqliteDtabStoreTest, PutOfDeletedNamespaceRecreatesItWithNextVersion) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab v3, store_->Put("ns", Text("v3"), kMeta));
  EXPECT_EQ(v3.version, 3);
  EXPECT_FALSE(v3.deleted);
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store_->List());
  EXPECT_THAT(list, ElementsAre(NamespaceSummary{"ns", 3, v3.revision}));
}

// --- Delete ---

TEST_F(SqliteDtabStoreTest, DeleteWritesTombstoneThatHistoryKeeps) {
  clock_.Advance(absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(VersionedDtab v1, store_->Create("ns", Text("v1"), kMeta));
  clock_.Advance(absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(VersionedDtab tomb,
                       store_->Delete("ns", WriteMeta{"bob", "retire"}, std::nullopt));
  EXPECT_EQ(tomb.ns, "ns");
  EXPECT_EQ(tomb.version, 2);
  EXPECT_GT(tomb.revision, v1.revision);
  EXPECT_TRUE(tomb.deleted);
  EXPECT_EQ(tomb.dtab, "");
  EXPECT_EQ(tomb.author, "bob");
  EXPECT_EQ(tomb.comment, "retire");
  EXPECT_EQ(tomb.created_at, clock_.Now());

  EXPECT_THAT(FullHistory("ns"), ElementsAre(tomb, v1));
  // The old version stays readable.
  EXPECT_THAT(store_->Get("ns", 1), IsOkAndHolds(v1));
}

TEST_F(SqliteDtabStoreTest, DeleteOfUnknownNamespaceReturnsNotFound) {
  EXPECT_THAT(store_->Delete("nope", kMeta, std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(store_->History("nope", 10, 0), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SqliteDtabStoreTest, DeleteOfDeletedNamespaceReturnsNotFound) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
  EXPECT_THAT(store_->Delete("ns", kMeta, std::nullopt), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Delete("ns", kMeta, 2), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(FullHistory("ns").size(), 2u);
}

TEST_F(SqliteDtabStoreTest, DeleteWithStaleExpectedVersionReturnsAborted) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Update("ns", Text("v2"), 1, kMeta).status());

  absl::StatusOr<VersionedDtab> stale = store_->Delete("ns", kMeta, 1);
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted, HasSubstr("current version is 2")));
  EXPECT_THAT(CurrentVersionFromStatus(stale.status()), Optional(int64_t{2}));
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got.version, 2);
}

TEST_F(SqliteDtabStoreTest, DeleteWithCurrentExpectedVersionWritesTombstone) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab tomb, store_->Delete("ns", kMeta, 1));
  EXPECT_EQ(tomb.version, 2);
  EXPECT_TRUE(tomb.deleted);
  EXPECT_THAT(store_->Get("ns", std::nullopt), StatusIs(absl::StatusCode::kNotFound));
}

// --- Rollback ---

TEST_F(SqliteDtabStoreTest, RollbackWritesNewVersionWithOldText) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Update("ns", Text("v2"), 1, kMeta).status());
  ASSERT_OK_AND_ASSIGN(VersionedDtab v3, store_->Update("ns", Text("v3"), 2, kMeta));

  ASSERT_OK_AND_ASSIGN(VersionedDtab rb,
                       store_->Rollback("ns", 1, WriteMeta{"carol", "bad deploy"}, std::nullopt));
  EXPECT_EQ(rb.version, 4);
  EXPECT_GT(rb.revision, v3.revision);
  EXPECT_EQ(rb.dtab, Text("v1"));
  EXPECT_FALSE(rb.deleted);
  EXPECT_EQ(rb.author, "carol");
  EXPECT_EQ(rb.comment, "bad deploy");

  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, rb);
  // Versions 1..3 are untouched.
  EXPECT_THAT(store_->Get("ns", 3), IsOkAndHolds(v3));
  EXPECT_EQ(FullHistory("ns").size(), 4u);
}

TEST_F(SqliteDtabStoreTest, RollbackToTombstoneReturnsFailedPrecondition) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
  ASSERT_OK(store_->Create("ns", Text("v3"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->CurrentRevision());

  EXPECT_THAT(store_->Rollback("ns", 2, kMeta, std::nullopt),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("version 2")));
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(rev));
}

TEST_F(SqliteDtabStoreTest, RollbackToMissingVersionReturnsNotFound) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  EXPECT_THAT(store_->Rollback("ns", 5, kMeta, std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("5")));
  EXPECT_THAT(store_->Rollback("ns", 0, kMeta, std::nullopt),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(FullHistory("ns").size(), 1u);
}

TEST_F(SqliteDtabStoreTest, RollbackOfUnknownNamespaceReturnsNotFound) {
  EXPECT_THAT(store_->Rollback("nope", 1, kMeta, std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
}

TEST_F(SqliteDtabStoreTest, RollbackRestoresDeletedNamespace) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());

  ASSERT_OK_AND_ASSIGN(VersionedDtab rb, store_->Rollback("ns", 1, kMeta, std::nullopt));
  EXPECT_EQ(rb.version, 3);
  EXPECT_EQ(rb.dtab, Text("v1"));
  EXPECT_FALSE(rb.deleted);
  ASSERT_OK_AND_ASSIGN(VersionedDtab got, store_->Get("ns", std::nullopt));
  EXPECT_EQ(got, rb);
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store_->List());
  EXPECT_THAT(list, ElementsAre(NamespaceSummary{"ns", 3, rb.revision}));
}

TEST_F(SqliteDtabStoreTest, RollbackWithStaleExpectedVersionReturnsAborted) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Update("ns", Text("v2"), 1, kMeta).status());

  absl::StatusOr<VersionedDtab> stale = store_->Rollback("ns", 1, kMeta, 1);
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted, HasSubstr("current version is 2")));
  EXPECT_THAT(CurrentVersionFromStatus(stale.status()), Optional(int64_t{2}));

  ASSERT_OK_AND_ASSIGN(VersionedDtab rb, store_->Rollback("ns", 1, kMeta, 2));
  EXPECT_EQ(rb.version, 3);
  EXPECT_EQ(rb.dtab, Text("v1"));
}

// --- History ---

TEST_F(SqliteDtabStoreTest, HistoryPagesNewestFirstWithNextBeforeVersion) {
  std::vector<VersionedDtab> written;
  for (int i = 1; i <= 7; ++i) {
    ASSERT_OK_AND_ASSIGN(VersionedDtab v, store_->Put("ns", Text(absl::StrCat("v", i)), kMeta));
    written.push_back(v);
  }
  ASSERT_OK(store_->Put("other", Text("o"), kMeta).status());

  ASSERT_OK_AND_ASSIGN(HistoryPage p1, store_->History("ns", 3, 0));
  EXPECT_THAT(p1.versions, ElementsAre(written[6], written[5], written[4]));
  EXPECT_EQ(p1.next_before_version, 5);

  ASSERT_OK_AND_ASSIGN(HistoryPage p2, store_->History("ns", 3, p1.next_before_version));
  EXPECT_THAT(p2.versions, ElementsAre(written[3], written[2], written[1]));
  EXPECT_EQ(p2.next_before_version, 2);

  ASSERT_OK_AND_ASSIGN(HistoryPage p3, store_->History("ns", 3, p2.next_before_version));
  EXPECT_THAT(p3.versions, ElementsAre(written[0]));
  EXPECT_EQ(p3.next_before_version, 0);
}

TEST_F(SqliteDtabStoreTest, HistoryLastFullPageHasNoNextPage) {
  for (int i = 1; i <= 4; ++i) {
    ASSERT_OK(store_->Put("ns", Text(absl::StrCat("v", i)), kMeta).status());
  }
  ASSERT_OK_AND_ASSIGN(HistoryPage p1, store_->History("ns", 2, 0));
  ASSERT_EQ(p1.versions.size(), 2u);
  EXPECT_EQ(p1.next_before_version, 3);
  ASSERT_OK_AND_ASSIGN(HistoryPage p2, store_->History("ns", 2, 3));
  ASSERT_EQ(p2.versions.size(), 2u);
  EXPECT_EQ(p2.versions[0].version, 2);
  EXPECT_EQ(p2.versions[1].version, 1);
  EXPECT_EQ(p2.next_before_version, 0);

  ASSERT_OK_AND_ASSIGN(HistoryPage all, store_->History("ns", 4, 0));
  EXPECT_EQ(all.versions.size(), 4u);
  EXPECT_EQ(all.next_before_version, 0);
}

TEST_F(SqliteDtabStoreTest, HistoryIncludesTombstonesAndRollbacks) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
  ASSERT_OK(store_->Rollback("ns", 1, kMeta, std::nullopt).status());

  std::vector<VersionedDtab> h = FullHistory("ns", 1);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].version, 3);
  EXPECT_FALSE(h[0].deleted);
  EXPECT_EQ(h[0].dtab, Text("v1"));
  EXPECT_EQ(h[1].version, 2);
  EXPECT_TRUE(h[1].deleted);
  EXPECT_EQ(h[2].version, 1);
}

TEST_F(SqliteDtabStoreTest, HistoryOfDeletedNamespaceStillReturnsVersions) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
  ASSERT_OK_AND_ASSIGN(HistoryPage p, store_->History("ns", 10, 0));
  EXPECT_EQ(p.versions.size(), 2u);
}

TEST_F(SqliteDtabStoreTest, HistoryOfUnknownNamespaceReturnsNotFound) {
  ASSERT_OK(store_->Create("other", Text("v1"), kMeta).status());
  EXPECT_THAT(store_->History("nope", 10, 0),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(store_->History("nope", 10, 5), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SqliteDtabStoreTest, HistoryBeforeOldestVersionIsEmptyPage) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(HistoryPage p, store_->History("ns", 10, 1));
  EXPECT_THAT(p.versions, IsEmpty());
  EXPECT_EQ(p.next_before_version, 0);
}

TEST_F(SqliteDtabStoreTest, HistoryWithInvalidArgumentsReturnsInvalidArgument) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  EXPECT_THAT(store_->History("ns", 0, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->History("ns", -1, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->History("bad/name", 10, 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- ChangesSince and CurrentRevision ---

TEST_F(SqliteDtabStoreTest, ChangesSinceReturnsCommitsAfterRevisionInRevisionOrder) {
  std::vector<VersionedDtab> written;
  auto keep = [&](absl::StatusOr<VersionedDtab> v) {
    ASSERT_TRUE(v.ok()) << v.status();
    written.push_back(*v);
  };
  keep(store_->Create("b", Text("b1"), kMeta));
  keep(store_->Create("a", Text("a1"), kMeta));
  keep(store_->Update("b", Text("b2"), 1, kMeta));
  keep(store_->Delete("a", kMeta, std::nullopt));
  keep(store_->Put("c", Text("c1"), kMeta));
  keep(store_->Rollback("b", 1, kMeta, std::nullopt));
  ASSERT_EQ(written.size(), 6u);
  for (size_t i = 1; i < written.size(); ++i) {
    EXPECT_GT(written[i].revision, written[i - 1].revision);
  }

  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> all, store_->ChangesSince(0, 100));
  EXPECT_EQ(all, written);

  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> tail,
                       store_->ChangesSince(written[2].revision, 100));
  EXPECT_THAT(tail, ElementsAre(written[3], written[4], written[5]));
  EXPECT_TRUE(tail[0].deleted);

  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> limited,
                       store_->ChangesSince(written[0].revision, 2));
  EXPECT_THAT(limited, ElementsAre(written[1], written[2]));

  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> none,
                       store_->ChangesSince(written.back().revision, 100));
  EXPECT_THAT(none, IsEmpty());
}

TEST_F(SqliteDtabStoreTest, ChangesSinceWithNonPositiveLimitReturnsInvalidArgument) {
  EXPECT_THAT(store_->ChangesSince(0, 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SqliteDtabStoreTest, CurrentRevisionIsZeroForEmptyStoreAndAdvancesPerCommit) {
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(int64_t{0}));
  ASSERT_OK_AND_ASSIGN(VersionedDtab a, store_->Create("a", Text("a"), kMeta));
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(a.revision));
  ASSERT_OK_AND_ASSIGN(VersionedDtab b, store_->Create("b", Text("b"), kMeta));
  EXPECT_GT(b.revision, a.revision);
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(b.revision));
}

TEST_F(SqliteDtabStoreTest, FailedWritesDoNotAdvanceRevision) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->CurrentRevision());
  EXPECT_FALSE(store_->Create("ns", Text("x"), kMeta).ok());
  EXPECT_FALSE(store_->Update("ns", Text("x"), 9, kMeta).ok());
  EXPECT_FALSE(store_->Update("ns", "/bad", 1, kMeta).ok());
  EXPECT_FALSE(store_->Delete("nope", kMeta, std::nullopt).ok());
  EXPECT_FALSE(store_->Rollback("ns", 9, kMeta, std::nullopt).ok());
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(rev));
  ASSERT_OK_AND_ASSIGN(VersionedDtab v2, store_->Update("ns", Text("v2"), 1, kMeta));
  EXPECT_EQ(v2.version, 2);
}

// --- Validation ---

TEST(ValidateNamespaceTest, AcceptsLettersDigitsUnderscoreAndDash) {
  EXPECT_OK(ValidateNamespace("a"));
  EXPECT_OK(ValidateNamespace("Az09_-"));
  EXPECT_OK(ValidateNamespace("-"));
  EXPECT_OK(ValidateNamespace(std::string(128, 'x')));
}

TEST(ValidateNamespaceTest, RejectsEmptyTooLongAndOtherCharacters) {
  EXPECT_THAT(ValidateNamespace(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateNamespace(std::string(129, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("128")));
  for (const std::string& bad : std::vector<std::string>{
           "a.b", "a/b", "a b", "a:b", "a\tb", "caf\xc3\xa9", "a*", std::string("a\0b", 3)}) {
    EXPECT_THAT(ValidateNamespace(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << "namespace: " << bad;
  }
}

TEST_F(SqliteDtabStoreTest, NamespaceOf128CharactersIsAccepted) {
  const std::string ns(128, 'n');
  ASSERT_OK_AND_ASSIGN(VersionedDtab v, store_->Create(ns, Text("v1"), kMeta));
  EXPECT_EQ(v.ns, ns);
  EXPECT_THAT(store_->Get(ns, std::nullopt), IsOk());
}

TEST_F(SqliteDtabStoreTest, NamespaceOf129CharactersIsRejectedByEveryOperation) {
  const std::string ns(129, 'n');
  const auto code = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(store_->Create(ns, Text("v1"), kMeta), StatusIs(code));
  EXPECT_THAT(store_->Put(ns, Text("v1"), kMeta), StatusIs(code));
  EXPECT_THAT(store_->Update(ns, Text("v1"), 1, kMeta), StatusIs(code));
  EXPECT_THAT(store_->Delete(ns, kMeta, std::nullopt), StatusIs(code));
  EXPECT_THAT(store_->Rollback(ns, 1, kMeta, std::nullopt), StatusIs(code));
  EXPECT_THAT(store_->Get(ns, std::nullopt), StatusIs(code));
  EXPECT_THAT(store_->History(ns, 10, 0), StatusIs(code));
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(int64_t{0}));
}

TEST_F(SqliteDtabStoreTest, NamespaceWithInvalidCharactersIsRejected) {
  for (const std::string& bad :
       std::vector<std::string>{"", "a.b", "a/b", "with space", "caf\xc3\xa9"}) {
    EXPECT_THAT(store_->Create(bad, Text("v1"), kMeta),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "namespace: " << bad;
  }
  EXPECT_THAT(store_->List(), IsOkAndHolds(IsEmpty()));
}

TEST_F(SqliteDtabStoreTest, InvalidDtabReturnsInvalidArgumentWithParserMessage) {
  const std::string bad = "/a=>/b;/c=/d";
  const absl::Status parse = dtab::ParseDtab(bad).status();
  ASSERT_EQ(parse.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_THAT(std::string(parse.message()), HasSubstr("[/]"));

  absl::StatusOr<VersionedDtab> created = store_->Create("ns", bad, kMeta);
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(parse.message())));
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[/]")));
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'ns'")));
  EXPECT_THAT(store_->Put("ns", bad, kMeta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(parse.message())));

  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  EXPECT_THAT(store_->Update("ns", bad, 1, kMeta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(parse.message())));
  EXPECT_THAT(store_->Update("ns", "/unterminated=>", 1, kMeta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[]")));

  // The invalid text never reached storage.
  EXPECT_EQ(FullHistory("ns").size(), 1u);
  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(int64_t{1}));
}

class SqliteDtabStoreLimitsTest : public SqliteDtabStoreTest {
 protected:
  void SetUp() override {
    SqliteDtabStore::Options o = Options();
    o.limits.max_dtab_bytes = 32;
    o.limits.max_dentries = 2;
    o.limits.max_comment_bytes = 8;
    o.limits.max_author_bytes = 5;  // "alice" fits
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> s = SqliteDtabStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }
};

TEST_F(SqliteDtabStoreLimitsTest, DtabOverByteLimitReturnsInvalidArgument) {
  const std::string at_limit = "/a=>/" + std::string(27, 'b');  // 32 bytes
  ASSERT_EQ(at_limit.size(), 32u);
  EXPECT_OK(store_->Create("ns", at_limit, kMeta).status());
  const std::string over = at_limit + "c";
  EXPECT_THAT(store_->Put("ns", over, kMeta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("33 bytes")));
  EXPECT_THAT(store_->Update("ns", over, 1, kMeta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit is 32")));
  EXPECT_EQ(FullHistory("ns").size(), 1u);
}

TEST_F(SqliteDtabStoreLimitsTest, DtabOverDentryLimitReturnsInvalidArgument) {
  EXPECT_OK(store_->Create("ns", "/a=>/b;/c=>/d", kMeta).status());
  EXPECT_THAT(store_->Put("ns", "/a=>/b;/c=>/d;/e=>/f", kMeta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 dentries")));
}

TEST_F(SqliteDtabStoreLimitsTest, CommentOverLimitReturnsInvalidArgument) {
  EXPECT_OK(store_->Create("ns", "/a=>/b", WriteMeta{"al", std::string(8, 'c')}).status());
  const WriteMeta over{"al", std::string(9, 'c')};
  EXPECT_THAT(store_->Put("ns", "/a=>/c", over),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("comment")));
  EXPECT_THAT(store_->Delete("ns", over, std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("comment")));
  EXPECT_THAT(store_->Rollback("ns", 1, over, std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("comment")));
  EXPECT_EQ(FullHistory("ns").size(), 1u);
}

TEST_F(SqliteDtabStoreLimitsTest, AuthorOverLimitReturnsInvalidArgument) {
  EXPECT_OK(store_->Create("ns", "/a=>/b", WriteMeta{"abcde", ""}).status());
  EXPECT_THAT(store_->Update("ns", "/a=>/c", 1, WriteMeta{"abcdef", ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("author")));
  EXPECT_EQ(FullHistory("ns").size(), 1u);
}

TEST(StoreLimitsTest, DefaultsAreSane) {
  StoreLimits l;
  EXPECT_EQ(l.max_dtab_bytes, 1u << 20);
  EXPECT_GT(l.max_dentries, 1000u);
  EXPECT_GT(l.max_comment_bytes, 0u);
  EXPECT_GT(l.max_author_bytes, 0u);
}

// --- Audit fields ---

TEST_F(SqliteDtabStoreTest, EveryVersionRecordsAuthorCommentAndClockTime) {
  const absl::Time t1 = clock_.Now();
  ASSERT_OK_AND_ASSIGN(VersionedDtab v1,
                       store_->Create("ns", Text("v1"), WriteMeta{"alice", "first"}));
  clock_.Advance(absl::Minutes(5));
  const absl::Time t2 = clock_.Now();
  ASSERT_OK_AND_ASSIGN(VersionedDtab v2,
                       store_->Update("ns", Text("v2"), 1, WriteMeta{"bob", "second"}));
  clock_.Advance(absl::Microseconds(1));
  const absl::Time t3 = clock_.Now();
  ASSERT_OK_AND_ASSIGN(VersionedDtab v3,
                       store_->Put("ns", Text("v3"), WriteMeta{"carol", ""}));

  EXPECT_EQ(v1.author, "alice");
  EXPECT_EQ(v1.comment, "first");
  EXPECT_EQ(v1.created_at, t1);
  EXPECT_EQ(v2.author, "bob");
  EXPECT_EQ(v2.comment, "second");
  EXPECT_EQ(v2.created_at, t2);
  EXPECT_EQ(v3.author, "carol");
  EXPECT_EQ(v3.comment, "");
  EXPECT_EQ(v3.created_at, t3);

  // Reads return exactly what the writes returned.
  EXPECT_THAT(FullHistory("ns"), ElementsAre(v3, v2, v1));
  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> changes, store_->ChangesSince(0, 10));
  EXPECT_THAT(changes, ElementsAre(v1, v2, v3));
}

TEST_F(SqliteDtabStoreTest, TombstonesAndRollbacksRecordAuditFields) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(VersionedDtab tomb,
                       store_->Delete("ns", WriteMeta{"dave", "gone"}, std::nullopt));
  EXPECT_EQ(tomb.author, "dave");
  EXPECT_EQ(tomb.comment, "gone");
  EXPECT_EQ(tomb.created_at, clock_.Now());
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(VersionedDtab rb,
                       store_->Rollback("ns", 1, WriteMeta{"erin", "back"}, std::nullopt));
  EXPECT_EQ(rb.author, "erin");
  EXPECT_EQ(rb.comment, "back");
  EXPECT_EQ(rb.created_at, clock_.Now());
  EXPECT_THAT(store_->Get("ns", 2), IsOkAndHolds(tomb));
  EXPECT_THAT(store_->Get("ns", 3), IsOkAndHolds(rb));
}

// --- ":memory:" ---

TEST(SqliteDtabStoreMemoryTest, InMemoryStoreSupportsEveryOperation) {
  FakeClock clock;
  SqliteDtabStore::Options o;
  o.path = ":memory:";
  o.clock = [&clock] { return clock.Now(); };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDtabStore> store, SqliteDtabStore::Open(o));

  ASSERT_OK_AND_ASSIGN(VersionedDtab v1, store->Create("ns", Text("v1"), kMeta));
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.created_at, clock.Now());
  EXPECT_THAT(store->Create("ns", Text("x"), kMeta), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK(store->Update("ns", Text("v2"), 1, kMeta).status());
  absl::StatusOr<VersionedDtab> stale = store->Update("ns", Text("x"), 1, kMeta);
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(CurrentVersionFromStatus(stale.status()), Optional(int64_t{2}));
  ASSERT_OK(store->Put("other", Text("o"), kMeta).status());
  ASSERT_OK(store->Delete("ns", kMeta, 2).status());
  EXPECT_THAT(store->Get("ns", std::nullopt), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store->List());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].ns, "other");
  ASSERT_OK_AND_ASSIGN(VersionedDtab rb, store->Rollback("ns", 2, kMeta, std::nullopt));
  EXPECT_EQ(rb.version, 4);  // 1 create, 2 update, 3 tombstone
  EXPECT_EQ(rb.dtab, Text("v2"));
  EXPECT_THAT(store->Rollback("ns", 3, kMeta, std::nullopt),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(HistoryPage page, store->History("ns", 2, 0));
  EXPECT_EQ(page.versions.size(), 2u);
  EXPECT_EQ(page.next_before_version, 3);
  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> changes, store->ChangesSince(0, 100));
  EXPECT_EQ(changes.size(), 5u);
  EXPECT_THAT(store->CurrentRevision(), IsOkAndHolds(changes.back().revision));
  EXPECT_THAT(store->IntegrityCheck(), IsOkAndHolds(std::string("ok")));
}

// --- Open ---

TEST(SqliteDtabStoreOpenTest, OpenInMissingDirectoryReturnsFailedPrecondition) {
  TempDir dir;
  SqliteDtabStore::Options o;
  o.path = dir.File("no/such/dir/dtabs.db");
  EXPECT_THAT(SqliteDtabStore::Open(o), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SqliteDtabStoreOpenTest, OpenOfFileThatIsNotADatabaseReturnsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream f(path, std::ios::binary);
    f << std::string(8192, 'g');
  }
  SqliteDtabStore::Options o;
  o.path = path;
  EXPECT_THAT(SqliteDtabStore::Open(o), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(SqliteDtabStoreTest, IntegrityCheckOfHealthyStoreIsOk) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  EXPECT_THAT(store_->IntegrityCheck(), IsOkAndHolds(std::string("ok")));
}

// --- Reopen ---

TEST_F(SqliteDtabStoreTest, ReopenKeepsHistoryAndContinuesVersionsAndRevisions) {
  ASSERT_OK(store_->Create("a", Text("a1"), kMeta).status());
  ASSERT_OK(store_->Create("b", Text("b1"), kMeta).status());
  ASSERT_OK(store_->Update("a", Text("a2"), 1, kMeta).status());
  ASSERT_OK(store_->Delete("b", kMeta, std::nullopt).status());
  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> before, store_->ChangesSince(0, 100));
  const std::vector<VersionedDtab> history_a = FullHistory("a");
  const std::vector<VersionedDtab> history_b = FullHistory("b");
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->CurrentRevision());
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceSummary> list, store_->List());

  Reopen();
  ASSERT_NE(store_, nullptr);

  EXPECT_THAT(store_->CurrentRevision(), IsOkAndHolds(rev));
  EXPECT_THAT(store_->ChangesSince(0, 100), IsOkAndHolds(before));
  EXPECT_EQ(FullHistory("a"), history_a);
  EXPECT_EQ(FullHistory("b"), history_b);
  EXPECT_THAT(store_->List(), IsOkAndHolds(list));

  // Stale CAS still detected against the persisted version.
  EXPECT_THAT(store_->Update("a", Text("x"), 1, kMeta), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(VersionedDtab a3, store_->Update("a", Text("a3"), 2, kMeta));
  EXPECT_EQ(a3.version, 3);
  EXPECT_EQ(a3.revision, rev + 1);
  // "b" was deleted at version 2: re-creating it after the restart is version 3.
  ASSERT_OK_AND_ASSIGN(VersionedDtab b3, store_->Create("b", Text("b3"), kMeta));
  EXPECT_EQ(b3.version, 3);
  EXPECT_GT(b3.revision, a3.revision);
}

TEST_F(SqliteDtabStoreTest, RepeatedReopensNeverReuseVersionsOrRevisions) {
  for (int round = 0; round < 5; ++round) {
    ASSERT_OK(store_->Put("ns", Text(absl::StrCat("r", round, "a")), kMeta).status());
    ASSERT_OK(store_->Put("ns", Text(absl::StrCat("r", round, "b")), kMeta).status());
    if (round % 2 == 1) {
      ASSERT_OK(store_->Delete("ns", kMeta, std::nullopt).status());
    }
    Reopen();
    ASSERT_NE(store_, nullptr);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> all, store_->ChangesSince(0, 1000));
  ASSERT_EQ(all.size(), 12u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int64_t>(i) + 1);
    if (i > 0) {
      EXPECT_GT(all[i].revision, all[i - 1].revision);
    }
  }
}

// --- Concurrency ---

class SqliteDtabStoreConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    SqliteDtabStore::Options o;
    o.path = dir_.File("dtabs.db");
    // NORMAL keeps the many commits fast; the locking under test is the same.
    o.synchronous_full = false;
    absl::StatusOr<std::unique_ptr<SqliteDtabStore>> s = SqliteDtabStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  static constexpr int kThreads = 8;
  TempDir dir_;
  std::unique_ptr<SqliteDtabStore> store_;
};

TEST_F(SqliteDtabStoreConcurrencyTest, SameExpectedVersionHasExactlyOneWinner) {
  ASSERT_OK(store_->Create("race", Text("start"), kMeta).status());
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t expected = round + 1;
    std::barrier start(kThreads);
    std::vector<absl::StatusOr<VersionedDtab>> results(kThreads, absl::UnknownError("unset"));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        results[t] = store_->Update("race", Text(absl::StrCat("r", round, "t", t)), expected,
                                    WriteMeta{absl::StrCat("t", t), ""});
      });
    }
    for (std::thread& th : threads) {
      th.join();
    }
    int winners = 0;
    int winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (results[t].ok()) {
        ++winners;
        winner = t;
        EXPECT_EQ(results[t]->version, expected + 1);
      } else {
        EXPECT_THAT(results[t], StatusIs(absl::StatusCode::kAborted)) << "thread " << t;
        EXPECT_THAT(CurrentVersionFromStatus(results[t].status()), Optional(expected + 1));
      }
    }
    ASSERT_EQ(winners, 1) << "round " << round;
    ASSERT_OK_AND_ASSIGN(VersionedDtab latest, store_->Get("race", std::nullopt));
    EXPECT_EQ(latest, *results[winner]);
    EXPECT_EQ(latest.dtab, Text(absl::StrCat("r", round, "t", winner)));
  }
  ASSERT_OK_AND_ASSIGN(HistoryPage page, store_->History("race", 1000, 0));
  EXPECT_EQ(page.versions.size(), static_cast<size_t>(kRounds + 1));
}

TEST_F(SqliteDtabStoreConcurrencyTest, RetryingWritersLoseAndDuplicateNoVersion) {
  ASSERT_OK_AND_ASSIGN(VersionedDtab first, store_->Create("hot", Text("start"), kMeta));
  constexpr int kTargetWins = 240;
  std::atomic<int> wins{0};
  std::vector<std::vector<VersionedDtab>> won(kThreads);
  std::vector<int> unexpected(kThreads, 0);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int attempt = 0; wins.load() < kTargetWins; ++attempt) {
        absl::StatusOr<VersionedDtab> cur = store_->Get("hot", std::nullopt);
        if (!cur.ok()) {
          ++unexpected[t];
          continue;
        }
        absl::StatusOr<VersionedDtab> r =
            store_->Update("hot", Text(absl::StrCat("t", t, "a", attempt)), cur->version,
                           WriteMeta{absl::StrCat("t", t), ""});
        if (r.ok()) {
          won[t].push_back(*r);
          wins.fetch_add(1);
        } else if (r.status().code() != absl::StatusCode::kAborted ||
                   CurrentVersionFromStatus(r.status()).value_or(0) <= cur->version) {
          ++unexpected[t];
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(unexpected[t], 0) << "thread " << t;
  }

  std::vector<VersionedDtab> all_wins;
  for (const auto& w : won) {
    all_wins.insert(all_wins.end(), w.begin(), w.end());
  }
  ASSERT_GE(all_wins.size(), static_cast<size_t>(kTargetWins));
  std::sort(all_wins.begin(), all_wins.end(),
            [](const VersionedDtab& a, const VersionedDtab& b) { return a.version < b.version; });
  // Versions 2..N+1 each won exactly once, in revision order.
  for (size_t i = 0; i < all_wins.size(); ++i) {
    ASSERT_EQ(all_wins[i].version, static_cast<int64_t>(i) + 2);
    if (i > 0) {
      EXPECT_GT(all_wins[i].revision, all_wins[i - 1].revision);
    }
  }

  // The stored history is exactly version 1 plus the acknowledged wins.
  std::vector<VersionedDtab> expected = {first};
  expected.insert(expected.end(), all_wins.begin(), all_wins.end());
  ASSERT_OK_AND_ASSIGN(std::vector<VersionedDtab> changes, store_->ChangesSince(0, 100'000));
  EXPECT_EQ(changes, expected);
  ASSERT_OK_AND_ASSIGN(HistoryPage page, store_->History("hot", 10'000, 0));
  std::reverse(page.versions.begin(), page.versions.end());
  EXPECT_EQ(page.versions, expected);
  EXPECT_THAT(store_->IntegrityCheck(), IsOkAndHolds(std::string("ok")));
}

TEST_F(SqliteDtabStoreConcurrencyTest, ReadersSeeMonotonicVersionsWhileAWriterCommits) {
  ASSERT_OK(store_->Create("ns", Text("v1"), kMeta).status());
  constexpr int kWrites = 150;
  constexpr int kReaders = 4;
  std::atomic<bool> done{false};
  std::vector<int> violations(kReaders, 0);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      int64_t last_version = 0;
      int64_t last_revision = 0;
      while (!done.load()) {
        absl::StatusOr<VersionedDtab> v = store_->Get("ns", std::nullopt);
        absl::StatusOr<int64_t> rev = store_->CurrentRevision();
        if (!v.ok() || !rev.ok() || v->version < last_version || *rev < last_revision ||
            v->dtab != Text(absl::StrCat("v", v->version))) {
          ++violations[r];
          continue;
        }
        last_version = v->version;
        last_revision = *rev;
      }
    });
  }
  for (int i = 2; i <= kWrites; ++i) {
    absl::StatusOr<VersionedDtab> w =
        store_->Update("ns", Text(absl::StrCat("v", i)), i - 1, kMeta);
    if (!w.ok()) {
      ADD_FAILURE() << w.status();
      break;  // still join the readers below
    }
  }
  done.store(true);
  for (std::thread& th : readers) {
    th.join();
  }
  for (int r = 0; r < kReaders; ++r) {
    EXPECT_EQ(violations[r], 0) << "reader " << r;
  }
}

}  // namespace
}  // namespace dtabd::storage
