#include "tests/testing/proxy_process.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

#ifndef DTAB_PROXY_PATH
#error "DTAB_PROXY_PATH must name the dtab-proxy binary"
#endif

namespace dtabd::testing {
namespace {

// Whether `yaml` has a top-level `admin:` key (a line starting with it).
bool HasTopLevelAdmin(absl::string_view yaml) {
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    if (absl::StartsWith(line, "admin:")) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProxyProcess>> ProxyProcess::Start(Options options) {
  if (options.binary.empty()) {
    options.binary = DTAB_PROXY_PATH;
  }
  absl::StatusOr<TempDir> dir = TempDir::Create("dtab-proxy-it-");
  if (!dir.ok()) {
    return dir.status();
  }
  std::unique_ptr<ProxyProcess> p(new ProxyProcess(*std::move(dir)));
  for (const std::string& d : options.dirs) {
    std::error_code ec;
    std::filesystem::create_directories(p->dir_.Join(d), ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot create ", p->dir_.Join(d), ": ",
                                              ec.message()));
    }
  }
  for (const auto& [path, contents] : options.files) {
    if (absl::Status s = WriteFileAtomically(p->dir_.Join(path), contents); !s.ok()) {
      return s;
    }
  }
  std::string yaml = absl::StrReplaceAll(options.yaml, {{"{{DIR}}", p->dir()}});
  for (const auto& [from, to] : options.substitutions) {
    yaml = absl::StrReplaceAll(yaml, {{from, to}});
  }
  if (!HasTopLevelAdmin(yaml)) {
    yaml = absl::StrCat("admin: {ip: 127.0.0.1, port: 0}\n", yaml);
  }
  p->config_text_ = yaml;
  if (absl::Status s = WriteFileAtomically(p->config_path(), yaml); !s.ok()) {
    return s;
  }

  ChildProcess::Options co;
  co.name = "dtab-proxy";
  co.argv = {options.binary, "--config", p->config_path()};
  co.argv.insert(co.argv.end(), options.extra_args.begin(), options.extra_args.end());
  co.stderr_path = p->stderr_path();
  co.serving_prefix = "dtab-proxy: serving ";
  co.timeout = options.timeout;
  p->child_ = std::make_unique<ChildProcess>(std::move(co));
  absl::StatusOr<std::string> line = p->child_->Spawn();
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat(line.status().message(), "\nconfig:\n", yaml));
  }
  // "dtab-proxy: serving admin=H:P LABEL=H:P ..."
  absl::string_view fields = *line;
  fields.remove_prefix(std::string_view("dtab-proxy: serving ").size());
  for (absl::string_view field : absl::StrSplit(fields, ' ', absl::SkipEmpty())) {
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return absl::UnavailableError(absl::StrCat("bad field '", field, "' in '", *line, "'"));
    }
    const absl::string_view label = field.substr(0, eq);
    const absl::string_view address = field.substr(eq + 1);
    if (label == "admin" && p->admin_address_.empty()) {
      p->admin_address_ = std::string(address);
    } else {
      p->listeners_.push_back({std::string(label), std::string(address)});
    }
  }
  if (p->admin_address_.empty()) {
    return absl::UnavailableError(absl::StrCat("no admin= in serving line '", *line, "'"));
  }
  return p;
}

ProxyProcess::~ProxyProcess() { child_.reset(); }

std::string ProxyProcess::address(absl::string_view label, size_t index) const {
  for (const Listener& l : listeners_) {
    if (l.label == label) {
      if (index == 0) {
        return l.address;
      }
      --index;
    }
  }
  return "";
}

absl::StatusOr<int> ProxyProcess::Stop() { return child_->Stop(); }

absl::StatusOr<int> ProxyProcess::Kill() { return child_->Kill(); }

}  // namespace dtabd::testing
