// DtabClient: the proxy's side of dtabd's DiscoveryService. It subscribes to
// a set of namespaces over one DeltaDtabs stream, hands each new version of
// a namespace (or its removal) to a callback, ACKs what the callback accepts
// and NACKs what it rejects, and keeps the stream up: reconnect with
// jittered exponential backoff, resume with initial_resource_versions, and
// an on-disk cache of the last accepted version of each namespace that is
// delivered at Start(), before dtabd answers.
//
// Delivery contract (per namespace):
//   - Versions are delivered in the order dtabd sends them; a version the
//     client already accepted is never delivered again (not after a
//     reconnect, not after a restart with the cache), and a version the
//     callback rejected is not delivered again (a newer one is).
//   - A removal (std::nullopt) means the namespace does not exist in dtabd:
//     it was deleted, or was never created. It is delivered once per
//     change, including for a name that has never existed (so the proxy
//     learns it is authoritatively absent); a later creation is delivered
//     as a version.
//   - The callback's OK accepts: the version becomes accepted_version(ns),
//     is written to the cache and is ACKed. An error rejects: nothing
//     changes and the response is NACKed with the error's code and message.
//   - One response may carry several namespaces: each is delivered on its
//     own; if any is rejected (or malformed: a duplicate, an unsubscribed
//     name, a version that does not match its dtab) the whole response is
//     NACKed, naming each, while the accepted ones stay accepted.
//   - dtabd is authoritative: a version older than the accepted one (a
//     restored database) is delivered too, with a warning in the log.
//
// Threading: the callback runs on the client's own thread (and, for cached
// versions, on the thread calling Start(), before Start() returns), never
// two at once. It may block (e.g. to build a routing table) but delays
// ACKs and further updates meanwhile. REQUIRES: the callback does not call
// Stop() or destroy the client (that would deadlock).
//
// Thread-safety: Stop() and the accessors are thread-safe.
#ifndef DTABD_DISCOVERY_DTAB_CLIENT_H_
#define DTABD_DISCOVERY_DTAB_CLIENT_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "discovery/backoff.h"
#include "discovery/dtab_cache.h"
#include "dtabd/v1/discovery.grpc.pb.h"

namespace dtabd::discovery {

enum class ConnectionState {
  // Opening a stream and sending the subscription.
  kConnecting,
  // The subscription was sent on an open stream.
  kConnected,
  // The last stream failed; waiting before the next attempt.
  kBackoff,
  // Stop() was called (it may still be waiting for the callback).
  kStopped,
};

absl::string_view ConnectionStateName(ConnectionState s);

class DtabClient {
 public:
  // Called with a namespace and its new version, or std::nullopt when the
  // namespace does not exist. OK accepts (ACK); an error rejects (NACK with
  // its code and message). `dtab` is valid only during the call.
  using UpdateCallback = std::function<absl::Status(const std::string& ns,
                                                    const std::optional<v1::VersionedDtab>& dtab)>;
  // Receives warnings (persistent connection failures, corrupt cache files,
  // cache write errors). Called from the client's thread or Start()'s.
  using Logger = std::function<void(absl::string_view message)>;

  struct Options {
    // dtabd's gRPC address, any gRPC target ("127.0.0.1:4321",
    // "dns:///dtabd.example:4321").
    std::string target;
    // Channel credentials. Default (null): insecure.
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    // With TLS credentials: the name to verify in dtabd's certificate
    // instead of the target's host. Empty: the target's host.
    std::string tls_server_name;
    // Sent as "authorization: Bearer TOKEN" when non-empty.
    std::string token;
    // Who is subscribing; user_agent defaults to "dtabd-discovery-client".
    v1::Node node;
    // The namespaces to subscribe to: non-empty, each valid (duplicates are
    // ignored). Fixed for the client's life.
    std::vector<std::string> namespaces;
    // Where the last accepted version of each namespace is kept (created if
    // missing). Empty: no cache.
    std::string cache_dir;

    // Reconnect backoff (see Backoff): base > 0, max >= base,
    // jitter in [0, 1].
    absl::Duration backoff_base = absl::Milliseconds(500);
    absl::Duration backoff_max = absl::Seconds(30);
    double backoff_jitter = 0.5;
    // Seeds the backoff's jitter. Unset: from std::random_device. Set it in
    // tests for reproducible delays.
    std::optional<uint64_t> random_seed;
    // Consecutive failed attempts (without a message received) tolerated
    // before each further failure is logged. Failures that retrying cannot
    // fix (e.g. UNAUTHENTICATED) are logged at once.
    int warn_after_failures = 3;

    // HTTP/2 keepalive: ping every keepalive_time while the stream is open;
    // the connection is dead if no ack comes within keepalive_timeout.
    absl::Duration keepalive_time = absl::Seconds(20);
    absl::Duration keepalive_timeout = absl::Seconds(10);

    // Default (null): "dtabd discovery: MESSAGE" on std::cerr.
    Logger logger;
  };

  // Counters, for monitoring and tests. Every field is cumulative since
  // Start() unless stated.
  struct Stats {
    ConnectionState state = ConnectionState::kConnecting;
    // Failed attempts since a message was last received (0 while healthy).
    int consecutive_failures = 0;
    // Why the last stream ended or failed (OK if none has).
    absl::Status last_error;
    // Streams opened.
    int64_t streams = 0;
    // Responses received, and ACKs and NACKs written for them.
    int64_t responses = 0;
    int64_t acks = 0;
    int64_t nacks = 0;
    // Callback invocations (including cached versions at Start), and how
    // many were accepted.
    int64_t deliveries = 0;
    int64_t accepted = 0;
    // Versions dtabd sent that the client already had: equal to the
    // accepted one, or already rejected by the callback. Not delivered.
    int64_t redundant = 0;
    // Removals of a namespace already known absent. Not delivered. (Each
    // new stream reports absent names again: the protocol cannot say "I
    // know it is absent" in initial_resource_versions.)
    int64_t redundant_removals = 0;
    // Cached versions delivered at Start() and accepted.
    int64_t from_cache = 0;
  };

  // Validates `options`, opens the cache, delivers each cached version of
  // a subscribed namespace to `callback` (on this thread, before returning;
  // a corrupt file is logged and ignored; a rejected one is removed), then
  // starts the client's thread, which connects in the background.
  // InvalidArgument: empty target or namespaces, an invalid namespace, bad
  // backoff or keepalive settings, or no callback. FailedPrecondition: the
  // cache directory cannot be created.
  static absl::StatusOr<std::unique_ptr<DtabClient>> Start(Options options,
                                                           UpdateCallback callback);

  DtabClient(const DtabClient&) = delete;
  DtabClient& operator=(const DtabClient&) = delete;
  // Stop()s.
  ~DtabClient();

  // Cancels the stream, wakes any backoff wait and joins the client's
  // thread; waits for a running callback to return. No callback runs after
  // Stop() returns. Idempotent and thread-safe. REQUIRES: not called from
  // the callback.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);

  // The version of `ns` the callback last accepted (from dtabd or the
  // cache), or nullopt when none is accepted or the namespace was removed.
  std::optional<int64_t> accepted_version(absl::string_view ns) const ABSL_LOCKS_EXCLUDED(mu_);
  // Every namespace with an accepted version.
  absl::flat_hash_map<std::string, int64_t> accepted_versions() const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the callback accepted a removal of `ns` (dtabd says it does not
  // exist) as the latest news about it.
  bool known_absent(absl::string_view ns) const ABSL_LOCKS_EXCLUDED(mu_);
  ConnectionState connection_state() const ABSL_LOCKS_EXCLUDED(mu_);
  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until `pred(stats())` holds or `timeout` passes, and returns
  // whether it held (e.g. a proxy waiting up to 5s for its first update).
  // `pred` runs under the client's lock whenever the stats change: it must
  // be quick and must not call the client.
  bool AwaitStats(const std::function<bool(const Stats&)>& pred, absl::Duration timeout) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // What the client knows of one subscribed namespace. Invariant: at most
  // one of `accepted` and `absent` is set; `rejected` != `*accepted`.
  struct NamespaceState {
    // The accepted version; nullopt when none.
    std::optional<int64_t> accepted;
    // The callback accepted a removal (and nothing since).
    bool absent = false;
    // The version the callback last rejected (0: none since the last
    // accept), and its error, returned again if dtabd re-sends it.
    int64_t rejected = 0;
    absl::Status rejected_error;
  };

  // How one stream ended.
  struct StreamEnd {
    grpc::Status status;
    // A message was received on it (the backoff restarts).
    bool received = false;
    // grpc-retry-pushback-ms from its trailing metadata, if any.
    std::optional<absl::Duration> pushback;
  };

  DtabClient(Options options, UpdateCallback callback);

  // Delivers the cached versions (Start, before the thread exists).
  void LoadCache() ABSL_LOCKS_EXCLUDED(mu_);
  // The client's thread: streams until Stop().
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits `delay` or until Stop(), asking the channel to reconnect meanwhile.
  void WaitBeforeRetry(absl::Duration delay) ABSL_LOCKS_EXCLUDED(mu_);
  // Opens one stream and serves it until it ends.
  StreamEnd RunStream() ABSL_LOCKS_EXCLUDED(mu_);
  // The first request of a stream: node, subscriptions, accepted versions.
  v1::DeltaDiscoveryRequest InitialRequest() const ABSL_LOCKS_EXCLUDED(mu_);
  // Applies `response` (calling the callback) and returns the ACK or NACK.
  v1::DeltaDiscoveryRequest HandleResponse(const v1::DeltaDiscoveryResponse& response)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers a version (or removal, when `dtab` is null) of `ns`: calls the
  // callback unless the client already has it (or already rejected it);
  // updates the state and, unless `from_cache`, the cache. Returns the
  // callback's error (again, for a version it already rejected), or OK.
  absl::Status Deliver(const std::string& ns, const v1::VersionedDtab* dtab, bool from_cache)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Log(absl::string_view message) const;
  // Sets stats_.state unless Stop() was called.
  void SetStateLocked(ConnectionState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Immutable after construction.
  const Options options_;
  const UpdateCallback callback_;
  // Set by Start() before the client's thread starts, then immutable.
  // cache_ is null without cache_dir; the cache itself is used by Start's
  // thread (LoadCache), then only by the client's.
  std::unique_ptr<DtabCache> cache_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DiscoveryService::Stub> stub_;

  // Owned by the client's thread.
  Backoff backoff_;
  // The backoff wait runs on this queue (an alarm), so the waiting thread
  // polls gRPC's I/O meanwhile: a channel reconnecting in the background
  // is noticed at once, not on gRPC's 5 s backup poll (nothing else polls
  // while a sync client has no call in flight).
  grpc::CompletionQueue backoff_cq_;
  // Persistent failures were logged; the next message logs the recovery.
  bool warned_ = false;

  // Serialises Stop() calls (held while joining).
  absl::Mutex stop_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::thread thread_ ABSL_GUARDED_BY(stop_mu_);

  mutable absl::Mutex mu_;
  // Stop() was called: the thread ends at its next check.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The open stream's context, for Stop() to cancel; null between streams.
  grpc::ClientContext* stream_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The pending backoff alarm, for Stop() to cancel; null when not waiting.
  grpc::Alarm* backoff_alarm_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Every subscribed namespace (keys fixed at construction).
  absl::flat_hash_map<std::string, NamespaceState> namespaces_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dtabd::discovery

#endif  // DTABD_DISCOVERY_DTAB_CLIENT_H_
