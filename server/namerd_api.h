// namerd's HTTP dtab API (io.l5d.httpController; shared/reference/
// linkerd-behaviour.md section 1.3), so that namerctl and namerd clients
// work against dtabd:
//   GET  /api/1/dtabs                  JSON array of live namespace names
//   GET  /api/1/dtabs/<ns>             the dtab (JSON or application/dtab), ETag = version
//   HEAD /api/1/dtabs/<ns>             ETag only
//   POST /api/1/dtabs/<ns>             create (409 if it exists)
//   PUT  /api/1/dtabs/<ns>             with If-Match: compare-and-set (412 when stale);
//                                      without: upsert
//   DELETE /api/1/dtabs/<ns>           delete (a tombstone version; 404 if absent)
//   GET  /api/1/dtabs/<ns>?watch=true  newline-delimited stream of every version;
//                                      unlike namerd, each line carries its version and
//                                      deletions are reported (see namerd_api.cc)
//   GET  /api/1/delegate/<ns>?path=P[&dtab=D]   the delegation tree (delegator JSON)
//   GET  /api/1/delegate?path=P&dtab=D          the same for D alone (namers only)
// Reads need read scope and writes write scope when tokens are configured
// (Authorization: Bearer TOKEN; 401 without, 403 for a read token writing).
//
// Thread-safety: thread-safe; Handle runs on HTTP io threads and never
// blocks (SQLite work goes to the executor).
#ifndef DTABD_SERVER_NAMERD_API_H_
#define DTABD_SERVER_NAMERD_API_H_

#include <memory>

#include "http/server.h"
#include "server/auth.h"
#include "server/dtab_hub.h"
#include "server/executor.h"
#include "storage/dtab_store.h"

namespace dtabd::server {

class NamerdHttpApi {
 public:
  // The referenced objects must outlive the HTTP server using this API.
  NamerdHttpApi(storage::DtabStore* store, DtabHub* hub, Executor* executor,
                const Authenticator* auth);
  ~NamerdHttpApi();

  void Handle(const http::Request& request, http::Responder responder);

 private:
  void List(const http::Request& request, http::Responder responder);
  void Get(const http::Request& request, const std::string& ns, http::Responder responder);
  void Watch(const http::Request& request, const std::string& ns, http::Responder responder);
  void Write(const http::Request& request, const std::string& ns, const Identity& identity,
             http::Responder responder);
  void Delegate(const http::Request& request, const std::string& ns, http::Responder responder);

  // Canonical text and JSON of each namespace's latest version, computed
  // once per version and shared by GETs and every watch stream.
  class RenderCache;

  storage::DtabStore* const store_;
  DtabHub* const hub_;
  Executor* const executor_;
  const Authenticator* const auth_;
  const std::unique_ptr<RenderCache> render_cache_;
};

}  // namespace dtabd::server

#endif  // DTABD_SERVER_NAMERD_API_H_
