#include "server/discovery_service.h"

#include <grpcpp/server_builder.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/grpc_status.h"

namespace dtabd::server {
namespace internal {

// What a DiscoveryStream asks of its gRPC call. Called under the stream's
// lock; at most one read, one write and one finish outstanding. Completions
// come back as DiscoveryStream::OnReadDone/OnWriteDone; after
// DiscoveryStream::Detach nothing calls it.
class StreamCall {
 public:
  virtual void StartRead(grpc::ByteBuffer* in) = 0;
  virtual void StartWrite(const grpc::ByteBuffer* out) = 0;
  virtual void Finish(grpc::Status status) = 0;

 protected:
  ~StreamCall() = default;
};

// Per-name delivery state of one stream, also what rollout status reports.
struct NameState {
  int64_t known = 0;     // version the client holds (0: none)
  int64_t acked = 0;     // last version ACKed
  int64_t nacked = -1;   // last version NACKed (-1: none)
  std::string nack_error;
  int64_t sent = -1;     // last version sent (0: a removal; -1: nothing)
};

int64_t ParseVersion(const std::string& v) {
  int64_t out = 0;
  return absl::SimpleAtoi(v, &out) && out > 0 ? out : 0;
}

std::string VersionString(int64_t v) { return v > 0 ? absl::StrCat(v) : std::string(); }

// One DiscoveryService stream (state of the world or delta). Owned jointly
// by its call and the service's registry; the call pointer is valid until
// Detach (guarded by mu_), so late fan-out after the call ended does
// nothing.
class DiscoveryStream : public std::enable_shared_from_this<DiscoveryStream> {
 public:
  DiscoveryStream(DiscoveryServiceImpl* service, bool delta, std::string peer)
      : service_(service), delta_(delta), peer_(std::move(peer)), connected_at_(absl::Now()) {}

  void Attach(StreamCall* call) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    call_ = call;
    call_->StartRead(&in_);
  }

  // The call's read completed.
  void OnReadDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!ok) {  // the client closed its side or the call broke
      FinishLocked(grpc::Status::OK);
      return;
    }
    bool parsed = false;
    if (delta_) {
      v1::DeltaDiscoveryRequest req;
      parsed = grpc::SerializationTraits<v1::DeltaDiscoveryRequest>::Deserialize(&in_, &req).ok();
      if (parsed) {
        OnDeltaRequestLocked(req);
      }
    } else {
      v1::DiscoveryRequest req;
      parsed = grpc::SerializationTraits<v1::DiscoveryRequest>::Deserialize(&in_, &req).ok();
      if (parsed) {
        OnSotwRequestLocked(req);
      }
    }
    if (!parsed) {
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed request"));
      return;
    }
    if (!finished_) {
      in_.Clear();
      call_->StartRead(&in_);
    }
  }

  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    out_.Clear();
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    MaybeSendLocked();
  }

  // A newer version of `name` exists (called without the service lock).
  void MarkDirty(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (finished_) {
      return;
    }
    dirty_.insert(name);
    MaybeSendLocked();
  }

  void Finish(grpc::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    FinishLocked(std::move(status));
  }

  // The call is over: after this, nothing touches it.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    call_ = nullptr;
  }

  void FillSubscriber(v1::Subscriber* s) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    s->set_node_id(node_.id());
    s->set_cluster(node_.cluster());
    s->set_user_agent(node_.user_agent());
    s->set_peer(peer_);
    s->set_stream(delta_ ? "delta" : "sotw");
    if (wildcard_) {
      s->add_resource_names("*");
    }
    std::vector<std::string> names(subscribed_.begin(), subscribed_.end());
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      s->add_resource_names(n);
    }
    const int64_t us = absl::ToUnixMicros(connected_at_);
    s->mutable_connected_at()->set_seconds(us / 1'000'000);
    s->mutable_connected_at()->set_nanos(static_cast<int32_t>(us % 1'000'000) * 1000);
  }

  // This stream's status for `name`, if it subscribes to it.
  std::optional<v1::NodeRolloutStatus> Rollout(const std::string& name) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!wildcard_ && !subscribed_.contains(name)) {
      return std::nullopt;
    }
    v1::NodeRolloutStatus st;
    st.set_node_id(node_.id());
    st.set_cluster(node_.cluster());
    st.set_peer(peer_);
    const int64_t us = absl::ToUnixMicros(connected_at_);
    st.mutable_connected_at()->set_seconds(us / 1'000'000);
    st.mutable_connected_at()->set_nanos(static_cast<int32_t>(us % 1'000'000) * 1000);
    if (auto it = names_.find(name); it != names_.end()) {
      const NameState& ns = it->second;
      // A client that resumed with initial_resource_versions holds `known`
      // without having ACKed it on this stream: that counts as applied.
      const int64_t applied = std::max(ns.acked, ns.known);
      st.set_acked_version(VersionString(applied));
      if (ns.nacked >= 0 && ns.nacked > applied) {
        st.set_nacked_version(VersionString(ns.nacked));
        st.set_nack_error(ns.nack_error);
      }
      st.set_sent_version(VersionString(ns.sent));
    }
    return st;
  }

 private:
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || call_ == nullptr) {
      finished_ = true;
      return;
    }
    finished_ = true;
    call_->Finish(std::move(status));
  }

  void SubscribeLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (name == "*") {
      if (!wildcard_) {
        wildcard_ = true;
        service_->WatchAll(shared_from_this());
        for (std::string& n : service_->AllNames()) {
          dirty_.insert(std::move(n));
        }
      }
      return;
    }
    if (subscribed_.insert(name).second) {
      service_->Watch(name, shared_from_this());
    }
    dirty_.insert(name);
  }

  void UnsubscribeLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (name == "*") {
      wildcard_ = false;  // the service drops wildcard streams on Remove
      return;
    }
    if (subscribed_.erase(name) > 0) {
      service_->Unwatch(name, this);
    }
    dirty_.erase(name);
    force_.erase(name);
    names_[name].known = 0;
  }

  // Applies an ACK or NACK of the outstanding response, if the nonce is its.
  // `error` is null for an ACK; for a NACK that names resources, only those
  // are rejected and the rest of the response counts as applied.
  void AckLocked(const std::string& nonce, const v1::ErrorDetail* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (nonce.empty() || !outstanding_ || nonce != outstanding_nonce_) {
      return;  // first request, spontaneous request, or a stale nonce
    }
    outstanding_ = false;
    const bool nack = error != nullptr;
    for (const auto& [name, version] : outstanding_sent_) {
      NameState& st = names_[name];
      const bool rejected =
          nack && (error->resource_names().empty() ||
                   std::find(error->resource_names().begin(), error->resource_names().end(),
                             name) != error->resource_names().end());
      if (rejected) {
        st.nacked = version;
        st.nack_error = error->message();
      } else {
        st.known = version;
        st.acked = version;
      }
    }
    outstanding_sent_.clear();
    if (!delta_) {
      // Only the latest rejected state is held back, and only until the
      // client applies another one.
      if (nack) {
        sotw_nacked_state_ = std::move(sotw_pending_state_);
      } else {
        sotw_acked_state_ = std::move(sotw_pending_state_);
        sotw_nacked_state_.reset();
      }
      sotw_pending_state_.clear();
    }
  }

  void OnDeltaRequestLocked(const v1::DeltaDiscoveryRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (first_request_) {
      first_request_ = false;
      node_ = req.node();
      for (const auto& [name, version] : req.initial_resource_versions()) {
        names_[name].known = ParseVersion(version);
        // Evaluated even if only a wildcard covers it: it may have been
        // deleted while the client was away (SubscribeLocked("*") marks
        // only live names).
        dirty_.insert(name);
      }
      for (const std::string& n : req.resource_names_subscribe()) {
        SubscribeLocked(n);
        // Must answer for names the client does not claim to hold.
        if (n != "*" && names_[n].known == 0) {
          force_.insert(n);
        }
      }
    } else {
      for (const std::string& n : req.resource_names_subscribe()) {
        SubscribeLocked(n);
        if (n != "*") {
          force_.insert(n);  // the client may have forgotten it: always send
          names_[n].nacked = -1;
        }
      }
    }
    for (const std::string& n : req.resource_names_unsubscribe()) {
      UnsubscribeLocked(n);
    }
    AckLocked(req.response_nonce(), req.has_error_detail() ? &req.error_detail() : nullptr);
    MaybeSendLocked();
  }

  void OnSotwRequestLocked(const v1::DiscoveryRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool first = first_request_;
    if (first) {
      first_request_ = false;
      node_ = req.node();
    }
    AckLocked(req.response_nonce(), req.has_error_detail() ? &req.error_detail() : nullptr);
    // The requested set replaces the previous one; an empty set on a stream
    // that never named a resource is a wildcard subscription.
    absl::flat_hash_set<std::string> wanted(req.resource_names().begin(),
                                            req.resource_names().end());
    if (!names_ever_) {
      names_ever_ = !wanted.empty();
    }
    const bool wildcard = wanted.contains("*") || (!names_ever_ && wanted.empty());
    wanted.erase("*");
    bool changed = first || wildcard != wildcard_ || wanted != subscribed_;
    if (changed) {
      std::vector<std::string> old(subscribed_.begin(), subscribed_.end());
      for (const std::string& n : old) {
        if (!wanted.contains(n)) {
          UnsubscribeLocked(n);
        }
      }
      for (const std::string& n : wanted) {
        SubscribeLocked(n);
      }
      if (wildcard) {
        SubscribeLocked("*");
      } else {
        wildcard_ = false;
      }
      sotw_must_respond_ = true;
    }
    MaybeSendLocked();
  }

  void MaybeSendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || outstanding_ || call_ == nullptr || first_request_) {
      return;  // one unacknowledged response at a time; dirty names wait
    }
    if (delta_) {
      SendDeltaLocked();
    } else {
      SendSotwLocked();
    }
  }

  bool WantsLocked(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return wildcard_ || subscribed_.contains(name);
  }

  void SendDeltaLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (dirty_.empty()) {
      return;
    }
    std::vector<grpc::Slice> resources;
    v1::DeltaDiscoveryResponse header;
    absl::flat_hash_map<std::string, int64_t> sent;
    for (const std::string& name : dirty_) {
      if (!WantsLocked(name)) {
        continue;
      }
      const bool force = force_.contains(name);
      NameState& st = names_[name];
      std::shared_ptr<const EncodedResource> cur = service_->Current(name);
      if (cur != nullptr && !cur->deleted) {
        if (!force && (cur->version == st.known || cur->version == st.nacked)) {
          continue;
        }
        resources.push_back(cur->field);
        sent[name] = cur->version;
      } else if (force || st.known != 0) {
        header.add_removed_resources(name);
        sent[name] = 0;
      }
    }
    dirty_.clear();
    force_.clear();
    if (sent.empty()) {
      return;
    }
    header.set_system_version_info(absl::StrCat(service_->revision()));
    WriteLocked(&header, std::move(resources), std::move(sent));
  }

  void SendSotwLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (dirty_.empty() && !sotw_must_respond_) {
      return;
    }
    dirty_.clear();
    // The full state of the subscribed set.
    std::vector<std::string> names;
    if (wildcard_) {
      names = service_->AllNames();
    } else {
      names.assign(subscribed_.begin(), subscribed_.end());
    }
    std::sort(names.begin(), names.end());
    std::vector<grpc::Slice> resources;
    absl::flat_hash_map<std::string, int64_t> state;
    for (const std::string& name : names) {
      std::shared_ptr<const EncodedResource> cur = service_->Current(name);
      if (cur != nullptr && !cur->deleted) {
        resources.push_back(cur->field);
        state[name] = cur->version;
      }
    }
    // Never re-send a state the client has (ACKed) or rejected (NACKed),
    // unless its subscription changed (it must get an answer).
    if (!sotw_must_respond_ && (state == sotw_acked_state_ || state == sotw_nacked_state_)) {
      return;
    }
    sotw_must_respond_ = false;
    v1::DiscoveryResponse header;
    header.set_version_info(absl::StrCat(service_->revision()));
    // Names the client held that are gone count as sent removals.
    absl::flat_hash_map<std::string, int64_t> sent = state;
    for (const auto& [name, version] : sotw_acked_state_) {
      if (!state.contains(name)) {
        sent[name] = 0;
      }
    }
    sotw_pending_state_ = state;
    WriteLocked(&header, std::move(resources), std::move(sent));
  }

  // Serializes `header` (every field but the resources), appends the shared
  // resource slices and starts the write.
  void WriteLocked(google::protobuf::Message* header, std::vector<grpc::Slice> resources,
                   absl::flat_hash_map<std::string, int64_t> sent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string nonce = absl::StrCat(++nonce_counter_);
    const google::protobuf::FieldDescriptor* nonce_field =
        header->GetDescriptor()->FindFieldByName("nonce");
    header->GetReflection()->SetString(header, nonce_field, nonce);
    const std::string head = header->SerializeAsString();
    std::vector<grpc::Slice> slices;
    slices.reserve(resources.size() + 1);
    slices.emplace_back(head.data(), head.size());
    for (grpc::Slice& s : resources) {
      slices.push_back(std::move(s));
    }
    out_ = grpc::ByteBuffer(slices.data(), slices.size());
    for (const auto& [name, version] : sent) {
      names_[name].sent = version;
    }
    outstanding_ = true;
    outstanding_nonce_ = nonce;
    outstanding_sent_ = std::move(sent);
    writing_ = true;
    call_->StartWrite(&out_);
  }

  DiscoveryServiceImpl* const service_;
  const bool delta_;
  const std::string peer_;
  const absl::Time connected_at_;

  mutable absl::Mutex mu_;
  StreamCall* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ByteBuffer in_ ABSL_GUARDED_BY(mu_);   // the pending read's buffer
  grpc::ByteBuffer out_ ABSL_GUARDED_BY(mu_);  // untouched until OnWriteDone
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool first_request_ ABSL_GUARDED_BY(mu_) = true;
  v1::Node node_ ABSL_GUARDED_BY(mu_);
  bool wildcard_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<std::string> subscribed_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, NameState> names_ ABSL_GUARDED_BY(mu_);
  // Names whose current version must be (re)evaluated for sending.
  absl::flat_hash_set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  // Delta: names to send even if the client seems to hold them.
  absl::flat_hash_set<std::string> force_ ABSL_GUARDED_BY(mu_);
  // The response awaiting ACK/NACK: its nonce and name -> version sent.
  bool outstanding_ ABSL_GUARDED_BY(mu_) = false;
  std::string outstanding_nonce_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> outstanding_sent_ ABSL_GUARDED_BY(mu_);
  uint64_t nonce_counter_ ABSL_GUARDED_BY(mu_) = 0;
  // SotW bookkeeping.
  bool names_ever_ ABSL_GUARDED_BY(mu_) = false;
  bool sotw_must_respond_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, int64_t> sotw_pending_state_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> sotw_acked_state_ ABSL_GUARDED_BY(mu_);
  // The rejected state, if any (none: even an empty state was not).
  std::optional<absl::flat_hash_map<std::string, int64_t>> sotw_nacked_state_ ABSL_GUARDED_BY(mu_);
};

// A completion-queue tag: Proceed runs on the queue's thread with the
// operation's result.
class Tag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// One StreamDtabs or DeltaDtabs call on the async API, from the request for
// it until its last completion, when it deletes itself. `pending_` counts
// the operations whose tags are still to come back: the request, then the
// done notification, and at most one read, one write and one finish. The
// done notification detaches the stream first, so no operation starts
// after the count can reach zero.
class AsyncStreamCall final : public StreamCall {
 public:
  // Asks `cq` for the next call of the method; the object lives until that
  // call is over (or the request fails at shutdown).
  static void Request(DiscoveryServiceImpl* service, grpc::ServerCompletionQueue* cq,
                      bool delta) {
    auto* call = new AsyncStreamCall(service, cq, delta);
    call->ctx_.AsyncNotifyWhenDone(&call->done_);
    if (delta) {
      service->RequestDeltaDtabs(&call->ctx_, &call->rw_, cq, cq, &call->started_);
    } else {
      service->RequestStreamDtabs(&call->ctx_, &call->rw_, cq, cq, &call->started_);
    }
  }

  void StartRead(grpc::ByteBuffer* in) override {
    pending_.fetch_add(1, std::memory_order_relaxed);
    rw_.Read(in, &read_);
  }
  void StartWrite(const grpc::ByteBuffer* out) override {
    pending_.fetch_add(1, std::memory_order_relaxed);
    rw_.Write(*out, &write_);
  }
  void Finish(grpc::Status status) override {
    pending_.fetch_add(1, std::memory_order_relaxed);
    rw_.Finish(status, &finish_);
  }

 private:
  class Op final : public Tag {
   public:
    Op(AsyncStreamCall* call, void (AsyncStreamCall::*on_done)(bool))
        : call_(call), on_done_(on_done) {}
    void Proceed(bool ok) override { (call_->*on_done_)(ok); }

   private:
    AsyncStreamCall* const call_;
    void (AsyncStreamCall::*const on_done_)(bool);
  };

  AsyncStreamCall(DiscoveryServiceImpl* service, grpc::ServerCompletionQueue* cq, bool delta)
      : service_(service), cq_(cq), delta_(delta) {}
  ~AsyncStreamCall() = default;

  // The call arrived (ok), or the server is shutting down (not ok: no call,
  // and no done notification will come).
  void OnStarted(bool ok) {
    if (!ok) {
      Release();
      return;
    }
    pending_.fetch_add(1, std::memory_order_relaxed);  // the done notification
    service_->RequestCall(cq_, delta_);                 // the next one
    int64_t pushback_ms = 0;
    absl::StatusOr<std::shared_ptr<DiscoveryStream>> stream =
        service_->OpenStream(ctx_, delta_, &pushback_ms);
    if (!stream.ok()) {
      if (pushback_ms > 0) {
        ctx_.AddTrailingMetadata("grpc-retry-pushback-ms", absl::StrCat(pushback_ms));
      }
      Finish(ToGrpcStatus(stream.status()));
    } else {
      stream_ = *std::move(stream);
      stream_->Attach(this);
    }
    Release();
  }
  void OnRead(bool ok) {
    stream_->OnReadDone(ok);
    Release();
  }
  void OnWrite(bool ok) {
    stream_->OnWriteDone(ok);
    Release();
  }
  void OnFinished(bool /*ok*/) { Release(); }
  // The call is over (finished, cancelled or broken).
  void OnDone(bool /*ok*/) {
    if (stream_ != nullptr) {
      stream_->Detach();
      service_->Remove(stream_.get());
    }
    Release();
  }
  void Release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  DiscoveryServiceImpl* const service_;
  grpc::ServerCompletionQueue* const cq_;
  const bool delta_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> rw_{&ctx_};
  std::shared_ptr<DiscoveryStream> stream_;  // null for a rejected call
  std::atomic<int> pending_{1};              // the request
  Op started_{this, &AsyncStreamCall::OnStarted};
  Op read_{this, &AsyncStreamCall::OnRead};
  Op write_{this, &AsyncStreamCall::OnWrite};
  Op finish_{this, &AsyncStreamCall::OnFinished};
  Op done_{this, &AsyncStreamCall::OnDone};
};

// Runs the tags `cq` returns until it is shut down and drained.
void RunQueue(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    static_cast<Tag*>(tag)->Proceed(ok);
  }
}

}  // namespace internal

using internal::DiscoveryStream;

namespace {

std::shared_ptr<const EncodedResource> Encode(const storage::VersionedDtab& v) {
  auto e = std::make_shared<EncodedResource>();
  e->name = v.ns;
  e->version = v.version;
  e->revision = v.revision;
  e->deleted = v.deleted;
  // A response holding only this resource is exactly its `resources`
  // field entry (field 2 in both response messages).
  v1::DeltaDiscoveryResponse holder;
  v1::DtabResource* r = holder.add_resources();
  r->set_name(v.ns);
  r->set_version(absl::StrCat(v.version));
  ToProto(v, r->mutable_dtab());
  const std::string bytes = holder.SerializeAsString();
  e->field = grpc::Slice(bytes.data(), bytes.size());
  return e;
}

}  // namespace

DiscoveryServiceImpl::DiscoveryServiceImpl(DtabHub* hub, const Authenticator* auth,
                                           Options options)
    : hub_(hub),
      auth_(auth),
      options_(options),
      fanout_(std::make_unique<Executor>(std::max(1, options.fanout_threads))) {
  {
    absl::MutexLock lock(&mu_);
    tokens_ = options_.new_streams_burst;
    refilled_at_ = absl::Now();
  }
  bool shut_down = false;
  // Called before any stream exists; the hub's lock orders this with
  // publishes, which then arrive through OnDtab.
  for (const DtabHub::Snapshot& s : hub_->SubscribeAll(this, &shut_down)) {
    auto e = Encode(*s);
    absl::MutexLock lock(&mu_);
    revision_ = std::max(revision_, e->revision);
    current_[e->name] = std::move(e);
  }
}

DiscoveryServiceImpl::~DiscoveryServiceImpl() {
  StopQueues();
  hub_->UnsubscribeAll(this);
}

void DiscoveryServiceImpl::OnDtab(DtabHub::Snapshot dtab) {
  std::shared_ptr<const EncodedResource> e = Encode(*dtab);
  std::vector<std::shared_ptr<DiscoveryStream>> targets;
  {
    absl::MutexLock lock(&mu_);
    current_[e->name] = e;
    revision_ = std::max(revision_, e->revision);
    if (auto it = watchers_.find(e->name); it != watchers_.end()) {
      for (DiscoveryStream* s : it->second) {
        targets.push_back(streams_.at(s));
      }
    }
    auto named = watchers_.find(e->name);
    for (DiscoveryStream* s : wildcard_) {
      if (named != watchers_.end() && named->second.contains(s)) {
        continue;  // already notified by name
      }
      targets.push_back(streams_.at(s));
    }
  }
  // Few streams: inline. Many: split over the fan-out threads so that the
  // publisher (and the hub's lock) is not held for the whole fan-out.
  constexpr size_t kInlineMax = 64;
  if (targets.size() <= kInlineMax) {
    for (const auto& s : targets) {
      s->MarkDirty(e->name);
    }
    return;
  }
  const size_t shards = static_cast<size_t>(std::max(1, options_.fanout_threads));
  const size_t per_shard = (targets.size() + shards - 1) / shards;
  for (size_t begin = 0; begin < targets.size(); begin += per_shard) {
    const size_t end = std::min(targets.size(), begin + per_shard);
    fanout_->Run([name = e->name,
                  shard = std::vector<std::shared_ptr<DiscoveryStream>>(
                      targets.begin() + begin, targets.begin() + end)] {
      for (const auto& s : shard) {
        s->MarkDirty(name);
      }
    });
  }
}

void DiscoveryServiceImpl::OnShutdown() {
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;  // admits no new stream from now on
  }
  for (const auto& s : Streams()) {
    s->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "dtabd is shutting down; reconnect to another instance"));
  }
}

std::shared_ptr<const EncodedResource> DiscoveryServiceImpl::Current(
    const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = current_.find(name);
  return it == current_.end() ? nullptr : it->second;
}

int64_t DiscoveryServiceImpl::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

std::vector<std::string> DiscoveryServiceImpl::AllNames() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, e] : current_) {
    if (!e->deleted) {
      out.push_back(name);
    }
  }
  return out;
}

void DiscoveryServiceImpl::Watch(const std::string& name,
                                 const std::shared_ptr<DiscoveryStream>& s) {
  absl::MutexLock lock(&mu_);
  watchers_[name].insert(s.get());
}

void DiscoveryServiceImpl::Unwatch(const std::string& name, DiscoveryStream* s) {
  absl::MutexLock lock(&mu_);
  if (auto it = watchers_.find(name); it != watchers_.end()) {
    it->second.erase(s);
    if (it->second.empty()) {
      watchers_.erase(it);
    }
  }
}

void DiscoveryServiceImpl::WatchAll(const std::shared_ptr<DiscoveryStream>& s) {
  absl::MutexLock lock(&mu_);
  wildcard_.insert(s.get());
}

void DiscoveryServiceImpl::Remove(DiscoveryStream* s) {
  absl::MutexLock lock(&mu_);
  wildcard_.erase(s);
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    it->second.erase(s);
    if (it->second.empty()) {
      watchers_.erase(it++);
    } else {
      ++it;
    }
  }
  streams_.erase(s);
}

std::vector<std::shared_ptr<DiscoveryStream>> DiscoveryServiceImpl::Streams() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<DiscoveryStream>> out;
  out.reserve(streams_.size());
  for (const auto& [p, s] : streams_) {
    out.push_back(s);
  }
  return out;
}

absl::Status DiscoveryServiceImpl::Admit() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) {
    return absl::UnavailableError("dtabd is shutting down; reconnect to another instance");
  }
  if (static_cast<int>(streams_.size()) >= options_.max_streams) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "dtabd serves at most ", options_.max_streams, " streams; retry later or elsewhere"));
  }
  const absl::Time now = absl::Now();
  tokens_ = std::min<double>(options_.new_streams_burst,
                             tokens_ + absl::ToDoubleSeconds(now - refilled_at_) *
                                           options_.new_streams_per_s);
  refilled_at_ = now;
  if (tokens_ < 1) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many new streams (limit ", options_.new_streams_per_s, "/s); retry later"));
  }
  tokens_ -= 1;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<DiscoveryStream>> DiscoveryServiceImpl::OpenStream(
    const grpc::ServerContext& ctx, bool delta, int64_t* pushback_ms) {
  *pushback_ms = 0;
  if (absl::StatusOr<Identity> id = auth_->Authorize(AuthorizationOf(ctx), Scope::kRead);
      !id.ok()) {
    return id.status();
  }
  if (absl::Status s = Admit(); !s.ok()) {
    if (s.code() == absl::StatusCode::kResourceExhausted) {
      *pushback_ms = absl::ToInt64Milliseconds(options_.retry_pushback);
    }
    return s;
  }
  auto stream = std::make_shared<DiscoveryStream>(this, delta, ctx.peer());
  absl::MutexLock lock(&mu_);
  streams_[stream.get()] = stream;
  return stream;
}

void DiscoveryServiceImpl::AddQueues(grpc::ServerBuilder* builder) {
  absl::MutexLock lock(&queue_mu_);
  for (int i = 0; i < std::max(1, options_.stream_queues); ++i) {
    queues_.push_back(builder->AddCompletionQueue());
  }
}

void DiscoveryServiceImpl::RequestCall(grpc::ServerCompletionQueue* cq, bool delta) {
  absl::MutexLock lock(&queue_mu_);  // orders this with the queues' Shutdown
  if (!queues_stopping_) {
    internal::AsyncStreamCall::Request(this, cq, delta);
  }
}

void DiscoveryServiceImpl::Start() {
  // A few calls asked for ahead per method and queue, so that a burst of
  // new streams does not wait for each to be asked for in turn.
  constexpr int kRequestsAhead = 4;
  std::vector<grpc::ServerCompletionQueue*> queues;
  {
    absl::MutexLock lock(&queue_mu_);
    for (const auto& q : queues_) {
      queues.push_back(q.get());
    }
  }
  for (grpc::ServerCompletionQueue* cq : queues) {
    for (int i = 0; i < kRequestsAhead; ++i) {
      RequestCall(cq, false);
      RequestCall(cq, true);
    }
  }
  absl::MutexLock lock(&queue_mu_);
  for (grpc::ServerCompletionQueue* cq : queues) {
    queue_threads_.emplace_back(internal::RunQueue, cq);
  }
}

void DiscoveryServiceImpl::StopQueues() {
  std::vector<std::thread> threads;
  std::vector<grpc::ServerCompletionQueue*> queues;
  {
    absl::MutexLock lock(&queue_mu_);
    if (queues_stopping_) {
      return;
    }
    queues_stopping_ = true;
    for (const auto& q : queues_) {
      q->Shutdown();
      queues.push_back(q.get());
    }
    threads.swap(queue_threads_);
  }
  for (std::thread& t : threads) {
    t.join();  // each returns once its queue is drained
  }
  if (threads.empty()) {  // never started: drain here (the queues live on in queues_)
    for (grpc::ServerCompletionQueue* q : queues) {
      internal::RunQueue(q);
    }
  }
}

grpc::ServerUnaryReactor* DiscoveryServiceImpl::GetRolloutStatus(
    grpc::CallbackServerContext* ctx, const v1::RolloutStatusRequest* req,
    v1::RolloutStatusResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (absl::StatusOr<Identity> id = auth_->Authorize(AuthorizationOf(*ctx), Scope::kRead);
      !id.ok()) {
    reactor->Finish(ToGrpcStatus(id.status()));
    return reactor;
  }
  const std::string& ns = req->namespace_();
  std::shared_ptr<const EncodedResource> cur = Current(ns);
  const std::string current =
      cur != nullptr && !cur->deleted ? absl::StrCat(cur->version) : std::string();
  resp->set_namespace_(ns);
  resp->set_current_version(current);
  for (const auto& s : Streams()) {
    std::optional<v1::NodeRolloutStatus> st = s->Rollout(ns);
    if (!st) {
      continue;
    }
    (*resp->mutable_nodes_by_version())[st->acked_version()] += 1;
    if (st->acked_version() != current) {
      resp->set_behind(resp->behind() + 1);
    }
    if (!current.empty() && st->nacked_version() == current) {
      resp->set_rejecting(resp->rejecting() + 1);
    }
    *resp->add_nodes() = *std::move(st);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* DiscoveryServiceImpl::ListSubscribers(
    grpc::CallbackServerContext* ctx, const v1::ListSubscribersRequest*,
    v1::ListSubscribersResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (absl::StatusOr<Identity> id = auth_->Authorize(AuthorizationOf(*ctx), Scope::kRead);
      !id.ok()) {
    reactor->Finish(ToGrpcStatus(id.status()));
    return reactor;
  }
  for (const auto& s : Streams()) {
    s->FillSubscriber(resp->add_subscribers());
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace dtabd::server
