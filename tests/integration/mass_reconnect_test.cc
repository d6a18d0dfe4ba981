// 1,000 proxies that lose dtabd's streams at once reconnect with
// initial_resource_versions: all converge on the newest version and none is
// sent a resource it already had (issue 5). Drives the fanout load client
// (benchmarks/fanout/fanout_client.cc), which checks both and exits 1 on a
// straggler, a re-sent resource or a protocol error.
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"

namespace dtabd {
namespace {

TEST(MassReconnectTest, ThousandStreamsDroppedAtOnceResyncWithoutResends) {
  absl::StatusOr<std::unique_ptr<integration::DtabdProcess>> dtabd =
      integration::DtabdProcess::Start();
  ASSERT_TRUE(dtabd.ok()) << dtabd.status();
  const std::string command =
      absl::StrCat(FANOUT_CLIENT_PATH, " --server ", (*dtabd)->grpc_address(),
                   " --streams 1000 --updates 3 --baseline 1 --reconnect --timeout-s 60 2>&1");
  FILE* out = popen(command.c_str(), "r");
  ASSERT_NE(out, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), out)) {
    output.append(buf, n);
  }
  const int status = pclose(out);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("all re-synced"), std::string::npos) << output;
  EXPECT_NE(output.find("; 0 resent"), std::string::npos) << output;
}

}  // namespace
}  // namespace dtabd
