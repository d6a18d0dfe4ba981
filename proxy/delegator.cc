#include "proxy/delegator.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/parser.h"
#include "dtab/path.h"

namespace dtabd::proxy {
namespace {

constexpr absl::string_view kMalformed = "Malformed delegation request";

// The fields of one delegation request, from a JSON body or a query.
struct DelegationRequest {
  std::optional<std::string> ns;
  std::optional<std::string> dtab;
  std::optional<std::string> path;
};

// A strict parser for a flat JSON object whose values are all strings
// (RFC 8259 syntax, restricted): `{"k":"v",...}` with optional JSON
// whitespace around tokens. Escapes \" \\ \/ \b \f \n \r \t and \uXXXX
// (surrogate pairs combined, lone surrogates rejected) decode to UTF-8;
// other bytes are copied as they are. InvalidArgument, naming the offset,
// for anything else: other value types, duplicate keys, raw control
// characters in strings, trailing bytes.
class FlatJsonObjectParser {
 public:
  // REQUIRES: `text` outlives the parser.
  explicit FlatJsonObjectParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Parse() {
    std::vector<std::pair<std::string, std::string>> fields;
    SkipWhitespace();
    if (!Consume('{')) {
      return Error("expected '{'");
    }
    SkipWhitespace();
    if (Consume('}')) {
      return Finish(std::move(fields));
    }
    while (true) {
      SkipWhitespace();
      absl::StatusOr<std::string> key = ParseString();
      if (!key.ok()) {
        return key.status();
      }
      for (const auto& [k, v] : fields) {
        if (k == *key) {
          return Error(absl::StrCat("duplicate key \"", *key, "\""));
        }
      }
      SkipWhitespace();
      if (!Consume(':')) {
        return Error("expected ':'");
      }
      SkipWhitespace();
      absl::StatusOr<std::string> value = ParseString();
      if (!value.ok()) {
        return value.status();
      }
      fields.emplace_back(*std::move(key), *std::move(value));
      SkipWhitespace();
      if (Consume('}')) {
        return Finish(std::move(fields));
      }
      if (!Consume(',')) {
        return Error("expected ',' or '}'");
      }
    }
  }

 private:
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Finish(
      std::vector<std::pair<std::string, std::string>> fields) {
    SkipWhitespace();
    if (pos_ != text_.size()) {
      return Error("unexpected data after the object");
    }
    return fields;
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("json at offset ", pos_, ": ", what));
  }

  void SkipWhitespace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // Four hex digits after "\u"; nullopt if they are not there.
  std::optional<uint32_t> ParseHex4() {
    if (text_.size() - pos_ < 4) {
      return std::nullopt;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
      v = v * 16 + d;
    }
    pos_ += 4;
    return v;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  // A string literal starting at pos_, decoded.
  absl::StatusOr<std::string> ParseString() {
    if (!Consume('"')) {
      return Error("expected a string");
    }
    std::string out;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') {
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in string");
      }
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ == text_.size()) {
        break;
      }
      switch (text_[pos_++]) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::optional<uint32_t> cp = ParseHex4();
          if (!cp) {
            return Error("bad \\u escape");
          }
          if (*cp >= 0xdc00 && *cp <= 0xdfff) {
            return Error("lone low surrogate");
          }
          if (*cp >= 0xd800 && *cp <= 0xdbff) {
            if (!Consume('\\') || !Consume('u')) {
              return Error("high surrogate without a low surrogate");
            }
            std::optional<uint32_t> low = ParseHex4();
            if (!low || *low < 0xdc00 || *low > 0xdfff) {
              return Error("high surrogate without a low surrogate");
            }
            cp = 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00);
          }
          AppendUtf8(*cp, &out);
          break;
        }
        default:
          return Error("unknown escape");
      }
    }
    return Error("unterminated string");
  }

  absl::string_view text_;  // the body being parsed; owned by the caller
  size_t pos_ = 0;
};

http::Response Malformed() { return http::Response::Text(400, std::string(kMalformed)); }

// True when Content-Type's media type (parameters such as charset ignored)
// is application/json.
bool IsJson(const http::Request& request) {
  const std::string* type = request.Header("content-type");
  if (type == nullptr) {
    return false;
  }
  const absl::string_view media =
      absl::StripAsciiWhitespace(absl::string_view(*type).substr(0, type->find(';')));
  return absl::EqualsIgnoreCase(media, "application/json");
}

// Reads the POST body: namespace, dtab and path must be strings; unknown
// string-valued keys are ignored. nullopt: malformed.
std::optional<DelegationRequest> FromJson(absl::string_view body) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> fields =
      FlatJsonObjectParser(body).Parse();
  if (!fields.ok()) {
    return std::nullopt;
  }
  DelegationRequest r;
  for (auto& [key, value] : *fields) {
    if (key == "namespace") {
      r.ns = std::move(value);
    } else if (key == "dtab") {
      r.dtab = std::move(value);
    } else if (key == "path") {
      r.path = std::move(value);
    }
  }
  return r;
}

DelegationRequest FromQuery(const http::Request& request) {
  DelegationRequest r;
  if (const std::string* v = request.Query("namespace"); v != nullptr) {
    r.ns = *v;
  }
  if (const std::string* v = request.Query("dtab"); v != nullptr) {
    r.dtab = *v;
  }
  if (const std::string* v = request.Query("path"); v != nullptr) {
    r.path = *v;
  }
  return r;
}

// Explains a well-formed request (path and dtab present).
http::Response Delegate(const DelegationRequest& req, const RouterLookup& routers,
                        const dtab::AddrRenderer& addr) {
  absl::StatusOr<dtab::Dtab> local = dtab::ParseDtab(*req.dtab);
  if (!local.ok()) {
    return http::Response::Text(400, absl::StrCat("Invalid dtab: ", local.status().message()));
  }
  absl::StatusOr<dtab::Path> path = dtab::ParsePath(*req.path);
  if (!path.ok()) {
    return http::Response::Text(400, absl::StrCat("Invalid path: ", path.status().message()));
  }
  std::optional<DelegatorRouter> router;
  if (req.ns.has_value() && !req.ns->empty()) {
    if (routers) {
      router = routers(*req.ns);
    }
    if (!router.has_value()) {
      return http::Response::Text(404, absl::StrCat("unknown router: ", *req.ns));
    }
    if (router->base == nullptr || router->interpreter == nullptr) {
      return http::Response::Text(500,
                                  absl::StrCat("router ", *req.ns, " has no dtab or interpreter"));
    }
  }
  const dtab::IndexedDtab local_index(*std::move(local));
  dtab::DtabView view;
  std::optional<dtab::Interpreter> offline;  // the interpreter without a router
  const dtab::Interpreter* interpreter;
  if (router.has_value()) {
    view.Push(router->base.get());
    interpreter = router->interpreter;
  } else {
    interpreter = &offline.emplace(dtab::Interpreter::Offline());
  }
  view.Push(&local_index);
  http::Response r;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = dtab::ToDelegatorJson(dtab::Explain(*interpreter, view, *path), addr);
  return r;
}

}  // namespace

http::Response DelegatorJson(const http::Request& request, const RouterLookup& routers,
                             const dtab::AddrRenderer& addr) {
  DelegationRequest req;
  if (request.method == "POST") {
    if (!IsJson(request)) {
      return http::Response::Text(415, "Unsupported Media Type: send application/json");
    }
    std::optional<DelegationRequest> parsed = FromJson(request.body);
    if (!parsed.has_value() || !parsed->dtab.has_value() || !parsed->path.has_value()) {
      return Malformed();
    }
    req = *std::move(parsed);
  } else if (request.method == "GET") {
    req = FromQuery(request);
    if (!req.path.has_value()) {
      return Malformed();
    }
    if (!req.dtab.has_value()) {
      req.dtab.emplace();
    }
  } else {
    http::Response r = http::Response::Text(
        405, absl::StrCat("method ", request.method, " not allowed; use GET or POST"));
    r.headers.emplace_back("Allow", "GET, POST");
    return r;
  }
  return Delegate(req, routers, addr);
}

absl::string_view DelegatorPageHtml() {
  // The page talks to the admin server with relative URLs ("dtabs",
  // "delegator.json"), so it also works behind a path prefix.
  static constexpr absl::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dtab-proxy: dtab playground</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
         max-width: 72em; padding: 0 1em; color: #1f2328; background: #fff; }
  h1 { font-size: 1.4em; margin: 0 0 .6em; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
  code, pre, textarea, input, select, .tree { font-family: ui-monospace, "SFMono-Regular", Menlo,
         Consolas, "Liberation Mono", monospace; font-size: 13px; }
  #not-saved { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 4px;
               padding: .5em .8em; margin-bottom: 1em; }
  label { display: block; font-weight: 600; margin: .8em 0 .3em; }
  .row { display: flex; gap: .5em; align-items: center; flex-wrap: wrap; }
  select, input, textarea { border: 1px solid #8c959f; border-radius: 4px; padding: .35em .5em; }
  #path { flex: 1; min-width: 20em; }
  textarea { width: 100%; box-sizing: border-box; min-height: 5em; resize: vertical; }
  button { font-size: 14px; padding: .4em 1.2em; border-radius: 4px; border: 1px solid #1a7f37;
           background: #1f883d; color: #fff; cursor: pointer; }
  button:hover { background: #1a7f37; }
  #base-dtab { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px;
               padding: .6em .8em; margin: 0; white-space: pre-wrap; overflow-x: auto; }
  .muted { color: #57606a; font-weight: normal; }
  #error { color: #82071e; background: #ffebe9; border: 1px solid #ff8182; border-radius: 4px;
           padding: .5em .8em; margin-top: 1em; white-space: pre-wrap; font-family: monospace; }
  #error:empty { display: none; }
  .legend { margin: 1em 0 .4em; color: #57606a; }
  .legend .swatch { display: inline-block; width: .9em; height: .9em; vertical-align: middle;
                    background: #dafbe1; border-left: 3px solid #1a7f37; margin-right: .3em; }
  .tree ul { list-style: none; margin: 0; padding-left: 1.6em; border-left: 1px dotted #afb8c1; }
  .tree > ul { padding-left: 0; border-left: none; }
  .tree li { margin: 2px 0; }
  .tree .line { padding: 1px 6px; border-left: 3px solid transparent; border-radius: 2px; }
  .tree li.chosen > .line { background: #dafbe1; border-left-color: #1a7f37; }
  .tree li.chosen > .line .path { font-weight: 700; }
  .type { display: inline-block; min-width: 5.5em; padding: 0 .4em; margin-right: .5em;
          border-radius: 3px; font-size: 11px; text-align: center; color: #fff;
          background: #6e7781; }
  .t-delegate { background: #0969da; } .t-alt { background: #8250df; }
  .t-union { background: #bf3989; } .t-leaf { background: #1a7f37; }
  .t-neg { background: #8c959f; } .t-fail, .t-exception { background: #cf222e; }
  .t-empty { background: #9a6700; }
  .dentry { color: #57606a; margin-left: 1em; }
  .weight { color: #bf3989; margin-right: .5em; }
  .bound { color: #1a7f37; margin-left: 1em; }
  .addrs { color: #0550ae; margin-left: 1em; }
  .problem { color: #cf222e; margin-left: 1em; }
</style>
</head>
<body>
<h1>Dtab playground</h1>
<p id="not-saved"><strong>Nothing typed here is saved:</strong> the override applies to this page only; the router's dtab is unchanged.</p>

<label for="router">Router</label>
<div class="row"><select id="router"></select><span id="router-info" class="muted"></span></div>

<label>Base dtab <span id="base-version" class="muted"></span></label>
<pre id="base-dtab"></pre>

<label for="override">Override dtab <span class="muted">(appended to the base dtab for this request only)</span></label>
<textarea id="override" placeholder="/host/world => /srv/world-v2;" spellcheck="false"></textarea>

<label for="path">Path</label>
<div class="row">
  <input id="path" type="text" value="/svc/" spellcheck="false" autocomplete="off">
  <button id="go" type="button">Delegate</button>
</div>

<div id="error" role="alert"></div>

<p class="legend"><span class="swatch"></span>Highlighted nodes are the chosen branch: the route a request for this path takes (in an alternative, the first branch that is not negative; in a union, every branch).</p>
<div id="tree" class="tree"></div>

<script>
'use strict';
(function () {
  var el = function (id) { return document.getElementById(id); };
  var routers = [];

  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  // State in location.hash: #router=..&path=..&dtab=..
  function readHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ''));
    return { router: p.get('router'), path: p.get('path'), dtab: p.get('dtab') };
  }
  function writeHash() {
    var p = new URLSearchParams();
    if (el('router').value) { p.set('router', el('router').value); }
    p.set('path', el('path').value);
    if (el('override').value) { p.set('dtab', el('override').value); }
    history.replaceState(null, '', '#' + p.toString());
  }

  function showError(text) { el('error').textContent = text || ''; }

  function showBase() {
    var label = el('router').value;
    var r = routers.find(function (x) { return x.label === label; });
    var pre = el('base-dtab');
    if (!r) {
      pre.textContent = '(no router: the override dtab is used alone)';
      el('base-version').textContent = '';
      el('router-info').textContent = '';
      return;
    }
    var lines = String(r.dtab || '').split(';').map(function (d) {
      var s = d.trim();
      var i = s.indexOf('=>');
      return i < 0 ? s : s.slice(0, i).trim() + ' => ' + s.slice(i + 2).trim();
    }).filter(function (s) { return s.length > 0; });
    pre.textContent = lines.length ? lines.join(';\n') + ';' : '(empty)';
    el('base-version').textContent =
        r.version === null || r.version === undefined ? '(static)' : '(version ' + r.version + ')';
    el('router-info').textContent =
        r.namespace ? 'dtab from dtabd namespace ' + r.namespace : 'static dtab from the config';
  }

  function applyHash(h) {
    if (h.router !== null && routers.some(function (x) { return x.label === h.router; })) {
      el('router').value = h.router;
    }
    if (h.path !== null) { el('path').value = h.path; }
    if (h.dtab !== null) { el('override').value = h.dtab; }
    showBase();
  }

  // Semantically negative: neg, or only negative below.
  function isNeg(n) {
    switch (n.type) {
      case 'neg': return true;
      case 'delegate': return isNeg(n.delegate);
      case 'alt': return n.alt.every(isNeg);
      case 'union': return n.union.every(function (w) { return isNeg(w.tree); });
      default: return false;
    }
  }
  // The alternative a request takes, as the router binds: the first that is
  // not negative (a fail or empty branch stops there too); -1 when all are
  // negative.
  function chosenAlt(alts) {
    return alts.findIndex(function (a) { return !isNeg(a); });
  }

  function describeAddr(addr, line) {
    if (!addr) { return; }
    if (addr.type === 'bound') {
      var list = (addr.addrs || []).map(function (a) {
        return (String(a.ip).indexOf(':') >= 0 ? '[' + a.ip + ']' : a.ip) + ':' + a.port;
      });
      line.appendChild(make('span', 'addrs',
          list.length ? 'addrs: ' + list.join(', ') : 'addrs: (none)'));
    } else if (addr.type === 'failed') {
      line.appendChild(make('span', 'problem', 'addr failed' + (addr.cause ? ': ' + addr.cause : '')));
    } else {
      line.appendChild(make('span', 'problem', 'addr ' + addr.type));
    }
  }

  function renderNode(n, chosen, weight) {
    var li = make('li', 'node' + (chosen ? ' chosen' : ''));
    li.setAttribute('data-type', n.type);
    li.setAttribute('data-path', n.path);
    var line = make('div', 'line');
    if (weight !== undefined) { line.appendChild(make('span', 'weight', 'weight ' + weight)); }
    line.appendChild(make('span', 'type t-' + n.type, n.type));
    line.appendChild(make('span', 'path', n.path));
    if (n.dentry) {
      line.appendChild(make('span', 'dentry', n.dentry.prefix + ' => ' + n.dentry.dst));
    }
    li.appendChild(line);
    var kids = null;
    if (n.type === 'delegate' && n.delegate) {
      kids = make('ul');
      kids.appendChild(renderNode(n.delegate, chosen));
    } else if (n.type === 'alt') {
      var pick = chosenAlt(n.alt);
      kids = make('ul');
      n.alt.forEach(function (c, i) { kids.appendChild(renderNode(c, chosen && i === pick)); });
    } else if (n.type === 'union') {
      kids = make('ul');
      n.union.forEach(function (w) { kids.appendChild(renderNode(w.tree, chosen, w.weight)); });
    } else if (n.type === 'leaf' && n.bound) {
      li.setAttribute('data-id', n.bound.id);
      line.appendChild(make('span', 'bound', 'id ' + n.bound.id + '  residual ' + n.bound.path));
      describeAddr(n.bound.addr, line);
    } else if (n.type === 'exception') {
      line.appendChild(make('span', 'problem', n.message));
    }
    if (kids) { li.appendChild(kids); }
    return li;
  }

  function run() {
    writeHash();
    showError('');
    var tree = el('tree');
    var body = { dtab: el('override').value, path: el('path').value };
    if (el('router').value) { body.namespace = el('router').value; }
    fetch('delegator.json', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (rsp) {
      if (!rsp.ok) {
        return rsp.text().then(function (t) {
          tree.textContent = '';
          showError(t || ('HTTP ' + rsp.status));
        });
      }
      return rsp.json().then(function (root) {
        var ul = make('ul');
        ul.appendChild(renderNode(root, true));
        tree.textContent = '';
        tree.appendChild(ul);
      });
    }).catch(function (e) {
      tree.textContent = '';
      showError('request failed: ' + e);
    });
  }

  el('go').addEventListener('click', run);
  el('path').addEventListener('keydown', function (e) {
    if (e.key === 'Enter') { e.preventDefault(); run(); }
  });
  el('override').addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  el('router').addEventListener('change', function () { showBase(); writeHash(); });
  window.addEventListener('hashchange', function () {
    var h = readHash();
    applyHash(h);
    if (h.path) { run(); }
  });

  fetch('dtabs').then(function (rsp) {
    if (!rsp.ok) { throw new Error('GET dtabs: HTTP ' + rsp.status); }
    return rsp.json();
  }).then(function (data) {
    routers = (data && data.routers) || [];
    var sel = el('router');
    routers.forEach(function (r) { sel.appendChild(make('option', null, r.label)).value = r.label; });
    var h = readHash();
    applyHash(h);
    if (h.path) { run(); }
  }).catch(function (e) {
    showError('could not load the routers: ' + e.message);
    applyHash(readHash());
  });
})();
</script>
</body>
</html>
)html";
  return kPage;
}

}  // namespace dtabd::proxy
