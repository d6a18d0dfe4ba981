// dtabd: the dtab control plane. See `dtabd --help`.
#include <pthread.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/dtabd_server.h"

namespace {

constexpr char kUsage[] = R"(usage: dtabd [FLAGS]

Stores versioned dtabs in SQLite and serves them over gRPC (dtabd.v1.DtabService,
health, reflection), namerd's HTTP API and an admin port.

  --db PATH            SQLite database (default var/dtabd.db; created if missing;
                       locked: one dtabd per database)
  --sync normal|full   SQLite synchronous mode (default full: an acknowledged
                       write survives power loss)
  --grpc-addr H:P      gRPC listener (default 127.0.0.1:4321; port 0: any)
  --http-addr H:P      namerd HTTP API listener (default 127.0.0.1:4180)
  --admin-addr H:P     admin listener, /metrics and /ready (default 127.0.0.1:9991)
  --tokens FILE        bearer tokens, lines 'TOKEN IDENTITY read|write';
                       without it dtabd listens on loopback only
  --tls-cert FILE      PEM certificate for TLS on every listener
  --tls-key FILE       PEM private key for --tls-cert
  --max-streams N      DiscoveryService: at most N concurrent streams (default
                       50000)
  --new-streams-per-s R
                       DiscoveryService: admit new streams at R per second
                       (default 1000)...
  --new-streams-burst B
                       ...with bursts of up to B (default 2000). Past either
                       limit a new stream ends with RESOURCE_EXHAUSTED and
                       trailing metadata grpc-retry-pushback-ms

At startup dtabd prints 'dtabd: serving grpc=H:P http=H:P admin=H:P'.
SIGTERM or SIGINT shut it down gracefully.
)";

// Parses --name=value / --name value into `o`. Returns an error message, or
// "" on success; "help" when --help was asked for.
std::string ParseFlags(int argc, char** argv, dtabd::server::DtabdOptions* o) {
  std::string sync = "full";
  std::string max_streams, new_streams_per_s, new_streams_burst;
  const std::map<std::string, std::string*> flags = {
      {"db", &o->db_path},          {"grpc-addr", &o->grpc_addr},
      {"http-addr", &o->http_addr}, {"admin-addr", &o->admin_addr},
      {"tokens", &o->tokens_file},  {"tls-cert", &o->tls_cert_file},
      {"tls-key", &o->tls_key_file}, {"sync", &sync},
      {"max-streams", &max_streams}, {"new-streams-per-s", &new_streams_per_s},
      {"new-streams-burst", &new_streams_burst},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      return "help";
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::StrCat("unexpected argument '", arg, "'");
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags.find(name);
    if (it == flags.end()) {
      return absl::StrCat("unknown flag '--", name, "'");
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::StrCat("flag '--", name, "' needs a value");
      }
      value = argv[++i];
    }
    *it->second = value;
  }
  if (sync != "full" && sync != "normal") {
    return absl::StrCat("--sync='", sync, "': expected 'full' or 'normal'");
  }
  o->synchronous_full = sync == "full";
  for (const auto& [flag, text, out] :
       {std::tuple{"max-streams", &max_streams, &o->max_streams},
        std::tuple{"new-streams-burst", &new_streams_burst, &o->new_streams_burst}}) {
    if (!text->empty() && (!absl::SimpleAtoi(*text, out) || *out < 1)) {
      return absl::StrCat("--", flag, "='", *text, "': expected a positive integer");
    }
  }
  if (!new_streams_per_s.empty() &&
      (!absl::SimpleAtod(new_streams_per_s, &o->new_streams_per_s) ||
       !(o->new_streams_per_s > 0))) {
    return absl::StrCat("--new-streams-per-s='", new_streams_per_s,
                        "': expected a positive number");
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so every absl::Mutex (gRPC's
  // included) records lock order in a global graph and aborts on a cycle.
  // That is a test-time check (the in-process tests keep it); in the binary
  // it costs a global lock per acquisition, as an NDEBUG build would not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  dtabd::server::DtabdOptions o;
  if (std::string err = ParseFlags(argc, argv, &o); !err.empty()) {
    if (err == "help") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "dtabd: " << err << "\n" << kUsage;
    return 2;
  }

  // Signals are taken synchronously below; block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = dtabd::server::DtabdServer::Start(o);
  if (!server.ok()) {
    std::cerr << "dtabd: " << server.status().message() << "\n";
    return 1;
  }
  std::cout << "dtabd: serving grpc=" << (*server)->grpc_address()
            << " http=" << (*server)->http_address() << " admin=" << (*server)->admin_address()
            << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "dtabd: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", shutting down\n";
  (*server)->Shutdown();
  return 0;
}
