#include "examples/hello-world/service.h"

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dtabd::examples {
namespace {

std::string Usage(absl::string_view summary, const std::vector<Flag>& flags) {
  std::string out = absl::StrCat("usage: ", summary, "\n");
  for (const Flag& f : flags) {
    absl::StrAppend(&out, "  --", f.name, " VALUE\n      ", f.help, " (default ",
                    f.value->empty() ? "none" : *f.value, ")\n");
  }
  return out;
}

}  // namespace

std::optional<int> ParseFlagsOrExit(int argc, char** argv, absl::string_view summary,
                                    const std::vector<Flag>& flags) {
  absl::string_view program = argv[0];
  program = program.substr(program.rfind('/') + 1);  // npos + 1 == 0
  auto fail = [&](absl::string_view message) {
    std::cerr << program << ": " << message << "\n" << Usage(summary, flags);
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << Usage(summary, flags);
      return 0;
    }
    if (!absl::StartsWith(arg, "--")) {
      return fail(absl::StrCat("unexpected argument '", arg, "'"));
    }
    const absl::string_view body = arg.substr(2);
    const size_t eq = body.find('=');
    const absl::string_view name = body.substr(0, eq);
    const Flag* flag = nullptr;
    for (const Flag& f : flags) {
      if (name == f.name) {
        flag = &f;
      }
    }
    if (flag == nullptr) {
      return fail(absl::StrCat("unknown flag '--", name, "'"));
    }
    if (eq != absl::string_view::npos) {
      *flag->value = std::string(body.substr(eq + 1));
    } else if (i + 1 < argc) {
      *flag->value = argv[++i];
    } else {
      return fail(absl::StrCat("--", name, " needs a value"));
    }
  }
  return std::nullopt;
}

void SelfAddress::Set(std::string address) {
  absl::MutexLock lock(&mu_);
  address_ = std::move(address);
}

std::string SelfAddress::Get() const {
  absl::MutexLock lock(&mu_);
  return address_;
}

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

int WaitForStopSignal(const sigset_t& signals) {
  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  return sig;
}

}  // namespace dtabd::examples
