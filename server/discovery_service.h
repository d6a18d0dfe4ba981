// DiscoveryServiceImpl: dtabd.v1.DiscoveryService, the xDS-like streams
// that deliver dtabs to proxies (DESIGN.md "The streaming API"), plus the
// rollout status operators ask for.
//
// Rules (each tested): every response has a nonce; a request echoing the
// latest nonce is an ACK, or a NACK when error_detail is set; a NACKed
// version is never re-sent, only a newer one; a stream has at most one
// unacknowledged response and changes arriving meanwhile are coalesced to
// the newest version, so a slow or stuck subscriber costs bounded memory and
// never delays others; after a reconnect, versions listed in
// initial_resource_versions are not re-sent and deletions that happened
// meanwhile are reported; names subscribed before they exist are delivered
// when created. Each version of a resource is serialized once and the bytes
// are shared by every stream (raw ByteBuffer methods).
//
// Overload: at most `max_streams` concurrent streams and `new_streams_per_s`
// (burst `new_streams_burst`) new ones; past that a stream ends with
// RESOURCE_EXHAUSTED and trailing metadata grpc-retry-pushback-ms.
//
// Transport: the two streaming methods run on gRPC's async API, spread over
// `stream_queues` completion queues with a thread each; the unary methods
// on the callback API. (The callback API puts every call of the server on
// one queue, and Debian's libgrpc, built without NDEBUG, scans all of a
// queue's outstanding operations on every completion: with 10,000 streams
// that scan was a third of dtabd's CPU.) Wiring: RegisterService, then
// AddQueues on the same builder, BuildAndStart, Start; after the server's
// Shutdown, StopQueues (the destructor does it too).
//
// Thread-safety: thread-safe. Lock order: hub -> stream -> service (the
// hub calls OnDtab, and so streams, under its lock; a stream may take the
// service lock, never the hub's; the service calls streams without its
// lock). queue_mu_ is taken with no other lock held (a queue thread asks for
// the next call before it opens the stream).
#ifndef DTABD_SERVER_DISCOVERY_SERVICE_H_
#define DTABD_SERVER_DISCOVERY_SERVICE_H_

#include <grpcpp/completion_queue.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dtabd/v1/discovery.grpc.pb.h"
#include "server/auth.h"
#include "server/dtab_hub.h"
#include "server/executor.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace dtabd::server {

namespace internal {
class DiscoveryStream;
}  // namespace internal

// One version of one namespace, encoded once: the `resources` field entry
// (tag, length and DtabResource bytes) shared by every response carrying it.
struct EncodedResource {
  std::string name;
  int64_t version = 0;
  int64_t revision = 0;
  bool deleted = false;
  grpc::Slice field;  // refcounted; copies share the bytes
};

class DiscoveryServiceImpl final
    : public v1::DiscoveryService::WithRawMethod_StreamDtabs<
          v1::DiscoveryService::WithRawMethod_DeltaDtabs<
              v1::DiscoveryService::WithCallbackMethod_GetRolloutStatus<
                  v1::DiscoveryService::WithCallbackMethod_ListSubscribers<
                      v1::DiscoveryService::Service>>>>,
      public DtabHub::Subscriber {
 public:
  struct Options {
    int max_streams = 50'000;
    double new_streams_per_s = 1000;
    int new_streams_burst = 2000;
    absl::Duration retry_pushback = absl::Seconds(1);
    // Threads that hand a new version to its streams. Publishing returns
    // once the version is queued, not after every stream got it.
    int fanout_threads = 2;
    // Completion queues (one thread each) the streams are spread over.
    int stream_queues = 8;
  };

  // Subscribes to every namespace of `hub`. `hub` and `auth` must outlive
  // the service; call Shutdown (or hub->Shutdown) before destroying it.
  DiscoveryServiceImpl(DtabHub* hub, const Authenticator* auth, Options options);
  ~DiscoveryServiceImpl() override;

  // Adds the streams' completion queues to `builder` (after RegisterService).
  void AddQueues(grpc::ServerBuilder* builder) ABSL_LOCKS_EXCLUDED(queue_mu_);
  // After BuildAndStart: asks for calls on every queue and starts its thread.
  void Start() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // After the server's Shutdown: shuts the queues down, drains them and
  // joins their threads. Idempotent.
  void StopQueues() ABSL_LOCKS_EXCLUDED(queue_mu_);
  grpc::ServerUnaryReactor* GetRolloutStatus(grpc::CallbackServerContext* ctx,
                                             const v1::RolloutStatusRequest* req,
                                             v1::RolloutStatusResponse* resp) override;
  grpc::ServerUnaryReactor* ListSubscribers(grpc::CallbackServerContext* ctx,
                                            const v1::ListSubscribersRequest* req,
                                            v1::ListSubscribersResponse* resp) override;

  // DtabHub::Subscriber (called under the hub's lock).
  void OnDtab(DtabHub::Snapshot dtab) override;
  void OnShutdown() override;

  // For streams (internal).
  std::shared_ptr<const EncodedResource> Current(const std::string& name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> AllNames() const ABSL_LOCKS_EXCLUDED(mu_);
  // The highest revision seen (streams must not call the hub: it holds
  // its lock while it calls into streams).
  int64_t revision() const ABSL_LOCKS_EXCLUDED(mu_);
  void Watch(const std::string& name, const std::shared_ptr<internal::DiscoveryStream>& s)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Unwatch(const std::string& name, internal::DiscoveryStream* s) ABSL_LOCKS_EXCLUDED(mu_);
  void WatchAll(const std::shared_ptr<internal::DiscoveryStream>& s) ABSL_LOCKS_EXCLUDED(mu_);
  void Remove(internal::DiscoveryStream* s) ABSL_LOCKS_EXCLUDED(mu_);
  // A call arrived on the async API: a new stream, or the error to end the
  // call with (with its retry pushback in ms, 0: none).
  absl::StatusOr<std::shared_ptr<internal::DiscoveryStream>> OpenStream(
      const grpc::ServerContext& ctx, bool delta, int64_t* pushback_ms)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Asks `cq` for the next call of the method (delta or not) unless the
  // queues are stopping.
  void RequestCall(grpc::ServerCompletionQueue* cq, bool delta) ABSL_LOCKS_EXCLUDED(queue_mu_);

 private:
  // Admission control; returns the error to end a new stream with, or OK.
  absl::Status Admit() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<internal::DiscoveryStream>> Streams() const
      ABSL_LOCKS_EXCLUDED(mu_);

  DtabHub* const hub_;
  const Authenticator* const auth_;
  const Options options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const EncodedResource>> current_
      ABSL_GUARDED_BY(mu_);
  // Every live stream, and the streams interested in each name.
  absl::flat_hash_map<internal::DiscoveryStream*, std::shared_ptr<internal::DiscoveryStream>>
      streams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<internal::DiscoveryStream*>> watchers_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<internal::DiscoveryStream*> wildcard_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Token bucket for new streams.
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time refilled_at_ ABSL_GUARDED_BY(mu_);
  // The streams' completion queues and their threads.
  absl::Mutex queue_mu_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_ ABSL_GUARDED_BY(queue_mu_);
  std::vector<std::thread> queue_threads_ ABSL_GUARDED_BY(queue_mu_);
  bool queues_stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  // Declared last so it is destroyed (and drained) first, while the state
  // its tasks use is still alive.
  std::unique_ptr<Executor> fanout_;
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_DISCOVERY_SERVICE_H_
