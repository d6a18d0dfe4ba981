// DtabCache: round trips, atomic replacement (also under SIGKILL), stray
// temporary files, and every kind of corrupt file reported as DataLoss.
#include "discovery/dtab_cache.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace dtabd::discovery {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

MATCHER_P2(StatusIs, code, substr, "") {
  *result_listener << "status " << arg.ToString();
  return arg.code() == code && absl::StrContains(arg.message(), substr);
}

v1::VersionedDtab MakeDtab(const std::string& ns, int64_t version, std::string text = "") {
  v1::VersionedDtab d;
  d.set_namespace_(ns);
  d.set_version(version);
  d.set_dtab(text.empty() ? absl::StrCat("/svc=>/#/io.l5d.fs/v", version) : std::move(text));
  d.set_revision(100 + version);
  d.set_author("alice");
  d.set_comment("test");
  d.mutable_created_at()->set_seconds(1700000000 + version);
  return d;
}

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern =
        (base != nullptr && *base != '\0' ? std::string(base)
                                          : std::filesystem::temp_directory_path().string()) +
        "/dtab-cache-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

class DtabCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    absl::StatusOr<std::unique_ptr<DtabCache>> c = DtabCache::Open(tmp_.path() + "/cache");
    ASSERT_TRUE(c.ok()) << c.status();
    cache_ = *std::move(c);
  }

  TempDir tmp_;
  std::unique_ptr<DtabCache> cache_;
};

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(ValidateNamespaceNameTest, AcceptsDtabdNamesAndRejectsPathsAndEmpty) {
  EXPECT_TRUE(ValidateNamespaceName("default").ok());
  EXPECT_TRUE(ValidateNamespaceName("A-b_9").ok());
  EXPECT_THAT(ValidateNamespaceName(""), StatusIs(absl::StatusCode::kInvalidArgument, "''"));
  EXPECT_THAT(ValidateNamespaceName("../etc"),
              StatusIs(absl::StatusCode::kInvalidArgument, "'../etc'"));
  EXPECT_THAT(ValidateNamespaceName(std::string(129, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, "it has 129"));
}

TEST_F(DtabCacheTest, WriteThenReadReturnsTheSameDtab) {
  const v1::VersionedDtab d = MakeDtab("default", 3);
  ASSERT_TRUE(cache_->Write(d).ok());
  absl::StatusOr<v1::VersionedDtab> got = cache_->Read("default");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, d)) << got->DebugString();
  EXPECT_EQ(Files(cache_->dir()), std::set<std::string>{"default.dtab"});
}

TEST_F(DtabCacheTest, ReadOfAnUncachedNamespaceIsNotFound) {
  EXPECT_THAT(cache_->Read("default").status(), StatusIs(absl::StatusCode::kNotFound, "default"));
}

TEST_F(DtabCacheTest, WriteReplacesTheOlderVersionAndLeavesNoTemporaryFile) {
  ASSERT_TRUE(cache_->Write(MakeDtab("default", 1)).ok());
  ASSERT_TRUE(cache_->Write(MakeDtab("default", 2)).ok());
  ASSERT_TRUE(cache_->Write(MakeDtab("other", 5)).ok());
  EXPECT_EQ(cache_->Read("default")->version(), 2);
  EXPECT_EQ(cache_->Read("other")->version(), 5);
  EXPECT_EQ(Files(cache_->dir()), (std::set<std::string>{"default.dtab", "other.dtab"}));
}

TEST_F(DtabCacheTest, RemoveDeletesTheFileAndRemovingNothingIsOk) {
  ASSERT_TRUE(cache_->Write(MakeDtab("default", 1)).ok());
  EXPECT_TRUE(cache_->Remove("default").ok());
  EXPECT_EQ(cache_->Read("default").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(cache_->Remove("default").ok());
  EXPECT_TRUE(Files(cache_->dir()).empty());
}

TEST_F(DtabCacheTest, WriteRejectsInvalidNamespacesTombstonesAndVersionZero) {
  EXPECT_THAT(cache_->Write(MakeDtab("../x", 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, "'../x'"));
  v1::VersionedDtab tomb = MakeDtab("default", 2);
  tomb.set_deleted(true);
  EXPECT_THAT(cache_->Write(tomb), StatusIs(absl::StatusCode::kInvalidArgument, "version 2"));
  EXPECT_THAT(cache_->Write(MakeDtab("default", 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, "version 0"));
  EXPECT_THAT(cache_->Read("a/b").status(), StatusIs(absl::StatusCode::kInvalidArgument, "a/b"));
  EXPECT_TRUE(Files(cache_->dir()).empty());
}

TEST(DtabCacheOpenTest, CreatesMissingParentsAndRejectsEmptyOrFilePaths) {
  TempDir tmp;
  EXPECT_TRUE(DtabCache::Open(tmp.path() + "/a/b/c").ok());
  EXPECT_TRUE(std::filesystem::is_directory(tmp.path() + "/a/b/c"));
  EXPECT_THAT(DtabCache::Open("").status(), StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
  WriteAll(tmp.path() + "/file", "x");
  EXPECT_THAT(DtabCache::Open(tmp.path() + "/file").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "/file"));
}

TEST(DtabCacheOpenTest, RemovesTemporaryFilesOfInterruptedWritesOnly) {
  TempDir tmp;
  {
    absl::StatusOr<std::unique_ptr<DtabCache>> c = DtabCache::Open(tmp.path());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Write(MakeDtab("default", 4)).ok());
  }
  WriteAll(tmp.path() + "/.default.dtab.tmp.AbC123", "half a write");
  WriteAll(tmp.path() + "/README", "not ours");
  absl::StatusOr<std::unique_ptr<DtabCache>> c = DtabCache::Open(tmp.path());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Files(tmp.path()), (std::set<std::string>{"README", "default.dtab"}));
  EXPECT_EQ((*c)->Read("default")->version(), 4);
}

// --- Corrupt files: DataLoss naming the file and the defect ---------------

class DtabCacheCorruptionTest : public DtabCacheTest {
 protected:
  void SetUp() override {
    DtabCacheTest::SetUp();
    ASSERT_TRUE(cache_->Write(MakeDtab("default", 7)).ok());
    good_ = ReadAll(cache_->PathFor("default"));
    ASSERT_FALSE(good_.empty());
  }
  absl::Status ReadWith(const std::string& contents) {
    WriteAll(cache_->PathFor("default"), contents);
    return cache_->Read("default").status();
  }
  std::string good_;
};

TEST_F(DtabCacheCorruptionTest, EmptyFileIsDataLoss) {
  EXPECT_THAT(ReadWith(""), StatusIs(absl::StatusCode::kDataLoss, "no header line"));
}

TEST_F(DtabCacheCorruptionTest, GarbageIsDataLoss) {
  EXPECT_THAT(ReadWith("hello\nworld"),
              StatusIs(absl::StatusCode::kDataLoss, "not a dtab cache file"));
  EXPECT_THAT(ReadWith("hello\nworld"),
              StatusIs(absl::StatusCode::kDataLoss, cache_->PathFor("default")));
}

TEST_F(DtabCacheCorruptionTest, TruncatedFileIsDataLoss) {
  EXPECT_THAT(ReadWith(good_.substr(0, good_.size() - 3)),
              StatusIs(absl::StatusCode::kDataLoss, "header says"));
}

TEST_F(DtabCacheCorruptionTest, FlippedPayloadByteIsDataLoss) {
  std::string bad = good_;
  bad[bad.size() - 2] ^= 0x20;
  EXPECT_THAT(ReadWith(bad), StatusIs(absl::StatusCode::kDataLoss, "checksum mismatch"));
}

TEST_F(DtabCacheCorruptionTest, UnknownFormatVersionIsDataLoss) {
  std::string bad = good_;
  bad.replace(bad.find(" 1 "), 3, " 9 ");
  EXPECT_THAT(ReadWith(bad), StatusIs(absl::StatusCode::kDataLoss, "format version '9'"));
}

TEST_F(DtabCacheCorruptionTest, ValidPayloadThatIsNotAVersionedDtabIsDataLoss) {
  const std::string payload = "\xff\xff\xff";  // an invalid tag
  const std::string file =
      absl::StrCat("dtabd-dtab-cache 1 ", absl::StrFormat("%08x", Crc32c(payload)), " ",
                   payload.size(), "\n", payload);
  EXPECT_THAT(ReadWith(file), StatusIs(absl::StatusCode::kDataLoss, "not a VersionedDtab"));
}

TEST_F(DtabCacheCorruptionTest, AnotherNamespacesFileIsDataLoss) {
  ASSERT_TRUE(cache_->Write(MakeDtab("other", 2)).ok());
  EXPECT_THAT(ReadWith(ReadAll(cache_->PathFor("other"))),
              StatusIs(absl::StatusCode::kDataLoss, "it holds namespace 'other'"));
}

// --- Atomicity under SIGKILL ------------------------------------------------

// A child rewrites one namespace in a loop with large dtabs (so each write
// takes several system calls) and is SIGKILLed mid-loop; whatever the file
// holds afterwards must read back as a whole version.
TEST_F(DtabCacheTest, FileIsWholeAfterTheWriterIsKilledMidWrite) {
  for (int round = 0; round < 5; ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(ready[0]);
      for (int64_t v = 1;; ++v) {
        const std::string text(256 << 10, static_cast<char>('a' + v % 26));
        if (!cache_->Write(MakeDtab("default", v, text)).ok()) {
          _exit(1);
        }
        if (v == 2) {
          (void)!write(ready[1], "x", 1);  // at least one whole version exists
        }
      }
    }
    close(ready[1]);
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus));

    absl::StatusOr<std::unique_ptr<DtabCache>> reopened = DtabCache::Open(cache_->dir());
    ASSERT_TRUE(reopened.ok());
    absl::StatusOr<v1::VersionedDtab> got = (*reopened)->Read("default");
    ASSERT_TRUE(got.ok()) << "round " << round << ": " << got.status();
    EXPECT_GE(got->version(), 2);
    EXPECT_EQ(got->dtab(), std::string(256 << 10, static_cast<char>('a' + got->version() % 26)));
    EXPECT_EQ(Files(cache_->dir()), std::set<std::string>{"default.dtab"});
  }
}

}  // namespace
}  // namespace dtabd::discovery
