// End-to-end tests of the dtabctl binary: each test runs the real
// executable (DTABCTL_PATH, set by CMake) as a child process with the given
// arguments and standard input, and checks its stdout, stderr and exit
// status (0 ok, 2 usage or parse error, 3 bind failure).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef DTABCTL_PATH
#error "DTABCTL_PATH must name the dtabctl binary"
#endif

namespace dtabd::cli {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

struct RunResult {
  int exit_code = -1;  // -1 if the child did not exit normally
  std::string out;
  std::string err;
};

// Runs dtabctl with `args`, feeding `input` on stdin, and collects its
// output. Fatal test failures on any system call error.
RunResult RunDtabctl(const std::vector<std::string>& args, absl::string_view input = "") {
  RunResult result;
  // A child that exits without reading stdin must not kill us with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);

  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }

  // Build argv before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> storage;
  storage.push_back(DTABCTL_PATH);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) {
    argv.push_back(s.data());
  }
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    // dup2 clears O_CLOEXEC on the new descriptors.
    if (dup2(in_pipe[0], STDIN_FILENO) < 0 || dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
        dup2(err_pipe[1], STDERR_FILENO) < 0) {
      _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);

  int in_fd = in_pipe[1];
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0];
  int err_fd = err_pipe[0];
  while (out_fd >= 0 || err_fd >= 0 || in_fd >= 0) {
    pollfd fds[3];
    nfds_t n = 0;
    int* owners[3];
    if (in_fd >= 0) {
      fds[n] = {in_fd, POLLOUT, 0};
      owners[n++] = &in_fd;
    }
    if (out_fd >= 0) {
      fds[n] = {out_fd, POLLIN, 0};
      owners[n++] = &out_fd;
    }
    if (err_fd >= 0) {
      fds[n] = {err_fd, POLLIN, 0};
      owners[n++] = &err_fd;
    }
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      int& fd = *owners[i];
      if (&fd == &in_fd) {
        const ssize_t w = write(fd, input.data() + written, input.size() - written);
        if (w > 0) {
          written += static_cast<size_t>(w);
        }
        if (w < 0 || written == input.size()) {  // done, or the child closed stdin
          close(fd);
          fd = -1;
        }
        continue;
      }
      char buf[4096];
      const ssize_t r = read(fd, buf, sizeof(buf));
      if (r > 0) {
        (&fd == &out_fd ? result.out : result.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        close(fd);
        fd = -1;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << std::strerror(errno);
      return result;
    }
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

// ---------------------------------------------------------------------------
// fmt

struct FmtCase {
  const char* kind;
  const char* text;
  const char* shown;
};

class DtabctlFmtTest : public ::testing::TestWithParam<FmtCase> {};

TEST_P(DtabctlFmtTest, PrintsCanonicalFormAndNewline) {
  const FmtCase& c = GetParam();
  const RunResult r = RunDtabctl({"fmt", c.kind, c.text});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(c.shown, "\n"));
  EXPECT_THAT(r.err, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, DtabctlFmtTest,
    ::testing::Values(FmtCase{"path", "  /foo/bar  ", "/foo/bar"},
                      FmtCase{"path", "/", "/"},
                      FmtCase{"path", "/foo\\x20bar", "/\\x66\\x6f\\x6f\\x20\\x62\\x61\\x72"},
                      FmtCase{"path", "/\\x66\\x6f\\x6F", "/foo"},
                      FmtCase{"prefix", "/foo/*/bar", "/foo/*/bar"},
                      FmtCase{"prefix", "/", "/"},
                      FmtCase{"tree", "/a & 2 * /b | ~", "/a & 2.00*/b | ~"},
                      FmtCase{"tree", "1 * (2*/a & /b)", "2.00*/a & /b"},
                      FmtCase{"tree", "0.125*/a & /b", "0.13*/a & /b"},
                      FmtCase{"dtab", "/foo => /bar;", "/foo=>/bar"},
                      FmtCase{"dtab", "/#foo => /biz # comment\n | /bliz & /bluth",
                              "/#foo=>/biz | /bliz & /bluth"},
                      FmtCase{"dtab", "", ""}));

TEST(DtabctlTest, FmtParseErrorGoesToStderrWithExitTwo) {
  const RunResult r = RunDtabctl({"fmt", "path", "invalid-param"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "dtabctl: invalid path: '/' expected but 'i' found at '[i]nvalid-param'\n");
}

TEST(DtabctlTest, FmtParseErrorOfEachKindExitsTwo) {
  for (const char* kind : {"path", "prefix", "tree", "dtab"}) {
    const RunResult r = RunDtabctl({"fmt", kind, "/foo/"});
    EXPECT_EQ(r.exit_code, 2) << kind;
    EXPECT_THAT(r.out, IsEmpty()) << kind;
    EXPECT_THAT(r.err, StartsWith(absl::StrCat("dtabctl: invalid ", kind, ": "))) << kind;
    EXPECT_THAT(r.err, HasSubstr("end of input found at '/foo/[]'")) << kind;
  }
}

TEST(DtabctlTest, FmtUnknownKindIsUsageError) {
  const RunResult r = RunDtabctl({"fmt", "widget", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("unknown kind 'widget'"));
  EXPECT_THAT(r.err, HasSubstr("usage: dtabctl fmt"));
}

TEST(DtabctlTest, FmtWithoutTextIsUsageError) {
  const RunResult r = RunDtabctl({"fmt", "path"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("usage: dtabctl fmt"));
}

TEST(DtabctlTest, FmtReadsTextFromStdinForDash) {
  const RunResult r = RunDtabctl({"fmt", "dtab", "-"}, "/a => /b ;\n# staging\n/c => /d ;\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/a=>/b;/c=>/d\n");
}

TEST(DtabctlTest, FmtReadsLargeStdin) {
  std::string dtab;
  std::string shown;
  for (int i = 0; i < 5000; ++i) {
    absl::StrAppend(&dtab, "/svc/s", i, " => /#/io.l5d.fs/s", i, " ;\n");
    absl::StrAppend(&shown, i == 0 ? "" : ";", "/svc/s", i, "=>/#/io.l5d.fs/s", i);
  }
  const RunResult r = RunDtabctl({"fmt", "dtab", "-"}, dtab);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, shown + "\n");
}

// ---------------------------------------------------------------------------
// simplify

TEST(DtabctlTest, SimplifyPrintsSimplifiedTree) {
  const RunResult r = RunDtabctl({"simplify", "/a | ~ | ! | /b"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/a | !\n");
  EXPECT_EQ(RunDtabctl({"simplify", "! & !"}).out, "~\n");
  EXPECT_EQ(RunDtabctl({"simplify", "/a & ~ & 3*/b"}).out, "/a & 3.00*/b\n");
}

TEST(DtabctlTest, SimplifyParseErrorExitsTwo) {
  const RunResult r = RunDtabctl({"simplify", "/a |"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: invalid tree: "));
}

// ---------------------------------------------------------------------------
// lookup

TEST(DtabctlTest, LookupPrintsAltOfMatchesLatestFirst) {
  const RunResult r = RunDtabctl({"lookup", "--dtab", "/a=>/b;/a=>/c", "/a/x"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/c/x | /b/x\n");
}

TEST(DtabctlTest, LookupAcceptsOptionWithEquals) {
  const RunResult r = RunDtabctl({"lookup", "--dtab=/svc/*=>/x", "/svc/dog/y"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/x/y\n");
}

TEST(DtabctlTest, LookupWithoutMatchPrintsNeg) {
  const RunResult r = RunDtabctl({"lookup", "--dtab", "/a=>/b", "/ab"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "~\n");
}

TEST(DtabctlTest, LookupDoesNotSimplify) {
  EXPECT_EQ(RunDtabctl({"lookup", "--dtab", "/a=>~;/a=>~", "/a"}).out, "~ | ~\n");
}

TEST(DtabctlTest, LookupReadsPathFromStdinForDash) {
  const RunResult r = RunDtabctl({"lookup", "--dtab", "/a=>/b", "-"}, "/a/c\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/b/c\n");
}

TEST(DtabctlTest, LookupWithoutDtabIsUsageError) {
  const RunResult r = RunDtabctl({"lookup", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("--dtab is required"));
}

TEST(DtabctlTest, LookupInvalidDtabOrPathExitsTwo) {
  RunResult r = RunDtabctl({"lookup", "--dtab", "/a=>", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("dtabctl: invalid dtab: "));
  r = RunDtabctl({"lookup", "--dtab", "/a=>/b", "a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("dtabctl: invalid path: "));
}

TEST(DtabctlTest, LookupRejectsMaxDepthOption) {
  const RunResult r = RunDtabctl({"lookup", "--dtab", "/a=>/b", "--max-depth", "3", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option '--max-depth'"));
}

// ---------------------------------------------------------------------------
// delegate

TEST(DtabctlTest, DelegateShowsBoundLeafAsIdFollowedByResidual) {
  const RunResult r =
      RunDtabctl({"delegate", "--dtab", "/srv=>/$/inet/127.1/8080;/svc=>/srv", "/svc/dog"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/$/inet/127.1/8080/dog\n");
  EXPECT_THAT(r.err, IsEmpty());
}

TEST(DtabctlTest, DelegateBindsHashPathsToThemselvesOffline) {
  const RunResult r = RunDtabctl({"delegate", "--dtab", "/svc=>/#/io.l5d.fs", "/svc/web/v2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/#/io.l5d.fs/web/v2\n");
}

TEST(DtabctlTest, DelegateAppliesLaterDentryAndFallsBack) {
  const RunResult r = RunDtabctl(
      {"delegate", "--dtab", "/svc=>/#/prod;/svc/foo=>/#/staging | ~;/svc/bar=>~", "/svc/bar"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/#/prod/bar\n");
}

TEST(DtabctlTest, DelegateShowsWeightedUnion) {
  const RunResult r =
      RunDtabctl({"delegate", "--dtab", "/s=>2*/t & /#/z;/t=>/#/a & /#/b", "/s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2.00*(/#/a & /#/b) & /#/z\n");
}

TEST(DtabctlTest, DelegateFailTreeIsAResultNotAnError) {
  const RunResult r = RunDtabctl({"delegate", "--dtab", "/s=>! | /#/a", "/s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "!\n");
}

TEST(DtabctlTest, DelegateMaxDepthFailureExitsThree) {
  const RunResult r = RunDtabctl({"delegate", "--dtab", "/a=>/a", "/a"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "dtabctl: cannot bind /a: Max recursion level: 100 reached in Namer lookup\n");
}

TEST(DtabctlTest, DelegateHonoursMaxDepthOption) {
  // /a -> /b -> /c -> /#/d: four lookups.
  const char* const kDtab = "/a=>/b;/b=>/c;/c=>/#/d";
  RunResult r = RunDtabctl({"delegate", "--dtab", kDtab, "--max-depth", "4", "/a"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/#/d\n");
  r = RunDtabctl({"delegate", "--dtab", kDtab, "--max-depth=3", "/a"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("Max recursion level: 3 reached in Namer lookup"));
}

TEST(DtabctlTest, DelegateUnknownSystemNamerExitsThree) {
  const RunResult r = RunDtabctl({"delegate", "--dtab", "/s=>/$/nosuch", "/s/x"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: cannot bind /s/x: "));
  EXPECT_THAT(r.err, HasSubstr("unknown system namer"));
}

TEST(DtabctlTest, DelegateWarnsAboutDroppedUnionBranches) {
  const RunResult r = RunDtabctl({"delegate", "--dtab", "/s=>/#/a & /$/bogus", "/s"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "/#/a\n");
  EXPECT_THAT(r.err, HasSubstr("warning: 1 union branch(es) failed to bind"));
}

TEST(DtabctlTest, DelegateReadsDtabFromStdinForDash) {
  const RunResult r =
      RunDtabctl({"delegate", "--dtab", "-", "/svc/x"}, "# base\n/svc => /$/inet/10.0.0.1/80 ;\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/$/inet/10.0.0.1/80/x\n");
}

TEST(DtabctlTest, DelegateCannotReadBothDtabAndPathFromStdin) {
  const RunResult r = RunDtabctl({"delegate", "--dtab", "-", "-"}, "/a=>/b");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("only one of DTAB and PATH"));
}

TEST(DtabctlTest, DelegateRejectsInvalidMaxDepth) {
  for (const char* bad : {"-1", "ten", ""}) {
    const RunResult r = RunDtabctl({"delegate", "--dtab", "/a=>/b", "--max-depth", bad, "/a"});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_THAT(r.err, HasSubstr("--max-depth")) << bad;
  }
}

TEST(DtabctlTest, DelegateOptionWithoutValueIsUsageError) {
  const RunResult r = RunDtabctl({"delegate", "/a", "--dtab"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("option '--dtab' needs a value"));
}

// ---------------------------------------------------------------------------
// explain

TEST(DtabctlTest, ExplainPrintsLinkerdDelegatorJson) {
  // linkerd's WebDelegatorTest, byte for byte.
  const RunResult r = RunDtabctl({"explain", "--dtab",
                                  "/bah/humbug => /$/inet/127.1/8080 ; /foo => /bah | /$/fail ;"
                                  " /foo => /bar ; /boo => /foo ; /meh => /heh ;",
                                  "/boo/humbug"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(
      r.out,
      R"({"type":"delegate","path":"/boo/humbug","dentry":null,"delegate":{)"
      R"("type":"alt","path":"/foo/humbug","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[)"
      R"({"type":"neg","path":"/bar/humbug","dentry":{"prefix":"/foo","dst":"/bar"}},)"
      R"({"type":"delegate","path":"/bah/humbug","dentry":{"prefix":"/foo","dst":"/bah | /$/fail"},)"
      R"("delegate":{"type":"leaf","path":"/$/inet/127.1/8080",)"
      R"("dentry":{"prefix":"/bah/humbug","dst":"/$/inet/127.1/8080"},"bound":{)"
      R"("addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}},)"
      R"("id":"/$/inet/127.1/8080","path":"/"}}},)"
      R"({"type":"fail","path":"/$/fail/humbug","dentry":{"prefix":"/foo","dst":"/bah | /$/fail"}}]}})"
      "\n");
}

TEST(DtabctlTest, ExplainShowsHashLeafWithoutAddr) {
  const RunResult r = RunDtabctl({"explain", "--dtab", "/svc=>/#/io.l5d.fs", "/svc/web"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            R"({"type":"delegate","path":"/svc/web","dentry":null,"delegate":)"
            R"({"type":"leaf","path":"/#/io.l5d.fs/web",)"
            R"("dentry":{"prefix":"/svc","dst":"/#/io.l5d.fs"},)"
            R"("bound":{"id":"/#/io.l5d.fs/web","path":"/"}}})"
            "\n");
}

TEST(DtabctlTest, ExplainRendersInetAddressOnlyForNumericHosts) {
  RunResult r = RunDtabctl({"explain", "--dtab", "", "/$/inet/8080/x"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            R"({"type":"leaf","path":"/$/inet/8080/x","dentry":null,"bound":{)"
            R"("addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080}],"meta":{}},)"
            R"("id":"/$/inet/8080","path":"/x"}})"
            "\n");
  r = RunDtabctl({"explain", "--dtab", "", "/$/inet/localhost/80"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            R"({"type":"leaf","path":"/$/inet/localhost/80","dentry":null,"bound":{)"
            R"("id":"/$/inet/localhost/80","path":"/"}})"
            "\n");
}

TEST(DtabctlTest, ExplainShowsErrorsInsteadOfFailing) {
  const RunResult r = RunDtabctl({"explain", "--dtab", "/a=>/a", "/a"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            R"({"type":"exception","path":"/a","dentry":null,)"
            R"("message":"Max recursion level reached."})"
            "\n");
}

TEST(DtabctlTest, ExplainRequiresDtab) {
  const RunResult r = RunDtabctl({"explain", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("usage: dtabctl explain"));
}

// ---------------------------------------------------------------------------
// help and usage errors

TEST(DtabctlTest, HelpPrintsTopUsageOnStdout) {
  for (const char* flag : {"--help", "-h", "help"}) {
    const RunResult r = RunDtabctl({flag});
    EXPECT_EQ(r.exit_code, 0) << flag;
    EXPECT_THAT(r.out, StartsWith("usage: dtabctl COMMAND")) << flag;
    EXPECT_THAT(r.out, HasSubstr("delegate --dtab DTAB")) << flag;
    EXPECT_THAT(r.err, IsEmpty()) << flag;
  }
}

TEST(DtabctlTest, HelpCommandPrintsThatCommandsUsage) {
  for (const char* command : {"fmt", "simplify", "lookup", "delegate", "explain"}) {
    const RunResult r = RunDtabctl({"help", command});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, StartsWith(absl::StrCat("usage: dtabctl ", command))) << command;
    EXPECT_THAT(r.out, EndsWith("\n")) << command;
  }
}

TEST(DtabctlTest, CommandHelpFlagPrintsUsageAndIgnoresOtherArguments) {
  const RunResult r = RunDtabctl({"delegate", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, StartsWith("usage: dtabctl delegate"));
  EXPECT_THAT(r.out, HasSubstr("--max-depth"));
}

TEST(DtabctlTest, NoArgumentsIsUsageError) {
  const RunResult r = RunDtabctl({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("usage: dtabctl COMMAND"));
}

TEST(DtabctlTest, UnknownCommandIsUsageError) {
  const RunResult r = RunDtabctl({"frobnicate", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: unknown command 'frobnicate'\n"));
  EXPECT_THAT(r.err, HasSubstr("usage: dtabctl COMMAND"));
}

TEST(DtabctlTest, UnknownOptionIsUsageError) {
  const RunResult r = RunDtabctl({"delegate", "--bogus", "x", "--dtab", "/a=>/b", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("dtabctl: unknown option '--bogus'\n"));
  EXPECT_THAT(r.err, HasSubstr("usage: dtabctl delegate"));
}

TEST(DtabctlTest, FmtTakesNoOptions) {
  const RunResult r = RunDtabctl({"fmt", "--dtab", "/a=>/b", "path", "/a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option '--dtab'"));
}

}  // namespace
}  // namespace dtabd::cli
