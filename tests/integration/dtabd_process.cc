#include "tests/integration/dtabd_process.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

#ifndef DTABD_PATH
#error "DTABD_PATH must name the dtabd binary"
#endif

namespace dtabd::integration {

absl::StatusOr<std::unique_ptr<DtabdProcess>> DtabdProcess::Start(Options options) {
  if (options.binary.empty()) {
    options.binary = DTABD_PATH;
  }
  std::unique_ptr<DtabdProcess> p(new DtabdProcess(std::move(options)));
  absl::StatusOr<std::string> dir = testing::MakeTempDir("dtabd-it-");
  if (!dir.ok()) {
    return dir.status();
  }
  p->dir_ = *std::move(dir);
  if (!p->options_.tokens.empty()) {
    std::ofstream out(p->dir_ + "/tokens");
    out << p->options_.tokens;
    if (!out.flush()) {
      return absl::InternalError(absl::StrCat("cannot write ", p->dir_, "/tokens"));
    }
  }
  testing::ChildProcess::Options co;
  co.name = "dtabd";
  co.argv = {p->options_.binary, "--db",         p->db_path(),  "--grpc-addr", "127.0.0.1:0",
             "--http-addr",      "127.0.0.1:0",  "--admin-addr", "127.0.0.1:0"};
  if (!p->options_.tokens.empty()) {
    co.argv.push_back("--tokens");
    co.argv.push_back(p->dir_ + "/tokens");
  }
  co.argv.insert(co.argv.end(), p->options_.extra_args.begin(), p->options_.extra_args.end());
  co.stderr_path = p->stderr_path();
  co.serving_prefix = "dtabd: serving ";
  co.timeout = p->options_.timeout;
  p->child_ = std::make_unique<testing::ChildProcess>(std::move(co));
  if (absl::Status s = p->Spawn(); !s.ok()) {
    return s;  // the child has been killed and reaped; the destructor removes dir_
  }
  return p;
}

DtabdProcess::~DtabdProcess() {
  child_.reset();  // stops dtabd if it runs
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status DtabdProcess::Spawn() {
  absl::StatusOr<std::string> line = child_->Spawn();
  if (!line.ok()) {
    return line.status();
  }
  // "dtabd: serving grpc=H:P http=H:P admin=H:P"
  for (absl::string_view field : absl::StrSplit(*line, ' ', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&field, "grpc=")) {
      grpc_address_ = std::string(field);
    } else if (absl::ConsumePrefix(&field, "http=")) {
      http_address_ = std::string(field);
    } else if (absl::ConsumePrefix(&field, "admin=")) {
      admin_address_ = std::string(field);
    }
  }
  if (grpc_address_.empty()) {
    return absl::UnavailableError(absl::StrCat("no grpc= in serving line '", *line, "'"));
  }
  return absl::OkStatus();
}

std::string DtabdProcess::stderr_output() const { return testing::ReadFileOrEmpty(stderr_path()); }

absl::Status DtabdProcess::Signal(int sig) { return child_->Signal(sig); }

absl::StatusOr<int> DtabdProcess::Wait(std::chrono::milliseconds timeout) {
  return child_->Wait(timeout);
}

absl::StatusOr<int> DtabdProcess::Stop() { return child_->Stop(); }

absl::Status DtabdProcess::Restart() {
  absl::StatusOr<int> code = Stop();
  if (!code.ok()) {
    return code.status();
  }
  if (*code != 0) {
    return absl::InternalError(absl::StrCat("dtabd exited with status ", *code, " on SIGTERM"));
  }
  grpc_address_.clear();
  http_address_.clear();
  admin_address_.clear();
  return Spawn();
}

}  // namespace dtabd::integration
