#include "discovery/dtab_client.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace dtabd::discovery {
namespace {

constexpr char kDefaultUserAgent[] = "dtabd-discovery-client";
constexpr char kPushbackKey[] = "grpc-retry-pushback-ms";

int Millis(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT32_MAX));
}

// Codes after which an immediate retry may succeed: dtabd restarting or
// overloaded, the connection lost, or the stream ended cleanly. Others
// (UNAUTHENTICATED, UNIMPLEMENTED, ...) need an operator; they are retried
// slowly and logged at once.
bool IsRetriable(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::optional<absl::Duration> Pushback(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(kPushbackKey);
  if (it == trailers.end()) {
    return std::nullopt;
  }
  int64_t ms = 0;
  if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) || ms < 0) {
    return std::nullopt;
  }
  return absl::Milliseconds(ms);
}

uint64_t RandomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

Backoff::Options BackoffOptions(const DtabClient::Options& o) {
  Backoff::Options b;
  b.base = o.backoff_base;
  b.max = o.backoff_max;
  b.jitter = o.backoff_jitter;
  return b;
}

absl::Status Validate(const DtabClient::Options& o) {
  if (o.target.empty()) {
    return absl::InvalidArgumentError("dtab client: target is empty");
  }
  if (o.namespaces.empty()) {
    return absl::InvalidArgumentError("dtab client: no namespaces to subscribe to");
  }
  for (const std::string& ns : o.namespaces) {
    DTABD_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  }
  if (o.backoff_base <= absl::ZeroDuration() || o.backoff_max < o.backoff_base) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dtab client: backoff_base (", absl::FormatDuration(o.backoff_base),
        ") must be positive and at most backoff_max (", absl::FormatDuration(o.backoff_max), ")"));
  }
  if (!(o.backoff_jitter >= 0 && o.backoff_jitter <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtab client: backoff_jitter ", o.backoff_jitter, " is not in [0, 1]"));
  }
  if (o.keepalive_time < absl::Seconds(10) || o.keepalive_timeout <= absl::ZeroDuration()) {
    // dtabd accepts pings no more often than every 10 s.
    return absl::InvalidArgumentError(
        absl::StrCat("dtab client: keepalive_time (", absl::FormatDuration(o.keepalive_time),
                     ") must be at least 10s and keepalive_timeout (",
                     absl::FormatDuration(o.keepalive_timeout), ") positive"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view ConnectionStateName(ConnectionState s) {
  switch (s) {
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kBackoff:
      return "backoff";
    case ConnectionState::kStopped:
      return "stopped";
  }
  return "unknown";
}

DtabClient::DtabClient(Options options, UpdateCallback callback)
    : options_(std::move(options)),
      callback_(std::move(callback)),
      backoff_(BackoffOptions(options_), options_.random_seed.value_or(RandomSeed())) {
  absl::MutexLock lock(&mu_);
  for (const std::string& ns : options_.namespaces) {
    namespaces_[ns];
  }
}

absl::StatusOr<std::unique_ptr<DtabClient>> DtabClient::Start(Options options,
                                                              UpdateCallback callback) {
  DTABD_RETURN_IF_ERROR(Validate(options));
  if (!callback) {
    return absl::InvalidArgumentError("dtab client: no callback");
  }
  // Subscribe to each name once, in the order given.
  absl::flat_hash_set<std::string> seen;
  std::vector<std::string> unique;
  for (std::string& ns : options.namespaces) {
    if (seen.insert(ns).second) {
      unique.push_back(std::move(ns));
    }
  }
  options.namespaces = std::move(unique);
  if (options.node.user_agent().empty()) {
    options.node.set_user_agent(kDefaultUserAgent);
  }
  std::unique_ptr<DtabClient> client(new DtabClient(std::move(options), std::move(callback)));
  const Options& o = client->options_;
  if (!o.cache_dir.empty()) {
    DTABD_ASSIGN_OR_RETURN(client->cache_, DtabCache::Open(o.cache_dir));
    client->LoadCache();
  }

  grpc::ChannelArguments args;
  // Detect a dead dtabd or a silent middlebox: ping the open stream, and
  // keep pinging while no data flows (the default stops after 2 pings).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(o.keepalive_time));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(o.keepalive_timeout));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // The channel's own reconnect backoff follows ours, so a stream attempt
  // after our delay is not failed fast by a longer channel backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, Millis(o.backoff_base));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, Millis(o.backoff_max));
  // This client's connection state is its own, not shared with other
  // channels to the same target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, o.node.user_agent());
  if (!o.tls_server_name.empty()) {
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, o.tls_server_name);
  }
  client->channel_ = grpc::CreateCustomChannel(
      o.target, o.credentials != nullptr ? o.credentials : grpc::InsecureChannelCredentials(),
      args);
  client->stub_ = v1::DiscoveryService::NewStub(client->channel_);

  absl::MutexLock lock(&client->stop_mu_);
  client->thread_ = std::thread([c = client.get()] { c->Run(); });
  return client;
}

DtabClient::~DtabClient() { Stop(); }

void DtabClient::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stats_.state = ConnectionState::kStopped;
    if (stream_context_ != nullptr) {
      stream_context_->TryCancel();
    }
    if (backoff_alarm_ != nullptr) {
      backoff_alarm_->Cancel();
    }
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void DtabClient::SetStateLocked(ConnectionState state) {
  if (!stopping_) {
    stats_.state = state;
  }
}

std::optional<int64_t> DtabClient::accepted_version(absl::string_view ns) const {
  absl::MutexLock lock(&mu_);
  auto it = namespaces_.find(ns);
  return it == namespaces_.end() ? std::nullopt : it->second.accepted;
}

absl::flat_hash_map<std::string, int64_t> DtabClient::accepted_versions() const {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<std::string, int64_t> out;
  for (const auto& [ns, st] : namespaces_) {
    if (st.accepted.has_value()) {
      out[ns] = *st.accepted;
    }
  }
  return out;
}

bool DtabClient::known_absent(absl::string_view ns) const {
  absl::MutexLock lock(&mu_);
  auto it = namespaces_.find(ns);
  return it != namespaces_.end() && it->second.absent;
}

ConnectionState DtabClient::connection_state() const {
  absl::MutexLock lock(&mu_);
  return stats_.state;
}

DtabClient::Stats DtabClient::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool DtabClient::AwaitStats(const std::function<bool(const Stats&)>& pred,
                            absl::Duration timeout) const {
  // Evaluated by absl::Mutex with mu_ held.
  struct Eval {
    const std::function<bool(const Stats&)>* pred;
    const Stats* stats;
    bool operator()() const { return (*pred)(*stats); }
  };
  absl::MutexLock lock(&mu_);
  const Eval eval{&pred, &stats_};
  return mu_.AwaitWithTimeout(absl::Condition(&eval), timeout);
}

void DtabClient::Log(absl::string_view message) const {
  if (options_.logger) {
    options_.logger(message);
    return;
  }
  std::cerr << "dtabd discovery: " << message << "\n";
}

void DtabClient::LoadCache() {
  for (const std::string& ns : options_.namespaces) {
    absl::StatusOr<v1::VersionedDtab> cached = cache_->Read(ns);
    if (absl::IsNotFound(cached.status())) {
      continue;
    }
    if (!cached.ok()) {
      Log(absl::StrCat("ignoring the cached dtab of namespace '", ns,
                       "': ", cached.status().ToString()));
      continue;
    }
    absl::Status s = Deliver(ns, &*cached, /*from_cache=*/true);
    if (!s.ok()) {
      Log(absl::StrCat("the callback rejected cached version ", cached->version(),
                       " of namespace '", ns, "' (", s.ToString(),
                       "); removing it from the cache"));
      if (absl::Status r = cache_->Remove(ns); !r.ok()) {
        Log(r.ToString());
      }
      continue;
    }
    absl::MutexLock lock(&mu_);
    ++stats_.from_cache;
  }
}

void DtabClient::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        break;
      }
      SetStateLocked(ConnectionState::kConnecting);
    }
    const StreamEnd end = RunStream();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        break;
      }
    }
    const bool retriable = IsRetriable(end.status.error_code());
    absl::Duration delay;
    if (end.pushback.has_value()) {
      delay = backoff_.NextWithPushback(*end.pushback);
    } else if (retriable) {
      delay = backoff_.Next();
    } else {
      // Needs an operator (a token, a newer dtabd): retry slowly.
      delay = std::max(backoff_.Next(), options_.backoff_max / 2);
    }
    const int failures = backoff_.failures();
    const absl::Status error = FromGrpc(end.status);
    {
      absl::MutexLock lock(&mu_);
      SetStateLocked(ConnectionState::kBackoff);
      stats_.consecutive_failures = failures;
      stats_.last_error = error;
    }
    if (!retriable || failures > options_.warn_after_failures) {
      warned_ = true;
      Log(absl::StrCat("stream to '", options_.target, "' failed",
                       end.received ? "" : absl::StrCat(" (", failures, " attempts in a row)"),
                       ": ", error.ToString(), "; retrying in ", absl::FormatDuration(delay)));
    }
    WaitBeforeRetry(delay);
  }
  backoff_cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (backoff_cq_.Next(&tag, &ok)) {
  }
}

void DtabClient::WaitBeforeRetry(absl::Duration delay) {
  grpc::Alarm alarm;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return;
    }
    backoff_alarm_ = &alarm;  // Stop() may cancel it from now on
    alarm.Set(&backoff_cq_, std::chrono::system_clock::now() + absl::ToChronoNanoseconds(delay),
              &alarm);
  }
  // Start reconnecting now (an idle channel waits for a call otherwise).
  (void)channel_->GetState(/*try_to_connect=*/true);
  void* tag = nullptr;
  bool ok = false;
  (void)backoff_cq_.Next(&tag, &ok);  // the alarm fired or was cancelled
  absl::MutexLock lock(&mu_);
  backoff_alarm_ = nullptr;
}

DtabClient::StreamEnd DtabClient::RunStream() {
  StreamEnd end;
  grpc::ClientContext ctx;
  if (!options_.token.empty()) {
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      end.status = grpc::Status::CANCELLED;
      return end;
    }
    stream_context_ = &ctx;  // Stop() may cancel it from now on
    ++stats_.streams;
  }
  {
    std::unique_ptr<grpc::ClientReaderWriter<v1::DeltaDiscoveryRequest, v1::DeltaDiscoveryResponse>>
        stream = stub_->DeltaDtabs(&ctx);
    if (stream->Write(InitialRequest())) {
      {
        absl::MutexLock lock(&mu_);
        SetStateLocked(ConnectionState::kConnected);
      }
      v1::DeltaDiscoveryResponse response;
      while (stream->Read(&response)) {
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) {
            break;  // deliver nothing once Stop() was called
          }
        }
        if (!end.received) {
          // The backoff restarts only once dtabd has answered: a stream that
          // opens and closes at once keeps backing off.
          end.received = true;
          if (warned_) {
            Log(absl::StrCat("stream to '", options_.target, "' re-established after ",
                             backoff_.failures(), " failed attempts"));
            warned_ = false;
          }
          backoff_.Reset();
          absl::MutexLock lock(&mu_);
          stats_.consecutive_failures = 0;
        }
        const v1::DeltaDiscoveryRequest reply = HandleResponse(response);
        if (!stream->Write(reply)) {
          break;  // the stream is over; Finish says why
        }
        absl::MutexLock lock(&mu_);
        ++(reply.has_error_detail() ? stats_.nacks : stats_.acks);
      }
    }
    // A failed Write means the call is over; drain what is left so Finish
    // may be called.
    v1::DeltaDiscoveryResponse ignored;
    while (stream->Read(&ignored)) {
    }
    end.status = stream->Finish();
  }
  end.pushback = Pushback(ctx);
  absl::MutexLock lock(&mu_);
  stream_context_ = nullptr;
  return end;
}

v1::DeltaDiscoveryRequest DtabClient::InitialRequest() const {
  v1::DeltaDiscoveryRequest req;
  *req.mutable_node() = options_.node;
  for (const std::string& ns : options_.namespaces) {
    req.add_resource_names_subscribe(ns);
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [ns, st] : namespaces_) {
    if (st.accepted.has_value()) {
      (*req.mutable_initial_resource_versions())[ns] = absl::StrCat(*st.accepted);
    }
  }
  return req;
}

v1::DeltaDiscoveryRequest DtabClient::HandleResponse(const v1::DeltaDiscoveryResponse& response) {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::vector<std::string> errors;
  // The resources the callback rejected; a malformed response (`name`
  // empty) is rejected whole, which the NACK says by naming none.
  std::vector<std::string> rejected;
  bool rejected_whole = false;
  auto reject = [&](const std::string& name, const absl::Status& s) {
    if (code == absl::StatusCode::kOk) {
      code = s.code();
    }
    errors.emplace_back(s.message());
    if (name.empty()) {
      rejected_whole = true;
    } else {
      rejected.push_back(name);
    }
  };
  auto subscribed = [this](const std::string& ns) {
    absl::MutexLock lock(&mu_);
    return namespaces_.contains(ns);
  };

  absl::flat_hash_set<std::string> seen;
  for (const v1::DtabResource& r : response.resources()) {
    if (!seen.insert(r.name()).second) {
      reject("", absl::InvalidArgumentError(
          absl::StrCat("resource '", r.name(), "' appears twice in the response")));
      continue;
    }
    if (!subscribed(r.name())) {
      reject("", absl::InvalidArgumentError(
          absl::StrCat("resource '", r.name(), "' was not subscribed to")));
      continue;
    }
    int64_t version = 0;
    if (!absl::SimpleAtoi(r.version(), &version) || version < 1) {
      reject("", absl::InvalidArgumentError(
          absl::StrCat("resource '", r.name(), "': bad version '", r.version(), "'")));
      continue;
    }
    if (!r.has_dtab() || r.dtab().namespace_() != r.name() || r.dtab().version() != version) {
      reject("", absl::InvalidArgumentError(absl::StrCat(
          "resource '", r.name(), "' version ", version, ": its dtab is ",
          r.has_dtab() ? absl::StrCat("'", r.dtab().namespace_(), "' version ", r.dtab().version())
                       : "missing")));
      continue;
    }
    // A tombstone is a removal.
    const v1::VersionedDtab* dtab = r.dtab().deleted() ? nullptr : &r.dtab();
    if (absl::Status s = Deliver(r.name(), dtab, /*from_cache=*/false); !s.ok()) {
      reject(r.name(), absl::Status(s.code(), absl::StrCat("namespace '", r.name(), "' version ",
                                                           version, ": ", s.message())));
    }
  }
  for (const std::string& name : response.removed_resources()) {
    if (!seen.insert(name).second) {
      reject("", absl::InvalidArgumentError(
          absl::StrCat("resource '", name, "' is both sent and removed, or removed twice")));
      continue;
    }
    if (!subscribed(name)) {
      continue;  // a removal of something we do not hold is harmless
    }
    if (absl::Status s = Deliver(name, nullptr, /*from_cache=*/false); !s.ok()) {
      reject(name,
             absl::Status(s.code(), absl::StrCat("namespace '", name, "' removal: ", s.message())));
    }
  }

  v1::DeltaDiscoveryRequest reply;
  reply.set_response_nonce(response.nonce());
  if (!errors.empty()) {
    v1::ErrorDetail* e = reply.mutable_error_detail();
    e->set_code(static_cast<int32_t>(code));
    e->set_message(absl::StrJoin(errors, "; "));
    if (!rejected_whole) {
      for (const std::string& name : rejected) {
        e->add_resource_names(name);
      }
    }
  }
  absl::MutexLock lock(&mu_);
  ++stats_.responses;
  return reply;
}

absl::Status DtabClient::Deliver(const std::string& ns, const v1::VersionedDtab* dtab,
                                 bool from_cache) {
  std::optional<int64_t> accepted;
  {
    absl::MutexLock lock(&mu_);
    NamespaceState& st = namespaces_[ns];
    if (dtab == nullptr && st.absent) {
      ++stats_.redundant_removals;
      return absl::OkStatus();
    }
    if (dtab != nullptr && st.accepted == dtab->version()) {
      ++stats_.redundant;
      return absl::OkStatus();
    }
    if (dtab != nullptr && st.rejected == dtab->version()) {
      ++stats_.redundant;
      return st.rejected_error;
    }
    accepted = st.accepted;
    ++stats_.deliveries;
  }
  if (dtab != nullptr && accepted.has_value() && dtab->version() < *accepted) {
    Log(absl::StrCat("namespace '", ns, "': dtabd sent version ", dtab->version(),
                     ", older than the accepted version ", *accepted, "; delivering it"));
  }
  const absl::Status s =
      callback_(ns, dtab != nullptr ? std::optional<v1::VersionedDtab>(*dtab) : std::nullopt);
  if (!s.ok()) {
    absl::MutexLock lock(&mu_);
    NamespaceState& st = namespaces_[ns];
    if (dtab != nullptr) {
      st.rejected = dtab->version();
      st.rejected_error = s;
    }
    return s;
  }
  if (cache_ != nullptr && !from_cache) {
    // Best effort: a cache that cannot be written costs a faster start only.
    const absl::Status c = dtab != nullptr ? cache_->Write(*dtab) : cache_->Remove(ns);
    if (!c.ok()) {
      Log(c.ToString());
    }
  }
  absl::MutexLock lock(&mu_);
  NamespaceState& st = namespaces_[ns];
  st.accepted = dtab != nullptr ? std::optional<int64_t>(dtab->version()) : std::nullopt;
  st.absent = dtab == nullptr;
  st.rejected = 0;
  st.rejected_error = absl::OkStatus();
  ++stats_.accepted;
  return absl::OkStatus();
}

}  // namespace dtabd::discovery
