// End-to-end tests of dtabctl's remote commands: each test starts the real
// dtabd (DTABD_PATH) on 127.0.0.1:0 with a temporary database, reads the
// bound port from its "dtabd: serving grpc=..." line, and runs the real
// dtabctl binary (DTABCTL_PATH) as a child process, checking its stdout,
// stderr and exit status (0 ok, 1 other, 2 usage or invalid dtab, 3 bind
// failure, 4 not found, 5 conflict, 6 unreachable, 7 auth). rollout and
// subscribers are tested in dtabctl_rollout_test.cc.
//
// Synchronisation is by blocking reads of the children's pipes (poll with a
// generous timeout), never by sleeping. Every child is killed and reaped.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dtabd/v1/dtab.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/cli/dtabctl_test_util.h"

namespace dtabd::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

using testutil::Child;
using testutil::Dtabctl;
using testutil::Dtabd;
using testutil::RunResult;
using testutil::TempDir;

class DtabctlRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dtabd_ = Dtabd::Start(dir_.path());
    ASSERT_NE(dtabd_, nullptr);
  }

  void TearDown() override {
    if (dtabd_ != nullptr) {
      dtabd_->Stop();
    }
  }

  // dtabctl with --server pointing at the test's dtabd.
  RunResult Run(std::vector<std::string> args, absl::string_view input = "") {
    args.insert(args.begin(), {"--server", dtabd_->grpc_addr()});
    return Dtabctl(args, input);
  }

  // Creates `ns` with `dtab` (through stdin); expects success.
  void Create(const std::string& ns, absl::string_view dtab) {
    const RunResult r = Run({"create", ns, "-f", "-"}, dtab);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void Apply(const std::string& ns, absl::string_view dtab) {
    const RunResult r = Run({"apply", ns, "-f", "-"}, dtab);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  TempDir dir_;
  std::unique_ptr<Dtabd> dtabd_;
};

// The timestamp format dtabctl prints (RFC 3339, UTC).
constexpr char kTime[] = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z";

// ---------------------------------------------------------------------------
// create, get

TEST_F(DtabctlRemoteTest, CreateThenGetPrintsHeaderAndDtabText) {
  const std::string file = dir_.Write("web.dtab", "/svc => /#/io.l5d.fs;\n/svc/b => /svc/a;\n");
  RunResult r = Run({"create", "web", "-f", file, "--comment", "first \"cut\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("web: created version 1 \\(revision [0-9]+\\)\n"));
  EXPECT_THAT(r.err, IsEmpty());

  r = Run({"get", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[0], MatchesRegex(absl::StrCat(
                            "# namespace=web version=1 revision=[0-9]+ author=anonymous "
                            "created_at=",
                            kTime, " comment=\"first \\\\\"cut\\\\\"\"")));
  EXPECT_EQ(lines[1], "/svc => /#/io.l5d.fs;");
  EXPECT_EQ(lines[2], "/svc/b => /svc/a;");
  EXPECT_EQ(lines[3], "");
}

TEST_F(DtabctlRemoteTest, GetOutputIsAValidDtabThatRoundTrips) {
  Create("web", "/a => /b;");
  const RunResult got = Run({"get", "web"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  const RunResult applied = Run({"apply", "web", "-f", "-", "--expect-version", "1"}, got.out);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const RunResult diff = Run({"diff", "web", "1", "2"});
  EXPECT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_THAT(diff.out, IsEmpty());
}

TEST_F(DtabctlRemoteTest, CreateExistingNamespaceExitsFive) {
  Create("web", "/a=>/b");
  const RunResult r = Run({"create", "web", "-f", "-"}, "/a=>/c");
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' already exists (version 1)\n");
}

TEST_F(DtabctlRemoteTest, CreateWithInvalidDtabExitsTwoWithParserMessage) {
  const RunResult r = Run({"create", "web", "-f", "-"}, "/a => ;");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: dtab 'web': "));
  EXPECT_THAT(r.err, HasSubstr("[;]"));  // the position is marked
}

TEST_F(DtabctlRemoteTest, GetMissingNamespaceOrVersionExitsFour) {
  RunResult r = Run({"get", "nope"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "dtabctl: dtab 'nope' does not exist\n");

  Create("web", "/a=>/b");
  r = Run({"get", "web", "--version", "7"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' has no version 7\n");
}

TEST_F(DtabctlRemoteTest, GetInvalidNamespaceExitsTwo) {
  const RunResult r = Run({"get", "no/such"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("dtabctl: "));
}

// ---------------------------------------------------------------------------
// apply

TEST_F(DtabctlRemoteTest, ApplyWithStaleExpectVersionExitsFiveNamingCurrentVersion) {
  Create("web", "/a=>/b");
  Apply("web", "/a=>/c");  // version 2

  RunResult r = Run({"apply", "web", "-f", "-", "--expect-version", "1"}, "/a=>/d");
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err,
            "dtabctl: dtab 'web': expected version 1 but the current version is 2; re-read and "
            "retry\n");

  r = Run({"apply", "web", "-f", "-", "--expect-version=2", "--comment", "fix"}, "/a=>/d");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("web: applied as version 3 \\(revision [0-9]+\\)\n"));
  r = Run({"get", "web"});
  EXPECT_THAT(r.out, HasSubstr("version=3 "));
  EXPECT_THAT(r.out, HasSubstr("comment=\"fix\"\n/a=>/d\n"));
}

TEST_F(DtabctlRemoteTest, ApplyWithoutExpectVersionCreatesAndReplaces) {
  RunResult r = Run({"apply", "web", "-f", "-"}, "/a=>/b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("web: applied as version 1 "));
  r = Run({"apply", "web", "-f", "-"}, "/a=>/c");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("web: applied as version 2 "));
}

TEST_F(DtabctlRemoteTest, ApplyWithExpectVersionOnMissingNamespaceExitsFour) {
  const RunResult r = Run({"apply", "nope", "-f", "-", "--expect-version", "1"}, "/a=>/b");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'nope' does not exist\n");
}

TEST_F(DtabctlRemoteTest, ApplyUnreadableFileExitsOne) {
  const RunResult r = Run({"apply", "web", "-f", dir_.path() + "/missing.dtab"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("dtabctl: cannot read '"));
  EXPECT_THAT(r.err, HasSubstr("No such file or directory"));
}

// ---------------------------------------------------------------------------
// list, history, diff, rollback, delete

TEST_F(DtabctlRemoteTest, ListPrintsTableSortedByName) {
  RunResult r = Run({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "NAMESPACE  VERSION  REVISION\n");

  Create("web", "/a=>/b");
  Create("api", "/a=>/b");
  Apply("api", "/a=>/c");
  r = Run({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAMESPACE  VERSION  REVISION\n"
            "api        2        3\n"
            "web        1        1\n");
}

TEST_F(DtabctlRemoteTest, HistoryListsVersionsNewestFirst) {
  Create("web", "/a=>/b");
  Apply("web", "/a=>/c");
  ASSERT_EQ(Run({"delete", "web", "--comment", "gone"}).exit_code, 0);

  RunResult r = Run({"history", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_THAT(lines[0], MatchesRegex("VERSION +REVISION +CREATED_AT +AUTHOR +COMMENT"));
  EXPECT_THAT(lines[1],
              MatchesRegex(absl::StrCat("3 +3 +", kTime, " +anonymous +\\(deleted\\) gone")));
  EXPECT_THAT(lines[2], MatchesRegex(absl::StrCat("2 +2 +", kTime, " +anonymous")));
  EXPECT_THAT(lines[3], MatchesRegex(absl::StrCat("1 +1 +", kTime, " +anonymous")));

  r = Run({"history", "web", "--limit", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[2], StartsWith("2 "));

  r = Run({"history", "nope"});
  EXPECT_EQ(r.exit_code, 4);
}

// Regression: comments were printed through C escaping, so "it's" showed as
// "it\'s" and UTF-8 text as \xNN bytes.
TEST_F(DtabctlRemoteTest, CommentsPrintAsWrittenExceptControlBytes) {
  const std::string file = dir_.Write("web.dtab", "/a => /b;\n");
  ASSERT_EQ(Run({"create", "web", "-f", file, "--comment", "it's caf\xc3\xa9\tok"}).exit_code, 0);
  RunResult r = Run({"history", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("it's caf\xc3\xa9\\tok"));
  r = Run({"get", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("comment=\"it's caf\xc3\xa9\\tok\""));
}

TEST_F(DtabctlRemoteTest, HistoryPagesThroughEveryVersion) {
  Create("web", "/a=>/b");
  for (int i = 0; i < 4; ++i) {
    Apply("web", absl::StrCat("/a=>/v", i));
  }
  RunResult r = Run({"--json", "history", "web", "--page-size", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << r.out;
  for (int i = 0; i < 5; ++i) {
    v1::VersionedDtab v;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[i], &v).ok()) << lines[i];
    EXPECT_EQ(v.version(), 5 - i);
    EXPECT_EQ(v.dtab(), i == 0 ? "/a=>/v3" : i == 4 ? "/a=>/b" : v.dtab());
  }

  r = Run({"history", "web", "--page-size", "2", "--limit", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;  // the header and 3 versions
  EXPECT_THAT(lines[3], StartsWith("3 "));

  r = Run({"history", "web", "--page-size", "1001"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--page-size 1001 is above the server's limit of 1000"));
}

TEST_F(DtabctlRemoteTest, DiffPrintsRemovedAndAddedDentriesInOrder) {
  Create("web", "/a=>/1;/b=>/2;/c=>/3;/d=>/4");
  Apply("web", "/b => /2;\n/c => /30;\n/d => /4;\n/a => /1;\n");
  RunResult r = Run({"diff", "web", "1", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "- /a=>/1\n"
            "- /c=>/3\n"
            "+ /c=>/30\n"
            "+ /a=>/1\n");
  EXPECT_THAT(r.err, IsEmpty());

  r = Run({"diff", "web", "2", "latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"--json", "diff", "web", "1", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, R"({"namespace":"web","from":1,"to":2,"changes":[)"
                   R"({"op":"-","dentry":"/a=>/1"},{"op":"-","dentry":"/c=>/3"},)"
                   R"({"op":"+","dentry":"/c=>/30"},{"op":"+","dentry":"/a=>/1"}]})"
                   "\n");
}

TEST_F(DtabctlRemoteTest, DiffAgainstDeletionRemovesEverything) {
  Create("web", "/a=>/1;/b=>/2");
  ASSERT_EQ(Run({"delete", "web"}).exit_code, 0);
  const RunResult r = Run({"diff", "web", "1", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "- /a=>/1\n- /b=>/2\n");
}

TEST_F(DtabctlRemoteTest, DiffOfMissingVersionExitsFour) {
  Create("web", "/a=>/1");
  RunResult r = Run({"diff", "web", "1", "9"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' has no version 9\n");
  r = Run({"diff", "web", "1", "two"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("version 'two' is not a positive integer or 'latest'"));
}

TEST_F(DtabctlRemoteTest, RollbackWritesOlderDtabAsNewVersion) {
  Create("web", "/a=>/1");
  Apply("web", "/a=>/2");
  RunResult r = Run({"rollback", "web", "--to", "1", "--expect-version", "1"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, HasSubstr("the current version is 2"));

  r = Run({"rollback", "web", "--to", "1", "--expect-version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              MatchesRegex("web: rolled back to version 1 as version 3 \\(revision [0-9]+\\)\n"));
  r = Run({"get", "web"});
  EXPECT_THAT(r.out, HasSubstr("version=3 "));
  EXPECT_THAT(r.out, HasSubstr("comment=\"rollback to version 1\"\n/a=>/1\n"));

  r = Run({"rollback", "web", "--to", "8"});
  EXPECT_EQ(r.exit_code, 4);
  r = Run({"rollback", "web"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--to V is required"));
}

TEST_F(DtabctlRemoteTest, DeleteThenGetExitsFourAndRollbackRestores) {
  Create("web", "/a=>/1");
  RunResult r = Run({"delete", "web", "--expect-version", "3"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, HasSubstr("the current version is 1"));

  r = Run({"delete", "web", "--expect-version", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("web: deleted at version 2 \\(revision [0-9]+\\)\n"));

  r = Run({"get", "web"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "dtabctl: dtab 'web' was deleted at version 2\n");
  r = Run({"get", "web", "--version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("^# namespace=web version=2 .* deleted comment=\"\"\n$"));
  r = Run({"delete", "web"});
  EXPECT_EQ(r.exit_code, 4);

  r = Run({"rollback", "web", "--to", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Run({"get", "web"}).exit_code, 0);
}

// ---------------------------------------------------------------------------
// explain, validate

TEST_F(DtabctlRemoteTest, ExplainPrintsBoundTreeAndDelegation) {
  Create("web", "/svc=>/#/io.l5d.fs");
  RunResult r = Run({"explain", "web", "/svc/users"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "namespace=web version=1 path=/svc/users\n"
            "bound: /#/io.l5d.fs/users\n"
            R"(delegation: {"type":"delegate","path":"/svc/users","dentry":null,"delegate":)"
            R"({"type":"leaf","path":"/#/io.l5d.fs/users",)"
            R"("dentry":{"prefix":"/svc","dst":"/#/io.l5d.fs"},)"
            R"("bound":{"id":"/#/io.l5d.fs/users","path":"/"}}})"
            "\n");
  EXPECT_THAT(r.err, IsEmpty());

  r = Run({"explain", "web", "/svc/users", "--override", "/svc/users=>/#/staging"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bound: /#/staging\n"));
}

TEST_F(DtabctlRemoteTest, ExplainBindFailureExitsThree) {
  Create("web", "/a=>/a");
  RunResult r = Run({"explain", "web", "/a", "--max-depth", "5"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, HasSubstr("bound: (failed) Max recursion level: 5 reached"));
  EXPECT_THAT(r.out, HasSubstr("delegation: {\"type\":\"exception\""));
  EXPECT_EQ(r.err, "dtabctl: cannot bind /a: Max recursion level: 5 reached in Namer lookup\n");

  r = Run({"explain", "web", "/a", "--override", "/a=>"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("dtabctl: override: "));
  r = Run({"explain", "nope", "/a"});
  EXPECT_EQ(r.exit_code, 4);
}

TEST_F(DtabctlRemoteTest, ValidatePrintsCanonicalForm) {
  RunResult r = Run({"validate", "-f", "-"}, "# comment\n/svc => /#/a | /#/b;\n/x=>/y;\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/svc=>/#/a | /#/b;/x=>/y\n");

  r = Run({"validate", "--json", "-f", "-"}, "/a=>/b;/c=>/d");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::ValidateDtabResponse resp;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &resp).ok()) << r.out;
  EXPECT_EQ(resp.dentries(), 2);
}

TEST_F(DtabctlRemoteTest, ValidateInvalidDtabExitsTwoWithParserMessage) {
  const std::string file = dir_.Write("bad.dtab", "/foo/");
  const RunResult r = Run({"validate", "-f", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  // The same message as the offline parser's (dtabctl fmt dtab).
  EXPECT_EQ(r.err,
            "dtabctl: invalid dtab: label char expected but end of input found at '/foo/[]'\n");
}

// ---------------------------------------------------------------------------
// --json

TEST_F(DtabctlRemoteTest, JsonOutputIsOneParsableObjectPerResult) {
  RunResult r = Run({"create", "web", "-f", "-", "--json", "--comment", "c"}, "/a=>/b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::VersionedDtab created;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &created).ok()) << r.out;
  EXPECT_EQ(created.namespace_(), "web");
  EXPECT_EQ(created.version(), 1);
  EXPECT_EQ(created.comment(), "c");
  EXPECT_THAT(r.out, HasSubstr("\"created_at\":"));    // proto field names
  EXPECT_THAT(r.out, HasSubstr("\"deleted\":false"));  // defaults printed

  r = Run({"--json", "get", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::VersionedDtab got;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &got).ok()) << r.out;
  EXPECT_EQ(got.dtab(), "/a=>/b");
  EXPECT_EQ(got.author(), "anonymous");
  EXPECT_EQ(got.created_at().seconds(), created.created_at().seconds());

  Create("api", "/x=>/#/y");
  r = Run({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  v1::NamespaceSummary first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &first).ok()) << lines[0];
  EXPECT_EQ(first.namespace_(), "api");

  r = Run({"explain", "--json", "api", "/x/z"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::ExplainResponse explained;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &explained).ok()) << r.out;
  EXPECT_EQ(explained.bound(), "/#/y/z");
  EXPECT_THAT(explained.delegation_json(), StartsWith("{\"type\":\"delegate\""));
}

// ---------------------------------------------------------------------------
// watch

TEST_F(DtabctlRemoteTest, WatchPrintsEachVersionAsItArrives) {
  Create("web", "/a=>/1");
  std::unique_ptr<Child> watch =
      Child::Start({DTABCTL_PATH, "--server", dtabd_->grpc_addr(), "watch", "web"});
  ASSERT_NE(watch, nullptr);
  watch->CloseStdin();

  std::optional<std::string> line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, MatchesRegex(absl::StrCat(
                         "dtab namespace=web version=1 revision=1 author=anonymous created_at=",
                         kTime, " comment=\"\" dtab=/a=>/1")));

  Apply("web", "/a => /2;\n/b => /3;\n");
  line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, StartsWith("dtab namespace=web version=2 revision=2 "));
  EXPECT_THAT(*line, HasSubstr(" dtab=/a=>/2;/b=>/3"));

  ASSERT_EQ(Run({"delete", "web", "--comment", "bye"}).exit_code, 0);
  line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, MatchesRegex(absl::StrCat("deleted namespace=web version=3 revision=3 "
                                               "author=anonymous created_at=",
                                               kTime, " deleted comment=\"bye\"")));

  const int status = watch->Terminate(SIGTERM);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

TEST_F(DtabctlRemoteTest, WatchOfAbsentNamespaceSaysSoThenSeesCreation) {
  std::unique_ptr<Child> watch =
      Child::Start({DTABCTL_PATH, "--json", "--server", dtabd_->grpc_addr(), "watch", "web"});
  ASSERT_NE(watch, nullptr);
  watch->CloseStdin();
  std::optional<std::string> line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  v1::WatchDtabResponse first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*line, &first).ok()) << *line;
  EXPECT_TRUE(first.absent());

  Create("web", "/a=>/1");
  line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  v1::WatchDtabResponse next;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*line, &next).ok()) << *line;
  EXPECT_FALSE(next.absent());
  EXPECT_EQ(next.dtab().version(), 1);
  EXPECT_EQ(next.dtab().dtab(), "/a=>/1");
  watch->Terminate(SIGTERM);
}

TEST_F(DtabctlRemoteTest, WatchEndsWithExitSixWhenServerShutsDown) {
  std::unique_ptr<Child> watch =
      Child::Start({DTABCTL_PATH, "--server", dtabd_->grpc_addr(), "watch", "web"});
  ASSERT_NE(watch, nullptr);
  std::optional<std::string> line = watch->ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line, "absent namespace=web");

  dtabd_->Stop();
  std::string out;
  std::string err;
  EXPECT_EQ(watch->Communicate("", &out, &err), 6) << err;
  EXPECT_THAT(err, StartsWith(absl::StrCat("dtabctl: dtabd at ", dtabd_->grpc_addr(),
                                           " is unavailable: ")));
  EXPECT_THAT(err, HasSubstr("shutting down"));
}

// ---------------------------------------------------------------------------
// connection settings and usage

TEST_F(DtabctlRemoteTest, ServerAndTokenComeFromTheEnvironment) {
  Create("web", "/a=>/1");
  const RunResult r = Dtabctl({"get", "web"}, "", {{"DTABD_ADDR", dtabd_->grpc_addr()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("# namespace=web version=1 "));
}

TEST(DtabctlRemoteUnreachableTest, ClosedPortExitsSix) {
  // A bound but not listening socket: connections are refused, and no other
  // process can take the port meanwhile.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string server = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"list"}, {"get", "web"}, {"watch", "web"}}) {
    std::vector<std::string> full = {"--server", server};
    full.insert(full.end(), args.begin(), args.end());
    const RunResult r = Dtabctl(full);
    EXPECT_EQ(r.exit_code, 6) << args[0] << ": " << r.err;
    EXPECT_THAT(r.out, IsEmpty()) << args[0];
    EXPECT_THAT(r.err, StartsWith(absl::StrCat("dtabctl: dtabd at ", server, " is unavailable: ")))
        << args[0];
  }
  // The same through $DTABD_ADDR.
  const RunResult r = Dtabctl({"list"}, "", {{"DTABD_ADDR", server}});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  close(fd);
}

TEST(DtabctlRemoteUsageTest, UsageErrorsExitTwoWithoutContactingTheServer) {
  // No server anywhere: every case must fail before connecting.
  const std::map<std::string, std::string> env = {{"DTABD_ADDR", "127.0.0.1:1"}};
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"get"}, "dtabctl get: expected NS\n"},
      {{"get", "a", "b"}, "dtabctl get: expected NS\n"},
      {{"create", "web"}, "dtabctl create: -f FILE is required"},
      {{"apply", "web", "-f"}, "dtabctl apply: option '-f' needs a value"},
      {{"apply", "web", "-f", "-", "--expect-version", "x"},
       "dtabctl apply: --expect-version: 'x' is not a positive integer"},
      {{"get", "web", "--version", "0"}, "dtabctl get: --version: '0' is not a positive integer"},
      {{"history", "web", "--bogus", "1"}, "dtabctl history: unknown option '--bogus'"},
      {{"list", "-x"}, "dtabctl list: unknown option '-x'"},
      {{"list", "--json=yes"}, "dtabctl list: option '--json' takes no value"},
      {{"list", "--timeout", "soon"}, "dtabctl list: --timeout: 'soon' is not a positive duration"},
      {{"list", "--timeout", "-1s"}, "dtabctl list: --timeout: '-1s'"},
      {{"diff", "web", "1"}, "dtabctl diff: expected NS V1 V2"},
      {{"explain", "web"}, "dtabctl explain: expected NS and PATH"},
      {{"validate"}, "dtabctl validate: -f FILE is required"},
      {{"--json", "fmt", "path", "/a"}, "dtabctl fmt: option '--json' applies only to remote"},
  };
  for (const Case& c : cases) {
    const RunResult r = Dtabctl(c.args, "", env);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.err;
    EXPECT_THAT(r.out, IsEmpty()) << c.args[0];
    EXPECT_THAT(r.err, StartsWith(c.message)) << c.args[0];
    EXPECT_THAT(r.err, HasSubstr("usage: dtabctl ")) << c.args[0];
  }
}

TEST(DtabctlRemoteUsageTest, HelpDocumentsRemoteCommandsAndExitCodes) {
  RunResult r = Dtabctl({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* text :
       {"list", "get NS [--version V]", "apply NS -f FILE", "watch NS", "--server HOST:PORT",
        "DTABD_TOKEN", "4 not found", "5 conflict", "6 server unreachable", "7 authentication",
        "rollout NS [--wait] [--version V]", "subscribers", "8 rollout --wait timed out",
        "9 rollout --wait: a subscriber rejected"}) {
    EXPECT_THAT(r.out, HasSubstr(text));
  }
  for (const char* command : {"list", "get", "create", "apply", "delete", "history", "diff",
                              "rollback", "watch", "explain", "validate", "rollout",
                              "subscribers"}) {
    r = Dtabctl({"help", command});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, StartsWith(absl::StrCat("usage: dtabctl ", command))) << command;
    r = Dtabctl({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, StartsWith(absl::StrCat("usage: dtabctl ", command))) << command;
  }
  r = Dtabctl({"help", "explain"});
  EXPECT_THAT(r.out, HasSubstr("dtabctl explain NS PATH [--override DTAB]"));
}

TEST(DtabctlRemoteUsageTest, TimeoutBoundsACallToAServerThatNeverAnswers) {
  // A listening socket that never accepts: the TCP handshake completes (the
  // kernel's backlog) but no HTTP/2 settings ever come back.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string server = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  const RunResult r = Dtabctl({"--server", server, "--timeout", "200ms", "list"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("dtabctl: no answer from dtabd at ", server,
                                             " within --timeout 200ms: ")));
  close(fd);
}

// ---------------------------------------------------------------------------
// authentication

class DtabctlRemoteAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tokens =
        dir_.Write("tokens", "# test tokens\nrtok reader read\nwtok writer write\n");
    dtabd_ = Dtabd::Start(dir_.path(), {"--tokens", tokens});
    ASSERT_NE(dtabd_, nullptr);
  }
  void TearDown() override {
    if (dtabd_ != nullptr) {
      dtabd_->Stop();
    }
  }

  RunResult Run(std::vector<std::string> args, absl::string_view input = "",
                const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), {"--server", dtabd_->grpc_addr()});
    return Dtabctl(args, input, env);
  }

  TempDir dir_;
  std::unique_ptr<Dtabd> dtabd_;
};

TEST_F(DtabctlRemoteAuthTest, NoTokenExitsSeven) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"list"}, {"get", "web"}, {"create", "web", "-f", "-"}, {"watch", "web"}}) {
    const RunResult r = Run(args, "/a=>/b");
    EXPECT_EQ(r.exit_code, 7) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err,
              "dtabctl: missing credentials: send 'authorization: Bearer TOKEN' (dtabctl "
              "--token)\n")
        << args[0];
  }
}

TEST_F(DtabctlRemoteAuthTest, UnknownTokenExitsSeven) {
  const RunResult r = Run({"--token", "nope", "list"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.err, "dtabctl: unknown token\n");
}

TEST_F(DtabctlRemoteAuthTest, ReadTokenCanReadButNotWrite) {
  RunResult r = Run({"create", "web", "-f", "-", "--token", "rtok"}, "/a=>/b");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.err, "dtabctl: token of 'reader' is read-only; writing needs a write token\n");
  r = Run({"list"}, "", {{"DTABD_TOKEN", "rtok"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(DtabctlRemoteAuthTest, WriteTokenWritesAndItsIdentityIsTheAuthor) {
  RunResult r = Run({"create", "web", "-f", "-", "--token", "wtok"}, "/a=>/b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // --token overrides $DTABD_TOKEN.
  r = Run({"--token=wtok", "apply", "web", "-f", "-"}, "/a=>/c", {{"DTABD_TOKEN", "rtok"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Run({"get", "web", "--version", "1"}, "", {{"DTABD_TOKEN", "rtok"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("# namespace=web version=1 "));
  EXPECT_THAT(r.out, HasSubstr(" author=writer "));
  r = Run({"history", "web", "--token", "rtok"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\n2 +[0-9]+ +[^ ]+ +writer"));
}

}  // namespace
}  // namespace dtabd::cli
