#include "server/dtabd_server.h"

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "http/server.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/dtab_hub.h"
#include "server/discovery_service.h"
#include "server/dtab_service.h"
#include "server/executor.h"
#include "server/health_service.h"
#include "server/namerd_api.h"
#include "storage/sqlite_dtab_store.h"

namespace dtabd::server {
namespace {

struct HostPort {
  std::string host;
  int port = 0;
};

// Splits "HOST:PORT" or "[V6]:PORT". InvalidArgument names the flag.
absl::StatusOr<HostPort> SplitAddress(absl::string_view flag, absl::string_view addr) {
  const size_t colon = addr.rfind(':');
  HostPort hp;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(addr.substr(colon + 1), &hp.port) || hp.port < 0 || hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "='", addr, "': expected HOST:PORT with PORT in 0-65535"));
  }
  hp.host = std::string(addr.substr(0, colon));
  return hp;
}

bool IsLoopback(absl::string_view host) {
  host = absl::StripPrefix(absl::StripSuffix(host, "]"), "[");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

// An exclusive flock(2) on the database file, held for the server's life: a
// second dtabd on the same file would commit writes that this one's
// subscribers never hear of. The kernel drops it if the process dies. Must be
// released only after SQLite has closed the file (closing any descriptor of
// a file drops the process's fcntl locks on it, which SQLite uses).
class DatabaseLock {
 public:
  DatabaseLock() = default;
  DatabaseLock(DatabaseLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DatabaseLock& operator=(DatabaseLock&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~DatabaseLock() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  // Creates the file if missing (SQLite takes an empty file as a new database).
  static absl::StatusOr<DatabaseLock> Acquire(const std::string& path) {
    DatabaseLock lock;
    lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock.fd_ < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("--db='", path, "': cannot open: ", std::strerror(errno)));
    }
    if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return absl::FailedPreconditionError(absl::StrCat(
            "--db='", path,
            "': in use by another dtabd (it holds the file's lock); stop it or choose "
            "another --db"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("--db='", path, "': cannot lock: ", std::strerror(errno)));
    }
    return lock;
  }

 private:
  int fd_ = -1;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DtabdServerImpl final : public DtabdServer {
 public:
  std::string grpc_address() const override { return grpc_address_; }
  std::string http_address() const override { return http_address_; }
  std::string admin_address() const override { return admin_address_; }

  void Shutdown() override {
    if (shut_down_) {
      return;
    }
    shut_down_ = true;
    if (health_ != nullptr) {
      health_->SetNotServing();
    }
    if (admin_ != nullptr) {
      admin_->SetNotReady();
    }
    hub_.Shutdown();  // watch streams finish with UNAVAILABLE: reconnect elsewhere
    if (grpc_server_ != nullptr) {
      grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
    if (discovery_service_ != nullptr) {
      discovery_service_->StopQueues();  // after the server: no call is left
    }
    if (http_server_ != nullptr) {
      http_server_->Shutdown();
    }
    if (admin_server_ != nullptr) {
      admin_server_->Shutdown();
    }
    executor_.reset();  // runs what is queued (in-flight writes), joins
    store_.reset();     // checkpoints and closes the database
  }

  ~DtabdServerImpl() override { Shutdown(); }

  absl::Status Init(const DtabdOptions& o) {
    DTABD_ASSIGN_OR_RETURN(HostPort grpc_hp, SplitAddress("grpc-addr", o.grpc_addr));
    DTABD_ASSIGN_OR_RETURN(HostPort http_hp, SplitAddress("http-addr", o.http_addr));
    DTABD_ASSIGN_OR_RETURN(HostPort admin_hp, SplitAddress("admin-addr", o.admin_addr));
    if (o.max_streams < 1 || !(o.new_streams_per_s > 0) || o.new_streams_burst < 1) {
      return absl::InvalidArgumentError(
          "--max-streams, --new-streams-per-s and --new-streams-burst must be positive");
    }
    if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
    }
    if (o.tokens_file.empty()) {
      for (const auto& [flag, hp, addr] :
           {std::tuple{"grpc-addr", &grpc_hp, &o.grpc_addr},
            std::tuple{"http-addr", &http_hp, &o.http_addr},
            std::tuple{"admin-addr", &admin_hp, &o.admin_addr}}) {
        if (!IsLoopback(hp->host)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "--", flag, "='", *addr,
              "' is not a loopback address: without --tokens dtabd only listens on loopback "
              "(anyone could write dtabs)"));
        }
      }
      auth_ = Authenticator::AllowAll();
    } else {
      DTABD_ASSIGN_OR_RETURN(auth_, Authenticator::Load(o.tokens_file));
    }

    if (o.db_path != ":memory:") {
      const std::filesystem::path parent = std::filesystem::path(o.db_path).parent_path();
      std::error_code ec;
      if (!parent.empty()) {
        std::filesystem::create_directories(parent, ec);
        if (ec) {
          return absl::FailedPreconditionError(absl::StrCat(
              "--db='", o.db_path, "': cannot create directory '", parent.string(), "': ",
              ec.message()));
        }
      }
    }
    if (o.db_path != ":memory:") {
      DTABD_ASSIGN_OR_RETURN(db_lock_, DatabaseLock::Acquire(o.db_path));
    }
    storage::SqliteDtabStore::Options sopts;
    sopts.path = o.db_path;
    sopts.synchronous_full = o.synchronous_full;
    absl::StatusOr<std::unique_ptr<storage::SqliteDtabStore>> store =
        storage::SqliteDtabStore::Open(sopts);
    if (!store.ok()) {  // e.g. "file is not a database": say which file
      return absl::Status(store.status().code(),
                          absl::StrCat("--db='", o.db_path, "': ", store.status().message()));
    }
    store_ = *std::move(store);
    DTABD_RETURN_IF_ERROR(SeedHub());

    executor_ = std::make_unique<Executor>(o.storage_threads);
    dtab_service_ = std::make_unique<DtabServiceImpl>(store_.get(), &hub_, executor_.get(),
                                                      auth_.get());
    DiscoveryServiceImpl::Options dopts;
    dopts.max_streams = o.max_streams;
    dopts.new_streams_per_s = o.new_streams_per_s;
    dopts.new_streams_burst = o.new_streams_burst;
    discovery_service_ = std::make_unique<DiscoveryServiceImpl>(&hub_, auth_.get(), dopts);
    health_ = std::make_unique<HealthServiceImpl>(
        std::vector<std::string>{"dtabd.v1.DtabService", "dtabd.v1.DiscoveryService"});

    // With --tls-cert/--tls-key, TLS applies to every listener: gRPC, the
    // namerd HTTP API and the admin endpoints.
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    std::string cert;
    std::string key;
    if (!o.tls_cert_file.empty()) {
      DTABD_ASSIGN_OR_RETURN(cert, ReadFile(o.tls_cert_file));
      DTABD_ASSIGN_OR_RETURN(key, ReadFile(o.tls_key_file));
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({key, cert});
      creds = grpc::SslServerCredentials(ssl);
    }
    namerd_api_ = std::make_unique<NamerdHttpApi>(store_.get(), &hub_, executor_.get(),
                                                  auth_.get());
    http::Server::Options hopts;
    hopts.address = o.http_addr;
    hopts.tls_cert_pem = cert;
    hopts.tls_key_pem = key;
    DTABD_ASSIGN_OR_RETURN(
        http_server_,
        http::Server::Start(hopts, [api = namerd_api_.get()](const http::Request& req,
                                                              http::Responder resp) {
          api->Handle(req, std::move(resp));
        }));
    admin_ = std::make_unique<AdminApi>(&hub_);
    http::Server::Options aopts;
    aopts.address = o.admin_addr;
    aopts.tls_cert_pem = cert;
    aopts.tls_key_pem = key;
    DTABD_ASSIGN_OR_RETURN(
        admin_server_,
        http::Server::Start(aopts, [api = admin_.get()](const http::Request& req,
                                                         http::Responder resp) {
          api->Handle(req, std::move(resp));
        }));
    // gRPC last: the HTTP listeners above report a bad certificate or key
    // with a precise message, gRPC only as a failure to listen.
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(o.grpc_addr, creds, &port);
    builder.RegisterService(dtab_service_.get());
    builder.RegisterService(discovery_service_.get());
    discovery_service_->AddQueues(&builder);
    builder.RegisterService(health_.get());
    // gRPC binds with SO_REUSEPORT by default: a second dtabd on the same
    // port would start and silently take half the connections, to another
    // database. Refuse the port instead.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Detect dead peers in seconds: ping idle connections, accept client
    // pings down to 10 s apart.
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    grpc_server_ = builder.BuildAndStart();
    if (grpc_server_ == nullptr || port == 0) {
      return absl::UnavailableError(
          absl::StrCat("--grpc-addr='", o.grpc_addr, "': cannot listen (address in use?)"));
    }
    discovery_service_->Start();
    grpc_address_ = absl::StrCat(grpc_hp.host, ":", port);
    http_address_ = http_server_->address();
    admin_address_ = admin_server_->address();
    return absl::OkStatus();
  }

 private:
  // Loads the latest version of every namespace (tombstones too, so that
  // readers learn of deletions that happened before a restart).
  absl::Status SeedHub() {
    DTABD_ASSIGN_OR_RETURN(std::vector<storage::VersionedDtab> all, store_->LatestOfAll());
    for (storage::VersionedDtab& v : all) {
      hub_.Publish(std::move(v));
    }
    return absl::OkStatus();
  }

  // Destroyed in reverse order: the gRPC server before the services it
  // calls, the executor before the store it uses, the store before the lock.
  DatabaseLock db_lock_;
  std::unique_ptr<storage::SqliteDtabStore> store_;
  DtabHub hub_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<DtabServiceImpl> dtab_service_;
  std::unique_ptr<DiscoveryServiceImpl> discovery_service_;
  std::unique_ptr<HealthServiceImpl> health_;
  std::unique_ptr<NamerdHttpApi> namerd_api_;
  std::unique_ptr<AdminApi> admin_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<http::Server> http_server_;
  std::unique_ptr<http::Server> admin_server_;
  std::string grpc_address_;
  std::string http_address_;
  std::string admin_address_;
  bool shut_down_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DtabdServer>> DtabdServer::Start(const DtabdOptions& options) {
  auto server = std::make_unique<DtabdServerImpl>();
  DTABD_RETURN_IF_ERROR(server->Init(options));
  return server;
}

}  // namespace dtabd::server
