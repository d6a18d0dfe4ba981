#include "proxy/fs_namer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::proxy {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using Tree = dtab::NameTree<dtab::BoundName>;

// ---------------------------------------------------------------------------
// ParseFsEndpoints

Address A(std::string host, uint16_t port, double weight = 1.0) {
  return Address{std::move(host), port, weight};
}

std::vector<Address> ParseOk(absl::string_view text) {
  absl::StatusOr<std::vector<Address>> parsed = ParseFsEndpoints(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : std::vector<Address>{};
}

TEST(ParseFsEndpointsTest, ParsesHostAndPortPerLine) {
  EXPECT_THAT(ParseOk("127.0.0.1 8080\n10.0.0.2 9090\n"),
              ElementsAre(A("127.0.0.1", 8080), A("10.0.0.2", 9090)));
  EXPECT_THAT(ParseOk("10.0.0.1 1\n10.0.0.1 65535"),  // no final newline
              ElementsAre(A("10.0.0.1", 1), A("10.0.0.1", 65535)));
}

TEST(ParseFsEndpointsTest, ParsesWeightsWithOrWithoutSpaceAfterStar) {
  EXPECT_THAT(ParseOk("10.0.0.1 80 * 2\n10.0.0.1 81 *0.5\n10.0.0.1 82\t*\t3\n"),
              ElementsAre(A("10.0.0.1", 80, 2.0), A("10.0.0.1", 81, 0.5), A("10.0.0.1", 82, 3.0)));
}

TEST(ParseFsEndpointsTest, IgnoresCommentsBlankLinesAndExtraWhitespace) {
  EXPECT_THAT(ParseOk("# endpoints of world\n"
                      "\n"
                      "   \t \n"
                      "  10.0.0.1   80   # primary\n"
                      "\t# 10.0.0.9 80 (disabled)\n"
                      "10.0.0.2 81 * 2#trailing comment right after the weight\n"),
              ElementsAre(A("10.0.0.1", 80), A("10.0.0.2", 81, 2.0)));
}

TEST(ParseFsEndpointsTest, EmptyOrCommentOnlyTextHasNoAddresses) {
  EXPECT_THAT(ParseOk(""), IsEmpty());
  EXPECT_THAT(ParseOk("\n\n"), IsEmpty());
  EXPECT_THAT(ParseOk("# nothing yet\n"), IsEmpty());
}

TEST(ParseFsEndpointsTest, AcceptsCrlfLineEnds) {
  EXPECT_THAT(ParseOk("10.0.0.1 80\r\n10.0.0.2 81 * 2\r\n"),
              ElementsAre(A("10.0.0.1", 80), A("10.0.0.2", 81, 2.0)));
}

TEST(ParseFsEndpointsTest, KeepsIpv6LiteralsAsWrittenWithoutBrackets) {
  EXPECT_THAT(ParseOk("::1 80\n2001:DB8::1 81 * 2\n[fe80::2] 82\n"),
              ElementsAre(A("::1", 80), A("2001:DB8::1", 81, 2.0), A("fe80::2", 82)));
}

TEST(ParseFsEndpointsTest, ResolvesHostNamesToNumericAddressesPreferringIpv4) {
  EXPECT_THAT(ParseOk("localhost 8080\nlocalhost 8081 * 3\n"),
              ElementsAre(A("127.0.0.1", 8080), A("127.0.0.1", 8081, 3.0)));
}

TEST(ParseFsEndpointsTest, KeepsDuplicatedEndpoints) {
  EXPECT_THAT(ParseOk("10.0.0.1 80\n10.0.0.1 80 * 2\n"),
              ElementsAre(A("10.0.0.1", 80), A("10.0.0.1", 80, 2.0)));
}

TEST(ParseFsEndpointsTest, RejectsMalformedLinesNamingLineAndToken) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"10.0.0.1 0", "line 1: port 0 is not in 1-65535"},
      {"10.0.0.1 70000", "line 1: port 70000 is not in 1-65535"},
      {"10.0.0.1 99999999999", "line 1: port 99999999999 is not in 1-65535"},
      {"10.0.0.1 abc", "line 1: port 'abc' is not a number"},
      {"10.0.0.1 -1", "line 1: port '-1' is not a number"},
      {"10.0.0.1 +80", "line 1: port '+80' is not a number"},
      {"10.0.0.1 80 * -1", "line 1: weight '-1' is not a positive number"},
      {"10.0.0.1 80 * 0", "line 1: weight '0' is not a positive number"},
      {"10.0.0.1 80 * x", "line 1: weight 'x' is not a positive number"},
      {"10.0.0.1 80 *inf", "line 1: weight 'inf' is not a positive number"},
      {"10.0.0.1 80 * nan", "line 1: weight 'nan' is not a positive number"},
      {"10.0.0.1 80 *", "line 1: missing weight after '*'"},
      {"10.0.0.1 80 * 2 extra", "line 1: unexpected 'extra' after the weight"},
      {"10.0.0.1 80 *2 3", "line 1: unexpected '3' after the weight"},
      {"10.0.0.1 80 90", "line 1: unexpected '90' after the port (expected '* weight')"},
      {"10.0.0.1", "line 1: missing port after host '10.0.0.1'"},
      {"bad_host! 80", "line 1: host 'bad_host!' is not an IP address or host name"},
      {"[10.0.0.1] 80", "line 1: host '[10.0.0.1]' is not an IP address or host name"},
      {"# header\n\n10.0.0.1 80\n10.0.0.2 0\n10.0.0.3 0\n", "line 4: port 0 is not in 1-65535"},
      {"10.0.0.1 80\r\n10.0.0.1 x\r\n", "line 2: port 'x' is not a number"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<std::vector<Address>> parsed = ParseFsEndpoints(c.text);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), c.message);
  }
}

TEST(ParseFsEndpointsTest, RejectsHostNameThatDoesNotResolve) {
  // .invalid never resolves (RFC 6761).
  absl::StatusOr<std::vector<Address>> parsed =
      ParseFsEndpoints("10.0.0.1 80\nno-such-host.invalid 80\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()),
              StartsWith("line 2: host 'no-such-host.invalid' does not resolve: "));
}

// ---------------------------------------------------------------------------
// FsNamer

const dtab::Path kPrefix({"#", "io.l5d.fs"});

// "~" for Neg; "ID residual RESIDUAL" for a leaf; "error: ..." otherwise.
std::string Bound(const absl::StatusOr<Tree>& tree) {
  if (!tree.ok()) {
    return absl::StrCat("error: ", tree.status().ToString());
  }
  if (tree->is_neg()) {
    return "~";
  }
  if (tree->is_leaf()) {
    return absl::StrCat(tree->leaf().id.Show(), " residual ", tree->leaf().residual.Show());
  }
  return absl::StrCat("unexpected tree ", dtab::Show(*tree));
}

// Polls `condition` every 2 ms for up to 5 s (a polling interval, never a
// synchronisation by itself); returns its last value.
bool WaitUntil(const std::function<bool()>& condition) {
  for (int i = 0; i < 2500; ++i) {
    if (condition()) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return condition();
}

class FsNamerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fs_namer_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    base_ = dir;
    root_ = base_ + "/disco";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  }

  void TearDown() override {
    namer_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }

  std::string Full(absl::string_view rel) const { return absl::StrCat(root_, "/", rel); }

  // Truncates and writes `path` (absolute) in place, then closes it.
  static void WriteFile(const std::string& path, absl::string_view content) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ASSERT_EQ(close(fd), 0);
  }
  void WriteInPlace(absl::string_view rel, absl::string_view content) {
    WriteFile(Full(rel), content);
  }
  // Writes a hidden temporary file beside `rel` and renames it into place.
  void WriteAtomically(absl::string_view rel, absl::string_view content) {
    const std::string path = Full(rel);
    const size_t slash = path.rfind('/');
    const std::string temp =
        absl::StrCat(path.substr(0, slash + 1), ".", path.substr(slash + 1), ".tmp");
    WriteFile(temp, content);
    ASSERT_EQ(rename(temp.c_str(), path.c_str()), 0) << path;
  }
  void Mkdir(absl::string_view rel) { ASSERT_EQ(mkdir(Full(rel).c_str(), 0755), 0) << rel; }
  void Remove(absl::string_view rel) { ASSERT_EQ(unlink(Full(rel).c_str()), 0) << rel; }

  void StartNamer() {
    FsNamer::Options options;
    options.root_dir = root_;
    options.prefix = kPrefix;
    options.logger = [this](absl::string_view line) {
      absl::MutexLock lock(&log_mu_);
      log_.emplace_back(line);
    };
    absl::StatusOr<std::unique_ptr<FsNamer>> namer = FsNamer::Start(std::move(options));
    ASSERT_TRUE(namer.ok()) << namer.status();
    namer_ = *std::move(namer);
  }

  std::vector<std::string> Logs() {
    absl::MutexLock lock(&log_mu_);
    return log_;
  }
  bool Logged(absl::string_view line) {
    absl::MutexLock lock(&log_mu_);
    return std::find(log_.begin(), log_.end(), line) != log_.end();
  }

  // /#/io.l5d.fs ++ labels.
  static dtab::Path Name(std::initializer_list<absl::string_view> labels) {
    return kPrefix.Concat(dtab::Path(labels));
  }
  std::string Lookup(std::initializer_list<absl::string_view> labels) const {
    return Bound(namer_->Lookup(Name(labels), kPrefix.size()));
  }

  // The service of file `key` in the current snapshot, if any.
  std::optional<FsNamer::Service> ServiceOf(absl::string_view key) const {
    std::shared_ptr<const FsNamer::Snapshot> snapshot = namer_->snapshot();
    const auto it = snapshot->find(key);
    if (it == snapshot->end()) {
      return std::nullopt;
    }
    return it->second;
  }
  bool HasAddresses(absl::string_view key, const std::vector<Address>& addresses) const {
    std::optional<FsNamer::Service> service = ServiceOf(key);
    return service.has_value() && service->addresses == addresses;
  }
  bool Absent(absl::string_view key) const { return !ServiceOf(key).has_value(); }

  std::string base_;  // the temporary directory; holds root_ and staging areas
  std::string root_;
  std::unique_ptr<FsNamer> namer_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(log_mu_);
};

TEST_F(FsNamerTest, StartRejectsMissingRootDir) {
  FsNamer::Options options;
  options.root_dir = base_ + "/missing";
  options.prefix = kPrefix;
  absl::StatusOr<std::unique_ptr<FsNamer>> namer = FsNamer::Start(options);
  ASSERT_FALSE(namer.ok());
  EXPECT_EQ(namer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(namer.status().message(),
            absl::StrCat("io.l5d.fs root_dir '", base_, "/missing': no such file or directory"));
}

TEST_F(FsNamerTest, StartRejectsFileAsRootDir) {
  WriteInPlace("world", "10.0.0.1 80\n");
  FsNamer::Options options;
  options.root_dir = Full("world");
  options.prefix = kPrefix;
  absl::StatusOr<std::unique_ptr<FsNamer>> namer = FsNamer::Start(options);
  ASSERT_FALSE(namer.ok());
  EXPECT_EQ(namer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(namer.status().message(),
            absl::StrCat("io.l5d.fs root_dir '", Full("world"), "': not a directory"));
}

TEST_F(FsNamerTest, StartRejectsEmptyRootDirAndEmptyPrefix) {
  FsNamer::Options options;
  options.prefix = kPrefix;
  EXPECT_EQ(FsNamer::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.root_dir = root_;
  options.prefix = dtab::Path();
  absl::StatusOr<std::unique_ptr<FsNamer>> namer = FsNamer::Start(options);
  ASSERT_FALSE(namer.ok());
  EXPECT_EQ(namer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(namer.status().message()), HasSubstr("prefix is empty"));
}

TEST_F(FsNamerTest, LookupBindsLongestFileAndKeepsTheRestAsResidual) {
  WriteInPlace("world", "10.0.0.1 80\n");
  Mkdir("a");
  WriteInPlace("a/b", "10.0.0.2 80\n");
  Mkdir("a/c");
  WriteInPlace("a/c/d", "10.0.0.3 80\n");
  StartNamer();

  EXPECT_EQ(Lookup({"world"}), "/#/io.l5d.fs/world residual /");
  EXPECT_EQ(Lookup({"world", "x", "y"}), "/#/io.l5d.fs/world residual /x/y");
  EXPECT_EQ(Lookup({"a", "b"}), "/#/io.l5d.fs/a/b residual /");
  EXPECT_EQ(Lookup({"a", "b", "extra"}), "/#/io.l5d.fs/a/b residual /extra");
  EXPECT_EQ(Lookup({"a", "c", "d", "e", "f"}), "/#/io.l5d.fs/a/c/d residual /e/f");
}

TEST_F(FsNamerTest, LookupIsNegWithoutFile) {
  WriteInPlace("world", "10.0.0.1 80\n");
  Mkdir("a");
  WriteInPlace("a/b", "10.0.0.2 80\n");
  StartNamer();

  EXPECT_EQ(Lookup({"missing"}), "~");
  EXPECT_EQ(Lookup({"missing", "world"}), "~");  // only leading labels name files
  EXPECT_EQ(Lookup({"a"}), "~");                 // a directory is no service
  EXPECT_EQ(Lookup({"a", "x"}), "~");
  EXPECT_EQ(Lookup({}), "~");
  EXPECT_EQ(Lookup({"a/b"}), "~");  // one label holding '/' is not the file a/b
  EXPECT_EQ(Lookup({".."}), "~");
  EXPECT_THAT(Bound(namer_->Lookup(dtab::Path({"#"}), 2)), StartsWith("error: INVALID_ARGUMENT"));
}

TEST_F(FsNamerTest, FindReturnsTheServiceOfABoundId) {
  WriteInPlace("world", "10.0.0.1 80\n10.0.0.2 81 * 2\n");
  Mkdir("a");
  WriteInPlace("a/b", "10.0.0.3 80\n");
  StartNamer();

  absl::StatusOr<Tree> bound = namer_->Lookup(Name({"world", "rest"}), kPrefix.size());
  ASSERT_TRUE(bound.ok() && bound->is_leaf()) << Bound(bound);
  const FsNamer::Service* world = namer_->Find(bound->leaf().id);
  ASSERT_NE(world, nullptr);
  EXPECT_THAT(world->addresses, ElementsAre(A("10.0.0.1", 80), A("10.0.0.2", 81, 2.0)));
  EXPECT_TRUE(world->error.ok());

  const FsNamer::Service* nested = namer_->Find(Name({"a", "b"}));
  ASSERT_NE(nested, nullptr);
  EXPECT_THAT(nested->addresses, ElementsAre(A("10.0.0.3", 80)));

  EXPECT_EQ(namer_->Find(Name({"missing"})), nullptr);
  EXPECT_EQ(namer_->Find(Name({"a"})), nullptr);
  EXPECT_EQ(namer_->Find(Name({"world", "rest"})), nullptr);  // ids carry no residual
  EXPECT_EQ(namer_->Find(kPrefix), nullptr);
  EXPECT_EQ(namer_->Find(dtab::Path({"#", "other", "world"})), nullptr);
}

TEST_F(FsNamerTest, IgnoresHiddenAndEditorFiles) {
  WriteInPlace("world", "10.0.0.1 80\n");
  WriteInPlace(".world.tmp", "10.0.0.9 80\n");
  WriteInPlace("world~", "10.0.0.9 80\n");
  WriteInPlace("world.swp", "garbage");
  Mkdir(".git");
  WriteInPlace(".git/config", "10.0.0.9 80\n");
  StartNamer();

  std::vector<std::string> keys;
  for (const auto& [key, service] : *namer_->snapshot()) {
    keys.push_back(key);
  }
  EXPECT_THAT(keys, ElementsAre("world"));
  EXPECT_EQ(Lookup({".world.tmp"}), "~");
  EXPECT_THAT(Logs(), IsEmpty());
}

TEST_F(FsNamerTest, FileThatNeverParsedHasNoAddressesAndReportsWhy) {
  WriteInPlace("bad", "10.0.0.1 80\n10.0.0.1 0\n");
  WriteInPlace("empty", "");
  StartNamer();

  std::optional<FsNamer::Service> bad = ServiceOf("bad");
  ASSERT_TRUE(bad.has_value());
  EXPECT_THAT(bad->addresses, IsEmpty());
  EXPECT_EQ(bad->error.code(), absl::StatusCode::kInvalidArgument);
  const std::string message = absl::StrCat(Full("bad"), ": line 2: port 0 is not in 1-65535");
  EXPECT_EQ(bad->error.message(), message);
  EXPECT_THAT(Logs(), ElementsAre(absl::StrCat("io.l5d.fs: ", message)));
  // The file exists, so the name binds; it has no endpoints.
  EXPECT_EQ(Lookup({"bad"}), "/#/io.l5d.fs/bad residual /");

  std::optional<FsNamer::Service> empty = ServiceOf("empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_THAT(empty->addresses, IsEmpty());
  EXPECT_TRUE(empty->error.ok());
}

TEST_F(FsNamerTest, UnreadableFileReportsTheErrno) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root reads files whatever their mode";
  }
  WriteInPlace("secret", "10.0.0.1 80\n");
  ASSERT_EQ(chmod(Full("secret").c_str(), 0), 0);
  StartNamer();

  std::optional<FsNamer::Service> secret = ServiceOf("secret");
  ASSERT_TRUE(secret.has_value());
  EXPECT_THAT(secret->addresses, IsEmpty());
  EXPECT_EQ(secret->error.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(secret->error.message(),
            absl::StrCat(Full("secret"), ": cannot open: permission denied"));
  EXPECT_THAT(Logs(), ElementsAre(absl::StrCat("io.l5d.fs: ", secret->error.message())));
}

TEST_F(FsNamerTest, FileThatCannotBeOpenedReportsTheErrnoAndKeepsLastGood) {
  // A symlink loop cannot be opened, whoever runs the test.
  ASSERT_EQ(symlink("loop", Full("loop").c_str()), 0);
  WriteInPlace("world", "10.0.0.1 80\n");
  StartNamer();
  std::optional<FsNamer::Service> loop = ServiceOf("loop");
  ASSERT_TRUE(loop.has_value());
  EXPECT_THAT(loop->addresses, IsEmpty());
  EXPECT_FALSE(loop->error.ok());
  const std::string message =
      absl::StrCat(Full("loop"), ": cannot open: too many levels of symbolic links");
  EXPECT_EQ(loop->error.message(), message);
  EXPECT_THAT(Logs(), ElementsAre(absl::StrCat("io.l5d.fs: ", message)));

  // A good file replaced by one that cannot be opened keeps its addresses.
  const std::string temp = Full(".world.tmp");
  ASSERT_EQ(symlink("world", temp.c_str()), 0);  // world -> world once renamed
  ASSERT_EQ(rename(temp.c_str(), Full("world").c_str()), 0);
  ASSERT_TRUE(WaitUntil([&] {
    std::optional<FsNamer::Service> s = ServiceOf("world");
    return s.has_value() && !s->error.ok();
  }));
  EXPECT_THAT(ServiceOf("world")->addresses, ElementsAre(A("10.0.0.1", 80)));
}

TEST_F(FsNamerTest, SeesFileCreatedAfterStart) {
  StartNamer();
  EXPECT_EQ(Lookup({"world"}), "~");
  WriteInPlace("world", "10.0.0.1 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.1", 80)}); }));
  EXPECT_EQ(Lookup({"world", "x"}), "/#/io.l5d.fs/world residual /x");
  const FsNamer::Service* world = namer_->Find(Name({"world"}));
  ASSERT_NE(world, nullptr);
  EXPECT_THAT(world->addresses, ElementsAre(A("10.0.0.1", 80)));
}

TEST_F(FsNamerTest, SeesFileRewrittenInPlace) {
  WriteInPlace("world", "10.0.0.1 80\n");
  StartNamer();
  const uint64_t before = namer_->generation();
  WriteInPlace("world", "10.0.0.2 81\n10.0.0.3 82 * 2\n");
  ASSERT_TRUE(WaitUntil([&] {
    return HasAddresses("world", {A("10.0.0.2", 81), A("10.0.0.3", 82, 2.0)});
  }));
  EXPECT_GT(namer_->generation(), before);
  const FsNamer::Service* world = namer_->Find(Name({"world"}));
  ASSERT_NE(world, nullptr);
  EXPECT_THAT(world->addresses, ElementsAre(A("10.0.0.2", 81), A("10.0.0.3", 82, 2.0)));
}

TEST_F(FsNamerTest, SeesFileRenamedIntoPlace) {
  WriteInPlace("world", "10.0.0.1 80\n");
  StartNamer();
  WriteAtomically("world", "10.0.0.4 84\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.4", 84)}); }));
  WriteAtomically("fresh", "10.0.0.5 85\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("fresh", {A("10.0.0.5", 85)}); }));
  EXPECT_EQ(Lookup({"fresh"}), "/#/io.l5d.fs/fresh residual /");
  EXPECT_TRUE(Absent(".fresh.tmp"));
}

TEST_F(FsNamerTest, SeesFileWrittenButNotYetClosed) {
  StartNamer();
  const std::string path = Full("open");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const absl::string_view content = "10.0.0.6 86\n";
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  const bool seen = WaitUntil([&] { return HasAddresses("open", {A("10.0.0.6", 86)}); });
  ASSERT_EQ(close(fd), 0);
  EXPECT_TRUE(seen);
}

TEST_F(FsNamerTest, MalformedFileKeepsLastGoodAddressesUntilFixed) {
  WriteInPlace("world", "10.0.0.1 80\n");
  StartNamer();

  WriteAtomically("world", "10.0.0.1 80\n10.0.0.2 x\n");
  ASSERT_TRUE(WaitUntil([&] {
    std::optional<FsNamer::Service> s = ServiceOf("world");
    return s.has_value() && !s->error.ok();
  }));
  std::optional<FsNamer::Service> world = ServiceOf("world");
  EXPECT_THAT(world->addresses, ElementsAre(A("10.0.0.1", 80)));
  EXPECT_EQ(world->error.code(), absl::StatusCode::kInvalidArgument);
  const std::string message = absl::StrCat(Full("world"), ": line 2: port 'x' is not a number");
  EXPECT_EQ(world->error.message(), message);
  EXPECT_THAT(Logs(), Contains(absl::StrCat("io.l5d.fs: ", message)));
  EXPECT_EQ(Lookup({"world"}), "/#/io.l5d.fs/world residual /");
  const FsNamer::Service* found = namer_->Find(Name({"world"}));
  ASSERT_NE(found, nullptr);
  EXPECT_THAT(found->addresses, ElementsAre(A("10.0.0.1", 80)));
  EXPECT_FALSE(found->error.ok());

  // Fixed again: the new content, no error, and a log line saying so.
  WriteInPlace("world", "10.0.0.3 83\n");
  ASSERT_TRUE(WaitUntil([&] {
    std::optional<FsNamer::Service> s = ServiceOf("world");
    return s.has_value() && s->error.ok() && s->addresses == std::vector{A("10.0.0.3", 83)};
  }));
  EXPECT_THAT(Logs(),
              Contains(absl::StrCat("io.l5d.fs: ", Full("world"), ": ok again, 1 address")));
}

TEST_F(FsNamerTest, DeletedFileBindsToNeg) {
  WriteInPlace("world", "10.0.0.1 80\n");
  WriteInPlace("other", "10.0.0.2 80\n");
  StartNamer();
  ASSERT_NE(namer_->Find(Name({"world"})), nullptr);

  Remove("world");
  ASSERT_TRUE(WaitUntil([&] { return Absent("world"); }));
  EXPECT_EQ(Lookup({"world", "x"}), "~");
  EXPECT_EQ(namer_->Find(Name({"world"})), nullptr);
  EXPECT_NE(namer_->Find(Name({"other"})), nullptr);

  WriteInPlace("world", "10.0.0.9 89\n");  // and back
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.9", 89)}); }));
  EXPECT_EQ(Lookup({"world", "x"}), "/#/io.l5d.fs/world residual /x");
}

TEST_F(FsNamerTest, SeesNewSubdirectoriesAndTheirFiles) {
  StartNamer();
  Mkdir("team");
  WriteInPlace("team/api", "10.0.0.1 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("team/api", {A("10.0.0.1", 80)}); }));
  EXPECT_EQ(Lookup({"team", "api", "v1"}), "/#/io.l5d.fs/team/api residual /v1");

  // Created in quick succession: the deeper directories may exist before
  // their parent's watch does.
  Mkdir("x");
  Mkdir("x/y");
  Mkdir("x/y/z");
  WriteInPlace("x/y/z/svc", "10.0.0.2 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("x/y/z/svc", {A("10.0.0.2", 80)}); }));
  WriteInPlace("x/y/z/svc", "10.0.0.3 80\n");  // and the deepest one is watched
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("x/y/z/svc", {A("10.0.0.3", 80)}); }));
}

TEST_F(FsNamerTest, SeesDirectoriesMovedInAndOut) {
  StartNamer();
  const std::string staging = base_ + "/staging";
  ASSERT_EQ(mkdir(staging.c_str(), 0755), 0);
  WriteFile(staging + "/svc", "10.0.0.1 80\n");

  ASSERT_EQ(rename(staging.c_str(), Full("moved").c_str()), 0);
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("moved/svc", {A("10.0.0.1", 80)}); }));
  WriteInPlace("moved/svc", "10.0.0.2 80\n");  // watched at its new place
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("moved/svc", {A("10.0.0.2", 80)}); }));

  ASSERT_EQ(rename(Full("moved").c_str(), Full("renamed").c_str()), 0);
  ASSERT_TRUE(WaitUntil(
      [&] { return Absent("moved/svc") && HasAddresses("renamed/svc", {A("10.0.0.2", 80)}); }));
  WriteInPlace("renamed/svc", "10.0.0.3 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("renamed/svc", {A("10.0.0.3", 80)}); }));

  ASSERT_EQ(rename(Full("renamed").c_str(), staging.c_str()), 0);
  ASSERT_TRUE(WaitUntil([&] { return Absent("renamed/svc"); }));
  EXPECT_EQ(Lookup({"renamed", "svc"}), "~");
  // No longer watched: changes outside the root are not seen.
  const uint64_t before = namer_->generation();
  WriteFile(staging + "/svc", "10.0.0.4 80\n");
  WriteAtomically("marker", "10.0.0.5 80\n");
  ASSERT_TRUE(WaitUntil([&] { return !Absent("marker"); }));
  EXPECT_EQ(namer_->generation(), before + 1);
  EXPECT_EQ(namer_->snapshot()->size(), 1u);
}

TEST_F(FsNamerTest, DeletedSubdirectoryRemovesItsServices) {
  Mkdir("team");
  WriteInPlace("team/api", "10.0.0.1 80\n");
  WriteInPlace("team/web", "10.0.0.2 80\n");
  WriteInPlace("team-x", "10.0.0.3 80\n");  // sorts between "team" and "team/"
  StartNamer();
  std::error_code error;
  std::filesystem::remove_all(Full("team"), error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_TRUE(WaitUntil([&] { return Absent("team/api") && Absent("team/web"); }));
  EXPECT_FALSE(Absent("team-x"));
  EXPECT_EQ(Lookup({"team", "api"}), "~");
}

TEST_F(FsNamerTest, RewritingIdenticalContentPublishesNothing) {
  WriteInPlace("world", "10.0.0.1 80\n");
  StartNamer();
  const uint64_t before = namer_->generation();
  WriteInPlace("world", "10.0.0.1 80\n");
  WriteAtomically("world", "10.0.0.1   80   # same addresses\n");
  WriteAtomically("marker", "10.0.0.2 80\n");  // events are handled in order
  ASSERT_TRUE(WaitUntil([&] { return !Absent("marker"); }));
  EXPECT_EQ(namer_->generation(), before + 1);
}

TEST_F(FsNamerTest, RootDeletedAndRecreated) {
  Mkdir("team");
  WriteInPlace("team/api", "10.0.0.1 80\n");
  WriteInPlace("world", "10.0.0.2 80\n");
  StartNamer();

  std::error_code error;
  std::filesystem::remove_all(root_, error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_TRUE(WaitUntil([&] { return namer_->snapshot()->empty(); }));
  EXPECT_EQ(Lookup({"world"}), "~");
  EXPECT_EQ(namer_->Find(Name({"world"})), nullptr);
  ASSERT_TRUE(WaitUntil([&] {
    for (const std::string& line : Logs()) {
      if (line.find("is gone") != line.npos) {
        return true;
      }
    }
    return false;
  }));

  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  WriteInPlace("world", "10.0.0.3 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.3", 80)}); }));
  EXPECT_EQ(Lookup({"world"}), "/#/io.l5d.fs/world residual /");
  EXPECT_TRUE(Logged(absl::StrCat("io.l5d.fs: root directory ", root_, " is back; rescanning")));
  // Watched again, including new subdirectories.
  Mkdir("team");
  WriteInPlace("team/api", "10.0.0.4 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("team/api", {A("10.0.0.4", 80)}); }));
  WriteInPlace("world", "10.0.0.5 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.5", 80)}); }));
}

TEST_F(FsNamerTest, RootReplacedByRenameIsRescanned) {
  WriteInPlace("world", "10.0.0.1 80\n");
  StartNamer();
  const std::string next = base_ + "/next";
  ASSERT_EQ(mkdir(next.c_str(), 0755), 0);
  WriteFile(next + "/world", "10.0.0.2 80\n");
  const std::string old = base_ + "/old";
  ASSERT_EQ(rename(root_.c_str(), old.c_str()), 0);
  ASSERT_EQ(rename(next.c_str(), root_.c_str()), 0);
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.2", 80)}); }));
  // The old directory is no longer watched; the new one is.
  WriteFile(old + "/ghost", "10.0.0.9 80\n");
  WriteInPlace("world", "10.0.0.3 80\n");
  ASSERT_TRUE(WaitUntil([&] { return HasAddresses("world", {A("10.0.0.3", 80)}); }));
  EXPECT_TRUE(Absent("ghost"));
}

TEST_F(FsNamerTest, DestructorStopsPromptlyWhileRootIsMissing) {
  StartNamer();
  std::error_code error;
  std::filesystem::remove_all(root_, error);
  ASSERT_TRUE(WaitUntil([&] { return !Logs().empty(); }));
  namer_.reset();  // must not hang waiting for the root
}

TEST_F(FsNamerTest, ConcurrentLookupsAndFindsWhileFilesChange) {
  for (const char* name : {"svc0", "svc1", "svc2"}) {
    WriteInPlace(name, "10.0.0.1 1000\n");
  }
  StartNamer();

  std::atomic<bool> stop{false};
  std::atomic<int64_t> bound{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      const char* names[] = {"svc0", "svc1", "svc2", "none"};
      int64_t local = 0;
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const dtab::Path path = Name({names[(i + t) % 4], "rest"});
        absl::StatusOr<Tree> tree = namer_->Lookup(path, kPrefix.size());
        ASSERT_TRUE(tree.ok()) << tree.status();
        if (tree->is_leaf()) {
          ++local;
          EXPECT_EQ(tree->leaf().residual, dtab::Path({"rest"}));
          // The file may be gone by now; when it is not, it is complete
          // (every version is renamed into place).
          const FsNamer::Service* service = namer_->Find(tree->leaf().id);
          if (service != nullptr) {
            EXPECT_EQ(service->addresses.size(), 1u);
            EXPECT_TRUE(service->error.ok());
          }
        } else {
          EXPECT_TRUE(tree->is_neg());
        }
        if (i % 64 == 0) {
          EXPECT_LE(namer_->snapshot()->size(), 3u);
        }
      }
      bound.fetch_add(local);
    });
  }

  // A lambda, so that a failed ASSERT still stops and joins the readers.
  const auto change_files = [&] {
    for (int i = 0; i < 60; ++i) {
      const std::string name = absl::StrCat("svc", i % 3);
      if (i % 7 == 6) {
        Remove(name);
        ASSERT_TRUE(WaitUntil([&] { return Absent(name); }));
      } else {
        const uint16_t port = static_cast<uint16_t>(1001 + i);
        WriteAtomically(name, absl::StrCat("10.0.0.1 ", port, "\n"));
        ASSERT_TRUE(WaitUntil([&] { return HasAddresses(name, {A("10.0.0.1", port)}); }));
      }
    }
  };
  change_files();
  stop.store(true);
  for (std::thread& reader : readers) {
    reader.join();
  }
  EXPECT_GT(bound.load(), 0);
}

}  // namespace
}  // namespace dtabd::proxy
