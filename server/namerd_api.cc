#include "server/namerd_api.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "dtab/explain.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "dtab/parser.h"
#include "server/namerd_codec.h"

namespace dtabd::server {
namespace {

constexpr absl::string_view kDtabsPrefix = "/api/1/dtabs";
constexpr absl::string_view kDelegatePrefix = "/api/1/delegate/";

enum class Format { kJson, kDtab };

int HttpStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kAborted:
      return 412;
    case absl::StatusCode::kResourceExhausted:
      return 507;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

http::Response Text(int status, absl::string_view body) {
  http::Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = absl::StrCat(body, "\n");
  return r;
}

http::Response Error(const absl::Status& s) {
  http::Response r = Text(HttpStatus(s), s.message());
  if (s.code() == absl::StatusCode::kUnauthenticated) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"dtabd\"");
  }
  return r;
}

// The first type in Accept that the API knows (namerd's rule); JSON when
// none is known or there is no Accept header.
Format Negotiate(const http::Request& request) {
  const std::string* accept = request.Header("accept");
  if (accept == nullptr) {
    return Format::kJson;
  }
  for (absl::string_view part : absl::StrSplit(*accept, ',')) {
    const absl::string_view type =
        absl::StripAsciiWhitespace(part.substr(0, part.find(';')));
    if (absl::EqualsIgnoreCase(type, "application/json")) {
      return Format::kJson;
    }
    if (absl::EqualsIgnoreCase(type, "application/dtab") ||
        absl::EqualsIgnoreCase(type, "text/plain")) {
      return Format::kDtab;
    }
  }
  return Format::kJson;
}

absl::string_view ContentTypeOf(Format f) {
  return f == Format::kJson ? "application/json" : "application/dtab";
}

// One version's dtab in both of namerd's body formats, without newline.
struct RenderedDtab {
  std::string text;  // canonical (Finagle's show)
  std::string json;  // [{"prefix":..,"dst":..},...]
};

using RenderFn =
    std::function<std::shared_ptr<const RenderedDtab>(const storage::VersionedDtab&)>;

// One line of a watch stream. JSON: {"version":ETAG,"dtab":[...]} or, for
// a deletion, {"version":ETAG,"deleted":true}. Dtab text: the dtab followed
// by a comment carrying the version ("/a=>/b # version=ETAG"), which
// namerd-style clients parse as the dtab alone; a deletion is the empty
// dtab "# deleted version=ETAG".
std::string WatchLine(const storage::VersionedDtab& v, Format format, const RenderFn& render) {
  const std::string etag = VersionToEtag(v.version);
  if (v.deleted) {
    return format == Format::kJson
               ? absl::StrCat("{\"version\":\"", etag, "\",\"deleted\":true}\n")
               : absl::StrCat("# deleted version=", etag, "\n");
  }
  const std::shared_ptr<const RenderedDtab> r = render(v);
  if (format == Format::kJson) {
    return absl::StrCat("{\"version\":\"", etag, "\",\"dtab\":", r->json, "}\n");
  }
  return absl::StrCat(r->text, r->text.empty() ? "" : " ", "# version=", etag, "\n");
}

// Feeds hub updates of one namespace into an HTTP stream. Deleted (via the
// executor, outside the hub's lock) once the stream has ended.
class WatchSink final : public DtabHub::Subscriber {
 public:
  WatchSink(std::shared_ptr<http::Stream> stream, Format format, RenderFn render)
      : stream_(std::move(stream)), format_(format), render_(std::move(render)) {}

  void OnDtab(DtabHub::Snapshot dtab) override { WriteIfNewer(*dtab); }
  void OnShutdown() override { stream_->Close(); }

  // Writes the version Subscribe returned (null: none yet).
  void WriteFirst(const DtabHub::Snapshot& current) {
    if (current != nullptr) {
      WriteIfNewer(*current);
    }
  }

 private:
  // Writes `v` unless a version at least as new has been written: a
  // version published after Subscribe returned reaches OnDtab on the
  // writer's thread, possibly before the subscribing thread calls
  // WriteFirst with the older one, which must then be dropped (the stream
  // never goes backwards). Lock order: hub, then mu_.
  void WriteIfNewer(const storage::VersionedDtab& v) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (v.revision <= written_revision_) {
      return;
    }
    written_revision_ = v.revision;
    stream_->Write(WatchLine(v, format_, render_));
  }

  const std::shared_ptr<http::Stream> stream_;
  const Format format_;
  const RenderFn render_;
  absl::Mutex mu_;
  int64_t written_revision_ ABSL_GUARDED_BY(mu_) = 0;
};

bool IsTrue(const std::string* v) {
  return v != nullptr && (v->empty() || *v == "true" || *v == "1");
}

}  // namespace

class NamerdHttpApi::RenderCache {
 public:
  // The rendering of `v` (not a deletion), parsed once per version: later
  // calls for the same namespace and revision share it. Thread-safe.
  std::shared_ptr<const RenderedDtab> Get(const storage::VersionedDtab& v)
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (auto it = by_ns_.find(v.ns); it != by_ns_.end() && it->second.first == v.revision) {
        return it->second.second;
      }
    }
    // Stored text was validated before commit; parsing cannot fail.
    absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab(v.dtab);
    const dtab::Dtab parsed = d.ok() ? *std::move(d) : dtab::Dtab();
    auto r = std::make_shared<const RenderedDtab>(RenderedDtab{parsed.Show(), DtabToJson(parsed)});
    absl::MutexLock lock(&mu_);
    auto& slot = by_ns_[v.ns];
    if (slot.second == nullptr || slot.first < v.revision) {
      slot = {v.revision, r};
    }
    return r;
  }

 private:
  absl::Mutex mu_;
  // Namespace -> (revision, rendering) of the newest version rendered.
  absl::flat_hash_map<std::string, std::pair<int64_t, std::shared_ptr<const RenderedDtab>>>
      by_ns_ ABSL_GUARDED_BY(mu_);
};

NamerdHttpApi::NamerdHttpApi(storage::DtabStore* store, DtabHub* hub, Executor* executor,
                             const Authenticator* auth)
    : store_(store),
      hub_(hub),
      executor_(executor),
      auth_(auth),
      render_cache_(std::make_unique<RenderCache>()) {}

NamerdHttpApi::~NamerdHttpApi() = default;

void NamerdHttpApi::Handle(const http::Request& request, http::Responder responder) {
  const bool write =
      request.method == "POST" || request.method == "PUT" || request.method == "DELETE";
  const std::string* authorization = request.Header("authorization");
  absl::StatusOr<Identity> identity = auth_->Authorize(
      authorization == nullptr ? "" : *authorization, write ? Scope::kWrite : Scope::kRead);
  if (!identity.ok()) {
    responder.Send(Error(identity.status()));
    return;
  }
  const absl::string_view path = request.path;
  if (path == kDtabsPrefix || path == absl::StrCat(kDtabsPrefix, "/")) {
    if (request.method != "GET" && request.method != "HEAD") {
      responder.Send(Text(405, "use GET for the namespace list"));
      return;
    }
    List(request, std::move(responder));
    return;
  }
  if (absl::StartsWith(path, absl::StrCat(kDtabsPrefix, "/"))) {
    const std::string ns(path.substr(kDtabsPrefix.size() + 1));
    if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) {
      responder.Send(Error(s));
      return;
    }
    if (request.method == "GET" || request.method == "HEAD") {
      if (request.method == "GET" && IsTrue(request.Query("watch"))) {
        Watch(request, ns, std::move(responder));
      } else {
        Get(request, ns, std::move(responder));
      }
    } else if (write) {
      Write(request, ns, *identity, std::move(responder));
    } else {
      http::Response r = Text(405, absl::StrCat("method ", request.method, " not allowed"));
      r.headers.emplace_back("Allow", "GET, HEAD, POST, PUT, DELETE");
      responder.Send(std::move(r));
    }
    return;
  }
  if (absl::StartsWith(path, kDelegatePrefix) ||
      path == kDelegatePrefix.substr(0, kDelegatePrefix.size() - 1)) {
    if (request.method != "GET") {
      responder.Send(Text(405, "use GET for delegation"));
      return;
    }
    const std::string ns(path.size() > kDelegatePrefix.size()
                             ? path.substr(kDelegatePrefix.size())
                             : absl::string_view());
    Delegate(request, ns, std::move(responder));
    return;
  }
  responder.Send(Text(404, absl::StrCat("no route for ", request.method, " ", path)));
}

void NamerdHttpApi::List(const http::Request& request, http::Responder responder) {
  if (IsTrue(request.Query("watch"))) {
    responder.Send(Text(400, "watching the namespace list is not supported; watch a namespace"));
    return;
  }
  std::string body = "[";
  bool first = true;
  for (const std::string& ns : hub_->LiveNamespaces()) {
    if (!first) {
      body.push_back(',');
    }
    first = false;
    dtab::AppendJsonString(ns, &body);
  }
  body.append("]\n");
  http::Response r;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  responder.Send(std::move(r));
}

void NamerdHttpApi::Get(const http::Request& request, const std::string& ns,
                        http::Responder responder) {
  DtabHub::Snapshot v = hub_->Latest(ns);
  if (v == nullptr || v->deleted) {
    responder.Send(Text(404, absl::StrCat("dtab '", ns, "' does not exist")));
    return;
  }
  const Format format = Negotiate(request);
  http::Response r;
  r.headers.emplace_back("Content-Type", std::string(ContentTypeOf(format)));
  r.headers.emplace_back("ETag", VersionToEtag(v->version));
  const std::shared_ptr<const RenderedDtab> rendered = render_cache_->Get(*v);
  r.body = absl::StrCat(format == Format::kJson ? rendered->json : rendered->text, "\n");
  if (request.method == "HEAD") {
    r.headers.emplace_back("Content-Length", absl::StrCat(r.body.size()));
    r.body.clear();
  }
  responder.Send(std::move(r));
}

void NamerdHttpApi::Watch(const http::Request& request, const std::string& ns,
                          http::Responder responder) {
  const Format format = Negotiate(request);
  std::shared_ptr<http::Stream> stream = responder.StartStream(
      200, {{"Content-Type", std::string(ContentTypeOf(format))}});
  auto* sink = new WatchSink(
      stream, format, [cache = render_cache_.get()](const storage::VersionedDtab& v) {
        return cache->Get(v);
      });
  bool shut_down = false;
  // Subscribe, then write the current version: the hub guarantees nothing
  // published after Subscribe is missed, and the sink drops the current
  // version if a newer one was published (and written) in between.
  DtabHub::Snapshot current = hub_->Subscribe(ns, sink, &shut_down);
  if (shut_down) {
    stream->Close();
    delete sink;
    return;
  }
  sink->WriteFirst(current);
  DtabHub* hub = hub_;
  Executor* executor = executor_;
  stream->OnClose([hub, executor, ns, sink] {
    // Never unsubscribe inline: this may run under the hub's lock (via
    // OnShutdown -> Close).
    executor->Run([hub, ns, sink] {
      hub->Unsubscribe(ns, sink);
      delete sink;
    });
  });
}

void NamerdHttpApi::Write(const http::Request& request, const std::string& ns,
                          const Identity& identity, http::Responder responder) {
  // The new text, for POST and PUT.
  std::string text;
  if (request.method != "DELETE") {
    const std::string* type = request.Header("content-type");
    const std::string media =
        type == nullptr ? "" : absl::AsciiStrToLower(absl::StripAsciiWhitespace(
                                   absl::string_view(*type).substr(0, type->find(';'))));
    if (media == "application/json") {
      absl::StatusOr<std::string> t = JsonToDtabText(request.body);
      if (!t.ok()) {
        responder.Send(Error(t.status()));
        return;
      }
      text = *std::move(t);
    } else if (media == "application/dtab" || media == "text/plain") {
      text = request.body;
    } else {
      responder.Send(Text(400, absl::StrCat("Invalid Content-Type \"", type == nullptr ? "" : *type,
                                            "\": use application/dtab or application/json")));
      return;
    }
  }
  std::optional<int64_t> expected;
  if (const std::string* if_match = request.Header("if-match"); if_match != nullptr) {
    absl::StatusOr<int64_t> v = EtagToVersion(*if_match);
    if (!v.ok()) {
      // An ETag we never issued cannot match the current version.
      responder.Send(Text(412, absl::StrCat("If-Match: ", v.status().message())));
      return;
    }
    expected = *v;
  }
  const std::string method = request.method;
  executor_->Run([this, method, ns, text = std::move(text), expected, author = identity.name,
                  responder = std::move(responder)] {
    const storage::WriteMeta meta{author, absl::StrCat("namerd http api ", method)};
    absl::StatusOr<storage::VersionedDtab> v;
    if (method == "POST") {
      v = store_->Create(ns, text, meta);
    } else if (method == "PUT") {
      v = expected ? store_->Update(ns, text, *expected, meta) : store_->Put(ns, text, meta);
    } else {
      v = store_->Delete(ns, meta, expected);
    }
    if (!v.ok()) {
      absl::Status s = v.status();
      if (s.code() == absl::StatusCode::kInvalidArgument &&
          absl::StrContains(s.message(), "expected but")) {
        s = absl::InvalidArgumentError(absl::StrCat("Invalid dtab: ", s.message()));
      }
      responder.Send(Error(s));
      return;
    }
    http::Response r;
    r.status = 204;
    r.headers.emplace_back("ETag", VersionToEtag(v->version));
    hub_->Publish(*std::move(v));
    responder.Send(std::move(r));
  });
}

void NamerdHttpApi::Delegate(const http::Request& request, const std::string& ns,
                             http::Responder responder) {
  const std::string* path_param = request.Query("path");
  if (path_param == nullptr) {
    responder.Send(Text(400, "Malformed delegation request: the 'path' parameter is required"));
    return;
  }
  // Without a namespace (namerd's /api/1/delegate?dtab=...&path=...) the
  // `dtab` parameter is evaluated alone, against the namers only.
  DtabHub::Snapshot v;
  if (!ns.empty()) {
    v = hub_->Latest(ns);
    if (v == nullptr || v->deleted) {
      responder.Send(Text(404, absl::StrCat("dtab '", ns, "' does not exist")));
      return;
    }
  }
  const std::string* extra = request.Query("dtab");
  executor_->Run([v, path_text = *path_param, extra_text = extra ? *extra : std::string(),
                  responder = std::move(responder)] {
    absl::StatusOr<dtab::Path> path = dtab::ParsePath(path_text);
    if (!path.ok()) {
      responder.Send(Text(400, absl::StrCat("Invalid path: ", path.status().message())));
      return;
    }
    absl::StatusOr<dtab::Dtab> local = dtab::ParseDtab(extra_text);
    if (!local.ok()) {
      responder.Send(Text(400, absl::StrCat("Invalid dtab: ", local.status().message())));
      return;
    }
    absl::StatusOr<dtab::Dtab> base = dtab::ParseDtab(v != nullptr ? v->dtab : "");
    const dtab::IndexedDtab base_index(base.ok() ? *std::move(base) : dtab::Dtab());
    const dtab::IndexedDtab local_index(*std::move(local));
    const dtab::DtabView view{&base_index, &local_index};
    const dtab::Interpreter interpreter = dtab::Interpreter::Offline();
    http::Response r;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = absl::StrCat(dtab::ToDelegatorJson(dtab::Explain(interpreter, view, *path)), "\n");
    responder.Send(std::move(r));
  });
}

}  // namespace dtabd::server
