// The dtab playground of dtab-proxy's admin server
// (shared/reference/linkerd-behaviour.md section 2.8): the /delegator web
// page and the /delegator.json API in linkerd's request and response shape.
//
// Thread-safety: pure functions; `routers` and `addr` are called on the
// calling thread only.
#ifndef DTABD_PROXY_DELEGATOR_H_
#define DTABD_PROXY_DELEGATOR_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "dtab/explain.h"
#include "dtab/indexed_dtab.h"
#include "dtab/interpreter.h"
#include "http/server.h"

namespace dtabd::proxy {

// What the delegator needs of one router: its label, its current base dtab
// and the interpreter (namers) it binds with.
struct DelegatorRouter {
  std::string label;
  std::shared_ptr<const dtab::IndexedDtab> base;  // never null
  const dtab::Interpreter* interpreter = nullptr;  // never null
};

// Finds a router by label; nullopt when there is none.
using RouterLookup = std::function<std::optional<DelegatorRouter>(absl::string_view label)>;

// /delegator.json. Accepts POST with Content-Type application/json (any
// parameters, e.g. charset) and body {"namespace": LABEL, "dtab": TEXT,
// "path": PATH}, or GET ?namespace=&path=&dtab=. Binds PATH against the
// router's base ++ DTAB (without a namespace, or with an empty one: DTAB
// alone with Interpreter::Offline(), i.e. no configured namers, /#/...
// binding to itself) and answers 200 application/json with
// dtab::ToDelegatorJson of dtab::Explain, leaves rendered by `addr` (may be
// null: no "addr").
//
// The POST body must be one flat JSON object of string values with both
// "dtab" ("" allowed) and "path"; "namespace" is optional and other
// string-valued keys are ignored. Anything else (other value types,
// duplicate keys, bad escapes or lone surrogates, trailing bytes) is
// malformed. GET requires `path`; a missing `dtab` is the empty dtab.
//
// Errors as linkerd, text/plain bodies, checked in this order:
// 405 for methods other than GET and POST (with "Allow: GET, POST"),
// 415 for a POST that is not JSON, 400 "Malformed delegation request",
// 400 "Invalid dtab: <parser message>", 400 "Invalid path: <parser
// message>", 404 "unknown router: <label>" (also when `routers` is empty),
// 500 when the router breaks DelegatorRouter's never-null contract.
// Nothing is stored: the dtab is used for this request only. Calls
// `routers` at most once and the router's namers through Explain.
http::Response DelegatorJson(const http::Request& request, const RouterLookup& routers,
                             const dtab::AddrRenderer& addr);

// The /delegator page (HTML with inline CSS and JS, no external assets;
// it uses relative URLs, so it must be served from the directory that also
// serves `dtabs` and `delegator.json`). It lists routers from GET /dtabs
// (JSON, see admin), lets the user pick a router, edit an override dtab
// and a path, POSTs to /delegator.json and renders the tree, highlighting
// the chosen branch; it says plainly that nothing typed there is saved.
// Router, path and override live in location.hash (#router=&path=&dtab=);
// a URL with a path delegates on load.
//
// Stable hooks for browser tests: #router (select), #base-dtab, #override,
// #path, #go, #error, #tree, #not-saved. Each tree node is an <li> with
// data-type, data-path (and data-id on leaves); the nodes of the chosen
// branch carry class "chosen": the root; a chosen delegate's child; in a
// chosen alt, the first alternative that is not entirely neg (as Bind
// chooses: a fail or empty alternative stops there too, as in linkerd);
// every branch of a chosen union.
// The returned view is of a static string (valid forever).
absl::string_view DelegatorPageHtml();

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_DELEGATOR_H_
