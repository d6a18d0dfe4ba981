#include "server/dtab_service.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "dtab/explain.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/parser.h"
#include "server/convert.h"
#include "server/grpc_status.h"

namespace dtabd::server {
namespace {

constexpr int kDefaultPageSize = 50;

// A proto's expected_version: 0 (unset) means unconditional.
std::optional<int64_t> ExpectedVersion(int64_t v) {
  return v == 0 ? std::nullopt : std::optional<int64_t>(v);
}
constexpr int kMaxPageSize = 1000;

// Finishes with `status` (its code and message) unless it is OK.
bool FinishIfError(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  if (status.ok()) {
    return false;
  }
  reactor->Finish(ToGrpcStatus(status));
  return true;
}

// The latest live version from the hub, or the error a reader should see.
absl::StatusOr<DtabHub::Snapshot> LatestLive(const DtabHub& hub, const std::string& ns) {
  if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) {
    return s;
  }
  DtabHub::Snapshot v = hub.Latest(ns);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("dtab '", ns, "' does not exist"));
  }
  if (v->deleted) {
    return absl::NotFoundError(
        absl::StrCat("dtab '", ns, "' was deleted at version ", v->version));
  }
  return v;
}

// Streams a namespace's versions: the current one, then every change,
// coalesced to the newest for a slow reader (memory per stream is one
// pending message).
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchDtabResponse>,
                           public DtabHub::Subscriber {
 public:
  WatchReactor(DtabHub* hub, std::string ns) : hub_(hub), ns_(std::move(ns)) {}

  // Subscribes and sends the current state. Called once, from the method
  // handler.
  void Start() {
    bool shut_down = false;
    // Not under mu_: the hub calls OnDtab/OnShutdown holding its lock, and
    // they take mu_ (lock order hub, then reactor; never the reverse).
    DtabHub::Snapshot current = hub_->Subscribe(ns_, this, &shut_down);
    subscribed_ = !shut_down;
    absl::MutexLock lock(&mu_);
    started_ = true;
    if (shut_down) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "dtabd is shutting down"));
      return;
    }
    // A version published since Subscribe returned is sent as the first.
    if (early_ != nullptr && (current == nullptr || early_->revision > current->revision)) {
      current = std::move(early_);
    }
    early_.reset();
    v1::WatchDtabResponse first;
    if (current == nullptr) {
      first.set_absent(true);
    } else {
      ToProto(*current, first.mutable_dtab());
      sent_revision_ = current->revision;
    }
    QueueLocked(std::move(first));
  }

  void OnDtab(DtabHub::Snapshot dtab) override {
    absl::MutexLock lock(&mu_);
    if (!started_) {
      early_ = std::move(dtab);  // Start sends it first
      return;
    }
    if (dtab->revision <= sent_revision_) {
      return;
    }
    sent_revision_ = dtab->revision;
    v1::WatchDtabResponse r;
    ToProto(*dtab, r.mutable_dtab());
    QueueLocked(std::move(r));
  }

  void OnShutdown() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "dtabd is shutting down; reconnect to another instance"));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    if (next_) {
      in_flight_ = std::move(*next_);
      next_.reset();
      writing_ = true;
      StartWrite(&in_flight_);
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (subscribed_) {
      hub_->Unsubscribe(ns_, this);
    }
    delete this;
  }

 private:
  void QueueLocked(v1::WatchDtabResponse r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) {
      return;
    }
    if (writing_) {
      next_ = std::move(r);  // newer replaces unsent
      return;
    }
    in_flight_ = std::move(r);
    writing_ = true;
    StartWrite(&in_flight_);
  }

  void FinishLocked(grpc::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) {
      return;
    }
    finished_ = true;
    Finish(std::move(s));
  }

  DtabHub* const hub_;
  const std::string ns_;
  bool subscribed_ = false;  // written in Start, read in OnDone (after all reactions)

  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;   // Start has sent the first message
  DtabHub::Snapshot early_ ABSL_GUARDED_BY(mu_);  // published before Start took mu_
  int64_t sent_revision_ ABSL_GUARDED_BY(mu_) = 0;
  v1::WatchDtabResponse in_flight_ ABSL_GUARDED_BY(mu_);  // untouched until OnWriteDone
  std::optional<v1::WatchDtabResponse> next_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

DtabServiceImpl::DtabServiceImpl(storage::DtabStore* store, DtabHub* hub, Executor* executor,
                                 const Authenticator* auth)
    : store_(store), hub_(hub), executor_(executor), auth_(auth) {}

std::optional<Identity> DtabServiceImpl::Authorize(grpc::CallbackServerContext* ctx,
                                                   grpc::ServerUnaryReactor* reactor,
                                                   Scope scope) const {
  absl::StatusOr<Identity> id = auth_->Authorize(AuthorizationOf(*ctx), scope);
  if (!id.ok()) {
    reactor->Finish(ToGrpcStatus(id.status()));
    return std::nullopt;
  }
  return *std::move(id);
}

grpc::ServerUnaryReactor* DtabServiceImpl::ListDtabs(grpc::CallbackServerContext* ctx,
                                                     const v1::ListDtabsRequest*,
                                                     v1::ListDtabsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Authorize(ctx, reactor, Scope::kRead)) {
    return reactor;
  }
  executor_->Run([this, reactor, resp] {
    absl::StatusOr<std::vector<storage::NamespaceSummary>> list = store_->List();
    if (FinishIfError(reactor, list.status())) {
      return;
    }
    for (const storage::NamespaceSummary& n : *list) {
      v1::NamespaceSummary* s = resp->add_namespaces();
      s->set_namespace_(n.ns);
      s->set_version(n.version);
      s->set_revision(n.revision);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* DtabServiceImpl::GetDtab(grpc::CallbackServerContext* ctx,
                                                   const v1::GetDtabRequest* req,
                                                   v1::VersionedDtab* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Authorize(ctx, reactor, Scope::kRead)) {
    return reactor;
  }
  if (req->version() < 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("version ", req->version(), " must be positive")));
    return reactor;
  }
  if (req->version() == 0) {  // the latest: served from memory
    absl::StatusOr<DtabHub::Snapshot> v = LatestLive(*hub_, req->namespace_());
    if (!FinishIfError(reactor, v.status())) {
      ToProto(**v, resp);
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }
  executor_->Run([this, reactor, req, resp] {
    absl::StatusOr<storage::VersionedDtab> v = store_->Get(req->namespace_(), req->version());
    if (!FinishIfError(reactor, v.status())) {
      ToProto(*v, resp);
      reactor->Finish(grpc::Status::OK);
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* DtabServiceImpl::Write(
    grpc::CallbackServerContext* ctx, v1::VersionedDtab* resp,
    std::function<absl::StatusOr<storage::VersionedDtab>(const storage::WriteMeta&)> write) {
  auto* reactor = ctx->DefaultReactor();
  std::optional<Identity> id = Authorize(ctx, reactor, Scope::kWrite);
  if (!id) {
    return reactor;
  }
  executor_->Run([this, reactor, resp, author = id->name, write = std::move(write)] {
    absl::StatusOr<storage::VersionedDtab> v = write(storage::WriteMeta{author, ""});
    if (FinishIfError(reactor, v.status())) {
      return;
    }
    ToProto(*v, resp);
    hub_->Publish(*std::move(v));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* DtabServiceImpl::CreateDtab(grpc::CallbackServerContext* ctx,
                                                      const v1::CreateDtabRequest* req,
                                                      v1::VersionedDtab* resp) {
  return Write(ctx, resp, [this, req](storage::WriteMeta meta) {
    meta.comment = req->comment();
    return store_->Create(req->namespace_(), req->dtab(), meta);
  });
}

grpc::ServerUnaryReactor* DtabServiceImpl::UpdateDtab(grpc::CallbackServerContext* ctx,
                                                      const v1::UpdateDtabRequest* req,
                                                      v1::VersionedDtab* resp) {
  return Write(ctx, resp, [this, req](storage::WriteMeta meta) {
    meta.comment = req->comment();
    return store_->Update(req->namespace_(), req->dtab(), req->expected_version(), meta);
  });
}

grpc::ServerUnaryReactor* DtabServiceImpl::PutDtab(grpc::CallbackServerContext* ctx,
                                                   const v1::PutDtabRequest* req,
                                                   v1::VersionedDtab* resp) {
  return Write(ctx, resp, [this, req](storage::WriteMeta meta) {
    meta.comment = req->comment();
    return store_->Put(req->namespace_(), req->dtab(), meta);
  });
}

grpc::ServerUnaryReactor* DtabServiceImpl::DeleteDtab(grpc::CallbackServerContext* ctx,
                                                      const v1::DeleteDtabRequest* req,
                                                      v1::VersionedDtab* resp) {
  return Write(ctx, resp, [this, req](storage::WriteMeta meta) {
    meta.comment = req->comment();
    return store_->Delete(req->namespace_(), meta, ExpectedVersion(req->expected_version()));
  });
}

grpc::ServerUnaryReactor* DtabServiceImpl::RollbackDtab(grpc::CallbackServerContext* ctx,
                                                        const v1::RollbackDtabRequest* req,
                                                        v1::VersionedDtab* resp) {
  return Write(ctx, resp, [this, req](storage::WriteMeta meta) {
    meta.comment = req->comment();
    return store_->Rollback(req->namespace_(), req->to_version(), meta,
                            ExpectedVersion(req->expected_version()));
  });
}

grpc::ServerUnaryReactor* DtabServiceImpl::ListVersions(grpc::CallbackServerContext* ctx,
                                                        const v1::ListVersionsRequest* req,
                                                        v1::ListVersionsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Authorize(ctx, reactor, Scope::kRead)) {
    return reactor;
  }
  const int page_size = req->page_size() == 0 ? kDefaultPageSize : req->page_size();
  if (page_size < 0 || page_size > kMaxPageSize) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("page_size ", page_size, " must be between 1 and ", kMaxPageSize)));
    return reactor;
  }
  executor_->Run([this, reactor, req, resp, page_size] {
    absl::StatusOr<storage::HistoryPage> page =
        store_->History(req->namespace_(), page_size, req->before_version());
    if (FinishIfError(reactor, page.status())) {
      return;
    }
    for (const storage::VersionedDtab& v : page->versions) {
      ToProto(v, resp->add_versions());
    }
    resp->set_next_before_version(page->next_before_version);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* DtabServiceImpl::ValidateDtab(grpc::CallbackServerContext* ctx,
                                                        const v1::ValidateDtabRequest* req,
                                                        v1::ValidateDtabResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Authorize(ctx, reactor, Scope::kRead)) {
    return reactor;
  }
  executor_->Run([reactor, req, resp] {
    absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(req->dtab());
    if (FinishIfError(reactor, d.status())) {
      return;
    }
    resp->set_canonical(d->Show());
    resp->set_dentries(static_cast<int32_t>(d->size()));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* DtabServiceImpl::Explain(grpc::CallbackServerContext* ctx,
                                                   const v1::ExplainRequest* req,
                                                   v1::ExplainResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Authorize(ctx, reactor, Scope::kRead)) {
    return reactor;
  }
  absl::StatusOr<DtabHub::Snapshot> v = LatestLive(*hub_, req->namespace_());
  if (FinishIfError(reactor, v.status())) {
    return reactor;
  }
  executor_->Run([reactor, req, resp, v = *std::move(v)] {
    const int max_depth = req->max_depth() > 0 ? req->max_depth() : dtab::kDefaultMaxDepth;
    absl::StatusOr<dtab::Dtab> base = dtab::ParseDtab(v->dtab);
    if (!base.ok()) {  // validated before commit; a failure here is a broken invariant
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                   absl::StrCat("stored dtab '", v->ns, "' version ", v->version,
                                                " does not parse: ", base.status().message())));
      return;
    }
    absl::StatusOr<dtab::Dtab> local = dtab::ParseDtab(req->override());
    if (!local.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   absl::StrCat("override: ", local.status().message())));
      return;
    }
    absl::StatusOr<dtab::Path> path = dtab::ParsePath(req->path());
    if (!path.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   absl::StrCat("path: ", path.status().message())));
      return;
    }
    const dtab::IndexedDtab base_index(*std::move(base));
    const dtab::IndexedDtab local_index(*std::move(local));
    const dtab::DtabView view{&base_index, &local_index};
    const dtab::Interpreter interpreter = dtab::Interpreter::Offline({max_depth});
    resp->set_version(v->version);
    absl::StatusOr<dtab::BindResult> bound = interpreter.Bind(view, *path);
    if (bound.ok()) {
      resp->set_bound(dtab::Show(bound->tree));
      resp->set_ignored_branch_errors(bound->ignored_branch_errors);
    } else {
      resp->set_bind_error(std::string(bound.status().message()));
    }
    resp->set_delegation_json(dtab::ToDelegatorJson(dtab::Explain(interpreter, view, *path)));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchDtabResponse>* DtabServiceImpl::WatchDtab(
    grpc::CallbackServerContext* ctx, const v1::WatchDtabRequest* req) {
  absl::StatusOr<Identity> id = auth_->Authorize(AuthorizationOf(*ctx), Scope::kRead);
  absl::Status valid = id.ok() ? storage::ValidateNamespace(req->namespace_()) : id.status();
  if (!valid.ok()) {
    // A reactor that only reports the error.
    class Failed final : public grpc::ServerWriteReactor<v1::WatchDtabResponse> {
     public:
      explicit Failed(grpc::Status s) { Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    return new Failed(ToGrpcStatus(valid));
  }
  auto* reactor = new WatchReactor(hub_, req->namespace_());
  reactor->Start();
  return reactor;
}

}  // namespace dtabd::server
