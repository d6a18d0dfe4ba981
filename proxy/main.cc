// dtab-proxy: the HTTP data plane. See proxy/config.h for the configuration
// file and proxy/data_plane.h for what happens to each request.
//
//   dtab-proxy --config FILE [--node-id ID] [--drain-timeout SECONDS]
//
// Prints "dtab-proxy: serving admin=HOST:PORT LABEL=HOST:PORT ..." once
// every listener is bound; SIGTERM or SIGINT drains (in-flight requests
// finish, up to the drain timeout) and exits 0. Exit 2: bad usage or
// configuration; 1: cannot start.
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dtab/interpreter.h"
#include "dtab/parser.h"
#include "proxy/admin.h"
#include "proxy/balancer.h"
#include "proxy/config.h"
#include "proxy/control_plane.h"
#include "proxy/data_plane.h"
#include "proxy/fs_namer.h"
#include "proxy/router.h"

namespace dtabd::proxy {
namespace {

constexpr char kUsage[] =
    "usage: dtab-proxy --config FILE [--node-id ID] [--drain-timeout SECONDS]\n"
    "  --config FILE           the YAML configuration (see README)\n"
    "  --node-id ID            this proxy's name in dtabd's rollout status\n"
    "                          (default: dtab-proxy@HOSTNAME:PID)\n"
    "  --drain-timeout SECONDS how long SIGTERM waits for in-flight requests (default 10)\n";

int Fail(int code, absl::string_view message) {
  std::cerr << "dtab-proxy: " << message << std::endl;
  return code;
}

int Run(int argc, char** argv) {
  std::string config_path;
  std::string node_id;
  double drain_seconds = 10;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    auto value = [&](absl::string_view flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--config") {
      const char* v = value(arg);
      if (v == nullptr) return Fail(2, "--config needs a file\n" + std::string(kUsage));
      config_path = v;
    } else if (absl::StartsWith(arg, "--config=")) {
      config_path = std::string(arg.substr(9));
    } else if (arg == "--node-id") {
      const char* v = value(arg);
      if (v == nullptr) return Fail(2, "--node-id needs a value");
      node_id = v;
    } else if (arg == "--drain-timeout") {
      const char* v = value(arg);
      if (v == nullptr || !absl::SimpleAtod(v, &drain_seconds) || drain_seconds < 0) {
        return Fail(2, "--drain-timeout needs a number of seconds >= 0");
      }
    } else {
      return Fail(2, absl::StrCat("unknown argument '", arg, "'\n", kUsage));
    }
  }
  if (config_path.empty()) return Fail(2, absl::StrCat("--config is required\n", kUsage));
  absl::StatusOr<ProxyConfig> config = LoadConfig(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  if (node_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    node_id = absl::StrCat("dtab-proxy@", host, ":", getpid());
  }

  // Signals are handled by sigwait below: block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<FsMount> mounts;
  std::vector<dtab::NamerBinding> bindings;
  std::vector<std::unique_ptr<FsNamer>> namers;
  for (const NamerConfig& n : config->namers) {
    absl::StatusOr<dtab::Path> prefix = dtab::ParsePath(n.prefix);
    if (!prefix.ok()) return Fail(2, absl::StrCat("namer prefix: ", prefix.status().message()));
    dtab::Path mount{"#"};
    mount.AppendPath(*prefix);
    FsNamer::Options o;
    o.root_dir = n.root_dir;
    o.prefix = mount;
    absl::StatusOr<std::unique_ptr<FsNamer>> namer = FsNamer::Start(std::move(o));
    if (!namer.ok()) return Fail(1, absl::StrCat("namer ", n.kind, ": ", namer.status().message()));
    std::shared_ptr<const FsNamer> shared = std::move(*namer);
    mounts.push_back({mount, shared});
    bindings.push_back({mount, shared});
  }
  auto interpreter = std::make_shared<const dtab::Interpreter>(std::move(bindings));
  EndpointRegistry registry;
  std::vector<std::unique_ptr<Router>> routers;
  std::vector<Router*> router_ptrs;
  for (const RouterConfig& rc : config->routers) {
    auto router = std::make_unique<Router>(rc, interpreter, mounts, &registry);
    if (rc.static_dtab.has_value()) {
      absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(*rc.static_dtab);
      if (!d.ok()) return Fail(2, absl::StrCat("router '", rc.label, "': ", d.status().message()));
      router->table().Publish(
          std::make_shared<const RoutingTable>(RoutingTable::State::kStatic, *std::move(d)));
    }
    router_ptrs.push_back(router.get());
    routers.push_back(std::move(router));
  }

  DataPlane::Options dpo;
  dpo.workers = config->workers > 0 ? config->workers
                                    : std::max(1u, std::thread::hardware_concurrency());
  absl::StatusOr<std::unique_ptr<DataPlane>> data_plane = DataPlane::Start(router_ptrs, dpo);
  if (!data_plane.ok()) return Fail(1, data_plane.status().message());

  std::unique_ptr<ControlPlane> control_plane;
  bool any_ns = false;
  for (const RouterConfig& rc : config->routers) any_ns |= rc.ns.has_value();
  if (any_ns) {
    absl::StatusOr<std::unique_ptr<ControlPlane>> cp =
        ControlPlane::Start(*config->control_plane, router_ptrs, node_id);
    if (!cp.ok()) return Fail(1, absl::StrCat("control_plane: ", cp.status().message()));
    control_plane = *std::move(cp);
  }

  Admin::Sources sources;
  sources.config = &*config;
  sources.routers = router_ptrs;
  sources.data_plane = data_plane->get();
  sources.control_plane = control_plane.get();
  sources.endpoints = &registry;
  sources.fs_namers = mounts;
  absl::StatusOr<std::unique_ptr<Admin>> admin = Admin::Start(std::move(sources));
  if (!admin.ok()) return Fail(1, admin.status().message());

  std::string line = absl::StrCat("dtab-proxy: serving admin=", (*admin)->address());
  for (size_t i = 0; i < routers.size(); ++i) {
    for (const std::string& a : (*data_plane)->addresses()[i]) {
      absl::StrAppend(&line, " ", routers[i]->label(), "=", a);
    }
  }
  std::cout << line << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "dtab-proxy: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", draining"
            << std::endl;
  (*data_plane)->Drain(absl::Seconds(drain_seconds));
  admin->reset();
  control_plane.reset();
  return 0;
}

}  // namespace
}  // namespace dtabd::proxy

int main(int argc, char** argv) {
  // As in dtabd: abseil's lock-order graph is a test-time check (Debian builds
  // abseil without NDEBUG); the in-process tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return dtabd::proxy::Run(argc, argv);
}
