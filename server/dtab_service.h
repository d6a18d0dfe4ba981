// DtabServiceImpl: dtabd.v1.DtabService on gRPC's callback API.
//
// Reactions never block: reads of the latest version come from the DtabHub;
// everything that touches SQLite or parses large dtabs runs on the Executor
// and finishes the call from there. Every call is authorized first (read
// scope for reads, write scope for writes); the caller's identity is the
// author of a write.
//
// Thread-safety: thread-safe; the referenced objects must outlive the
// service and the gRPC server it is registered with.
#ifndef DTABD_SERVER_DTAB_SERVICE_H_
#define DTABD_SERVER_DTAB_SERVICE_H_

#include "dtabd/v1/dtab.grpc.pb.h"
#include "server/auth.h"
#include "server/dtab_hub.h"
#include "server/executor.h"
#include "storage/dtab_store.h"

namespace dtabd::server {

class DtabServiceImpl final : public v1::DtabService::CallbackService {
 public:
  DtabServiceImpl(storage::DtabStore* store, DtabHub* hub, Executor* executor,
                  const Authenticator* auth);

  grpc::ServerUnaryReactor* ListDtabs(grpc::CallbackServerContext* ctx,
                                      const v1::ListDtabsRequest* req,
                                      v1::ListDtabsResponse* resp) override;
  grpc::ServerUnaryReactor* GetDtab(grpc::CallbackServerContext* ctx,
                                    const v1::GetDtabRequest* req,
                                    v1::VersionedDtab* resp) override;
  grpc::ServerUnaryReactor* CreateDtab(grpc::CallbackServerContext* ctx,
                                       const v1::CreateDtabRequest* req,
                                       v1::VersionedDtab* resp) override;
  grpc::ServerUnaryReactor* UpdateDtab(grpc::CallbackServerContext* ctx,
                                       const v1::UpdateDtabRequest* req,
                                       v1::VersionedDtab* resp) override;
  grpc::ServerUnaryReactor* PutDtab(grpc::CallbackServerContext* ctx,
                                    const v1::PutDtabRequest* req,
                                    v1::VersionedDtab* resp) override;
  grpc::ServerUnaryReactor* DeleteDtab(grpc::CallbackServerContext* ctx,
                                       const v1::DeleteDtabRequest* req,
                                       v1::VersionedDtab* resp) override;
  grpc::ServerUnaryReactor* ListVersions(grpc::CallbackServerContext* ctx,
                                         const v1::ListVersionsRequest* req,
                                         v1::ListVersionsResponse* resp) override;
  grpc::ServerUnaryReactor* RollbackDtab(grpc::CallbackServerContext* ctx,
                                         const v1::RollbackDtabRequest* req,
                                         v1::VersionedDtab* resp) override;
  grpc::ServerUnaryReactor* ValidateDtab(grpc::CallbackServerContext* ctx,
                                         const v1::ValidateDtabRequest* req,
                                         v1::ValidateDtabResponse* resp) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* ctx,
                                    const v1::ExplainRequest* req,
                                    v1::ExplainResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchDtabResponse>* WatchDtab(
      grpc::CallbackServerContext* ctx, const v1::WatchDtabRequest* req) override;

 private:
  // Authorizes the call for `scope`; on failure finishes `reactor` and
  // returns nullopt.
  std::optional<Identity> Authorize(grpc::CallbackServerContext* ctx,
                                    grpc::ServerUnaryReactor* reactor, Scope scope) const;
  // Runs a store write on the executor; on success publishes the new
  // version to the hub and copies it into `resp`; finishes `reactor`.
  grpc::ServerUnaryReactor* Write(
      grpc::CallbackServerContext* ctx, v1::VersionedDtab* resp,
      std::function<absl::StatusOr<storage::VersionedDtab>(const storage::WriteMeta&)> write);

  storage::DtabStore* const store_;
  DtabHub* const hub_;
  Executor* const executor_;
  const Authenticator* const auth_;
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_DTAB_SERVICE_H_
