#include "proxy/data_plane.h"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "proxy/request_framing.h"

namespace dtabd::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Everything runs on one io_context per worker: a concrete executor type
// avoids the type-erased any_io_executor on every operation.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
template <class T>
using awaitable = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> kUseAwaitable;

// The completion token of every operation: errors go to `ec`.
auto Ec(beast::error_code& ec) { return asio::redirect_error(kUseAwaitable, ec); }

// Memory for the header fields of one request and its response: a bump
// allocator over a block owned by the session, reset between requests, so
// parsing headers costs no malloc (Beast allocates each field separately).
// Requests whose headers outgrow the block spill to the heap.
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* Allocate(size_t n, size_t align) {
    size_t at = (used_ + align - 1) & ~(align - 1);
    if (at + n <= sizeof(block_)) {
      used_ = at + n;
      return block_ + at;
    }
    spilled_.push_back(std::make_unique<std::max_align_t[]>((n + sizeof(std::max_align_t) - 1) /
                                                            sizeof(std::max_align_t)));
    return spilled_.back().get();
  }
  // REQUIRES: nothing allocated since the last Reset() is still in use.
  void Reset() {
    used_ = 0;
    spilled_.clear();
  }

 private:
  alignas(std::max_align_t) char block_[8192];
  size_t used_ = 0;
  std::vector<std::unique_ptr<std::max_align_t[]>> spilled_;
};

template <class T>
class ArenaAllocator {
 public:
  using value_type = T;
  explicit ArenaAllocator(Arena* arena) : arena_(arena) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) : arena_(other.arena()) {}  // NOLINT: rebind
  T* allocate(size_t n) { return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T*, size_t) {}
  Arena* arena() const { return arena_; }
  template <class U>
  bool operator==(const ArenaAllocator<U>& o) const { return arena_ == o.arena(); }
  template <class U>
  bool operator!=(const ArenaAllocator<U>& o) const { return arena_ != o.arena(); }

 private:
  Arena* arena_;
};

using RequestParser = bhttp::request_parser<bhttp::buffer_body, ArenaAllocator<char>>;
using ResponseParser = bhttp::response_parser<bhttp::buffer_body, ArenaAllocator<char>>;

// How often each worker checks its sessions' deadlines (timeouts are
// enforced to this granularity, without a timer per operation).
constexpr auto kSweepInterval = std::chrono::milliseconds(100);

// Body bytes relayed per read/write step, per direction.
constexpr size_t kBodyChunk = 16 * 1024;
// Upstream response header limit.
constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;
// l5d-err is truncated to this many bytes before URL-encoding.
constexpr size_t kMaxErrHeaderBytes = 1024;
// Connection attempts per request (each a fresh pick of an endpoint).
constexpr int kConnectAttempts = 3;

Clock::duration ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

absl::string_view View(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsL5dHeader(absl::string_view name) {
  return name.size() >= 4 && absl::EqualsIgnoreCase(name.substr(0, 4), "l5d-");
}

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

// Hop-by-hop headers, never forwarded (RFC 9110 section 7.6.1).
bool IsHopByHop(bhttp::field f, absl::string_view name) {
  switch (f) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::upgrade:
      return true;
    case bhttp::field::unknown:
      return absl::EqualsIgnoreCase(name, "proxy-connection");
    default:
      return false;
  }
}

// The header names a message's Connection header lists (hop-by-hop too),
// other than the "close" and "keep-alive" options.
class ConnectionTokens {
 public:
  template <class Fields>
  explicit ConnectionTokens(const Fields& fields) {
    for (auto it = fields.find(bhttp::field::connection);
         it != fields.end() && it->name() == bhttp::field::connection; ++it) {
      for (absl::string_view token : absl::StrSplit(View(it->value()), ',')) {
        token = absl::StripAsciiWhitespace(token);
        if (!token.empty() && !absl::EqualsIgnoreCase(token, "close") &&
            !absl::EqualsIgnoreCase(token, "keep-alive")) {
          tokens_.push_back(token);
        }
      }
    }
  }
  bool Contains(absl::string_view name) const {
    for (absl::string_view t : tokens_) {
      if (absl::EqualsIgnoreCase(t, name)) return true;
    }
    return false;
  }

 private:
  absl::InlinedVector<absl::string_view, 2> tokens_;  // into the message
};

void AppendField(absl::string_view name, absl::string_view value, std::string* out) {
  out->append(name.data(), name.size());
  out->append(": ", 2);
  out->append(value.data(), value.size());
  out->append("\r\n", 2);
}

void AppendHex64(uint64_t v, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i, v >>= 4) buf[i] = kDigits[v & 0xf];
  out->append(buf, sizeof buf);
}

template <class Fields>
void EraseL5dHeaders(Fields& fields) {
  for (auto it = fields.begin(); it != fields.end();) {
    if (IsL5dHeader(absl::string_view(it->name_string().data(), it->name_string().size()))) {
      it = fields.erase(it);
    } else {
      ++it;
    }
  }
}

// Hops recorded in Via headers (comma-separated entries).
template <class Fields>
size_t ViaHops(const Fields& fields) {
  size_t hops = 0;
  for (auto it = fields.find(bhttp::field::via);
       it != fields.end() && it->name() == bhttp::field::via; ++it) {
    hops += 1 + std::count(it->value().begin(), it->value().end(), ',');
  }
  return hops;
}


bool IsDisconnect(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == asio::error::bad_descriptor;
}

// A pooled upstream connection.
struct Upstream {
  explicit Upstream(const Executor& ex) : stream(ex) {}
  Socket stream;
  beast::flat_buffer buffer;
  EndpointState* endpoint = nullptr;
  Clock::time_point idle_since;
};

// One client connection.
struct Session {
  explicit Session(Socket socket) : client(std::move(socket)) {}
  Socket client;
  // The upstream connection in use, if any.
  Upstream* upstream = nullptr;
  // When the current phase times out. The worker's sweep cancels both
  // sockets' operations once it has passed and sets `timed_out`.
  Clock::time_point deadline = Clock::time_point::max();
  bool timed_out = false;
  // Waiting for the next request header (a drain may close it).
  bool idle = true;
  // The outgoing header being serialized (reused across requests).
  std::string head;
  // The current request's and response's header fields.
  Arena arena;
  // A chunk-size line being written.
  char chunk_size_line[24];

  // Starts a phase that must end by `at`.
  void SetDeadline(Clock::time_point at) {
    deadline = at;
    timed_out = false;
  }
};

struct Listener {
  size_t router_index = 0;
  Router* router = nullptr;
  ServerConfig server;
  std::unique_ptr<Acceptor> acceptor;
  std::string address;
};

class Worker {
 public:
  explicit Worker(uint64_t seed, size_t routers)
      : random(seed), work(asio::make_work_guard(ioc)), sweeper(ioc) {
    stats.routers.resize(routers);
  }

  // Declared before `ioc`: destroyed after it, since the coroutine frames
  // the io_context destroys still deregister their sessions.
  absl::flat_hash_set<Session*> sessions;
  OverrideCache overrides;
  FastRandom random;
  WorkerStats stats;
  absl::flat_hash_map<EndpointState*, std::vector<std::unique_ptr<Upstream>>> idle;

  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  Timer sweeper;
  // Sweeps since the idle upstream connections were last pruned.
  int sweeps = 0;
  std::thread thread;
};

// Writes `head` (may be empty) and one piece of a body; with `chunked`,
// the piece as a chunk and, when `last`, the final empty chunk. Not a
// coroutine (one frame less per write): the returned operation copies
// the buffer list; `size_line` must outlive it.
auto WriteBody(Socket& out, absl::string_view head, absl::string_view data,
                      bool chunked, bool last, char (&size_line)[24], beast::error_code& ec) {
  size_t size_len = 0;
  if (chunked && !data.empty()) {
    size_len = absl::SNPrintF(size_line, sizeof size_line, "%zx\r\n", data.size());
  }
  static constexpr char kCrlf[] = "\r\n";
  static constexpr char kLastChunk[] = "0\r\n\r\n";
  const std::array<asio::const_buffer, 5> buffers = {
      asio::buffer(head.data(), head.size()),
      asio::buffer(size_line, size_len),
      asio::buffer(data.data(), data.size()),
      asio::buffer(kCrlf, chunked && !data.empty() ? 2 : 0),
      asio::buffer(kLastChunk, chunked && last ? 5 : 0),
  };
  return asio::async_write(out, buffers, Ec(ec));
}

}  // namespace

class DataPlane::Impl {
 public:
  Impl(std::vector<Router*> routers, Options options)
      : routers_(std::move(routers)), options_(options) {
    upstream_idle_timeout_ = absl::InfiniteDuration();
    max_idle_per_endpoint_ = std::numeric_limits<int>::max();
    for (Router* r : routers_) {
      upstream_idle_timeout_ = std::min(upstream_idle_timeout_, r->config().client.idle_timeout);
      max_idle_per_endpoint_ = std::min(max_idle_per_endpoint_, r->config().client.max_idle_per_endpoint);
    }
  }

  ~Impl() { Drain(absl::ZeroDuration()); }

  absl::Status Start() {
    std::random_device rd;
    const int n = std::max(1, options_.workers);
    for (int i = 0; i < n; ++i) {
      workers_.push_back(
          std::make_unique<Worker>((uint64_t{rd()} << 32) ^ rd(), routers_.size()));
    }
    for (size_t ri = 0; ri < routers_.size(); ++ri) {
      std::vector<std::string> addrs;
      for (const ServerConfig& server : routers_[ri]->config().servers) {
        auto l = std::make_unique<Listener>();
        l->router_index = ri;
        l->router = routers_[ri];
        l->server = server;
        beast::error_code ec;
        asio::ip::address ip = asio::ip::make_address(server.address.ip, ec);
        const std::string where = absl::StrCat("router '", routers_[ri]->label(), "': server ",
                                               server.address.ip, ":", server.address.port);
        if (ec) return absl::InvalidArgumentError(absl::StrCat(where, ": bad ip: ", ec.message()));
        l->acceptor = std::make_unique<Acceptor>(workers_[0]->ioc.get_executor());
        tcp::endpoint ep(ip, server.address.port);
        l->acceptor->open(ep.protocol(), ec);
        if (!ec) l->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) l->acceptor->bind(ep, ec);
        if (!ec) l->acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
          return absl::UnavailableError(absl::StrCat(where, ": cannot listen: ", ec.message()));
        }
        tcp::endpoint bound = l->acceptor->local_endpoint(ec);
        l->address = bound.address().is_v6()
                         ? absl::StrCat("[", bound.address().to_string(), "]:", bound.port())
                         : absl::StrCat(bound.address().to_string(), ":", bound.port());
        addrs.push_back(l->address);
        listeners_.push_back(std::move(l));
      }
      addresses_.push_back(std::move(addrs));
    }
    for (auto& l : listeners_) {
      asio::co_spawn(workers_[0]->ioc, Accept(*l), asio::detached);
    }
    for (auto& w : workers_) {
      ScheduleSweep(*w);
      w->thread = std::thread([w = w.get()] { w->ioc.run(); });
    }
    return absl::OkStatus();
  }

  const std::vector<std::vector<std::string>>& addresses() const { return addresses_; }

  WorkerStats Stats() const {
    WorkerStats total;
    total.routers.resize(routers_.size());
    if (stopped_.load()) return total;
    for (const auto& w : workers_) {
      // Shared with the posted task, which may run (or be destroyed with
      // the io_context) after a timed-out wait.
      auto p = std::make_shared<std::promise<WorkerStats>>();
      std::future<WorkerStats> f = p->get_future();
      asio::post(w->ioc, [p, w = w.get()] { p->set_value(w->stats); });
      if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
        total.Merge(f.get());
      }
    }
    return total;
  }

  void Drain(absl::Duration timeout) {
    if (draining_.exchange(true)) {
      absl::MutexLock lock(&drain_mu_);
      drain_mu_.Await(absl::Condition(&drained_));
      return;
    }
    if (!workers_.empty()) {
      asio::post(workers_[0]->ioc, [this] {
        for (auto& l : listeners_) {
          beast::error_code ec;
          l->acceptor->close(ec);
        }
      });
      for (auto& w : workers_) {
        asio::post(w->ioc, [w = w.get()] {
          for (Session* s : w->sessions) {
            if (s->idle) { beast::error_code ignored; s->client.cancel(ignored); }
          }
        });
      }
      {
        absl::MutexLock lock(&mu_);
        auto none_open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_sessions_ == 0; };
        mu_.AwaitWithTimeout(absl::Condition(&none_open), timeout);
      }
      for (auto& w : workers_) {
        w->work.reset();
        w->ioc.stop();
      }
      for (auto& w : workers_) {
        if (w->thread.joinable()) w->thread.join();
      }
      stopped_.store(true);
      // The threads are gone: close pooled connections and listeners while
      // their io_contexts still exist.
      for (auto& w : workers_) {
        w->idle.clear();
      }
      for (auto& l : listeners_) l->acceptor.reset();
      for (auto& w : workers_) w->sweeper.cancel();
    }
    absl::MutexLock lock(&drain_mu_);
    drained_ = true;
  }

 private:
  // Every kSweepInterval: cancels the operations of sessions past their
  // deadline; every second: closes upstream connections idle too long.
  void ScheduleSweep(Worker& w) {
    w.sweeper.expires_after(kSweepInterval);
    w.sweeper.async_wait([this, &w](const beast::error_code& ec) {
      if (ec || stopped_.load()) return;
      const Clock::time_point now = Clock::now();
      for (Session* s : w.sessions) {
        if (s->deadline > now) continue;
        s->timed_out = true;
        beast::error_code ignored;
        s->client.cancel(ignored);
        if (s->upstream != nullptr) s->upstream->stream.cancel(ignored);
      }
      if (++w.sweeps >= 10) {
        w.sweeps = 0;
        const Clock::time_point cutoff = now - ToChrono(upstream_idle_timeout_);
        for (auto it = w.idle.begin(); it != w.idle.end();) {
          auto& conns = it->second;
          conns.erase(std::remove_if(conns.begin(), conns.end(),
                                     [&](const std::unique_ptr<Upstream>& u) {
                                       return u->idle_since < cutoff;
                                     }),
                      conns.end());
          if (conns.empty()) {
            w.idle.erase(it++);
          } else {
            ++it;
          }
        }
      }
      ScheduleSweep(w);
    });
  }

  awaitable<void> Accept(Listener& l) {
    for (;;) {
      Worker& w = *workers_[next_worker_++ % workers_.size()];
      beast::error_code ec;
      Socket socket = co_await l.acceptor->async_accept(w.ioc, Ec(ec));
      if (draining_.load()) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        Timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await t.async_wait(Ec(ec));
        continue;
      }
      {
        absl::MutexLock lock(&mu_);
        ++open_sessions_;
      }
      asio::co_spawn(w.ioc, Serve(w, l, std::move(socket)), asio::detached);
    }
  }

  void SessionEnded() {
    absl::MutexLock lock(&mu_);
    --open_sessions_;
  }

  awaitable<void> Serve(Worker& w, const Listener& l, Socket socket) {
    Session s(std::move(socket));
    w.sessions.insert(&s);
    ++w.stats.connections_accepted;
    struct Cleanup {
      Impl* impl;
      Worker& w;
      Session& s;
      ~Cleanup() {
        w.sessions.erase(&s);
        impl->SessionEnded();
      }
    } cleanup{this, w, s};
    beast::error_code ec;
    s.client.set_option(tcp::no_delay(true), ec);
    beast::flat_buffer buffer;
    std::unique_ptr<char[]> chunk(new char[kBodyChunk]);
    const ClientConfig& cc = l.router->config().client;
    while (!draining_.load()) {
      s.arena.Reset();
      RequestParser parser(std::piecewise_construct, std::make_tuple(),
                           std::make_tuple(ArenaAllocator<char>(&s.arena)));
      parser.header_limit(options_.max_header_bytes);
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      s.idle = true;
      s.SetDeadline(Clock::now() + ToChrono(cc.idle_timeout));
      const bool folded = co_await ReadRequestHeader(s.client, buffer, parser, ec);
      s.idle = false;
      if (folded) {
        ++w.stats.malformed;
        co_await SendError(s, l, 400,
                           "malformed HTTP request: obsolete line folding in a header field "
                           "(RFC 9112 section 5.2)",
                           false, 11, false);
        break;
      }
      if (ec) {
        if (ec == bhttp::error::header_limit) {
          ++w.stats.malformed;
          co_await SendError(s, l, 431, "request header too large", false, 11, false);
        } else if (!IsDisconnect(ec) && ec != bhttp::error::partial_message) {
          ++w.stats.malformed;
          co_await SendError(s, l, 400, absl::StrCat("malformed HTTP request: ", ec.message()),
                             false, 11, false);
        }
        break;
      }
      bool keep = co_await Handle(w, l, s, buffer, parser, chunk.get());
      if (!keep) break;
    }
    s.client.shutdown(tcp::socket::shutdown_send, ec);
    s.client.close(ec);
  }

  // Reads one request header into `parser`, as bhttp::async_read_header does
  // (the same errors in `ec`), and also looks at the raw header bytes: returns
  // true, without consuming them, if they hold obs-fold.
  static awaitable<bool> ReadRequestHeader(Socket& sock, beast::flat_buffer& buffer,
                                           RequestParser& parser, beast::error_code& ec) {
    for (;;) {
      ec = {};
      if (buffer.size() > 0) {
        const asio::const_buffer data = buffer.data();
        const size_t used = parser.put(data, ec);
        if (used > 0 && parser.is_header_done() &&
            HasObsFold(absl::string_view(static_cast<const char*>(data.data()), used))) {
          co_return true;
        }
        buffer.consume(used);
        if (ec != bhttp::error::need_more) co_return false;
        ec = {};
      }
      const size_t got =
          co_await sock.async_read_some(buffer.prepare(beast::read_size(buffer, 65536)), Ec(ec));
      if (ec == asio::error::eof) {
        if (parser.got_some()) {
          ec = {};
          parser.put_eof(ec);
        } else {
          ec = bhttp::error::end_of_stream;
        }
        co_return false;
      }
      if (ec) co_return false;
      buffer.commit(got);
    }
  }

  // Answers a proxy-generated error. Returns whether the connection may
  // serve another request.
  awaitable<bool> SendError(Session& s, const Listener& l, int status, absl::string_view message,
                            bool request_done, int version, bool keep_alive,
                            bool retryable = false) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status),
                                            version == 10 ? 10 : 11};
    res.set(bhttp::field::server, "dtab-proxy");
    if (!l.server.clear_context) {
      res.set("l5d-err", UrlEncode(message.substr(0, kMaxErrHeaderBytes)));
      if (retryable) res.set("l5d-retryable", "true");
      res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
      res.body().assign(message.data(), message.size());
      if (!absl::EndsWith(message, "\n")) res.body().push_back('\n');
    }
    const bool keep = keep_alive && request_done && !draining_.load();
    res.keep_alive(keep);
    res.prepare_payload();
    beast::error_code ec;
    s.SetDeadline(Clock::now() + std::chrono::seconds(10));
    co_await bhttp::async_write(s.client, res, Ec(ec));
    co_return keep && !ec;
  }

  // "Unable to route request!" and the context linkerd gives: the service,
  // the router, its base dtab (version) and the override.
  static std::string RouteError(const Router& router, const dtab::Path& name,
                                const Override& ovr, absl::string_view reason) {
    const RoutingTable& table = router.table().Get();
    std::string out = absl::StrCat("Unable to route request!\n\nservice: ", name.Show(),
                                   "\nreason: ", reason, "\nrouter: ", router.label(), "\n");
    if (router.config().ns.has_value()) {
      absl::StrAppend(&out, "base dtab (namespace ", *router.config().ns, ", ",
                      table.Describe(), "):\n");
    } else {
      absl::StrAppend(&out, "base dtab (", table.Describe(), "):\n");
    }
    for (const dtab::Dentry& d : table.base.dtab().dentries()) {
      absl::StrAppend(&out, "  ", d.Show(), "\n");
    }
    absl::StrAppend(&out, "override dtab:", ovr.dtab.dtab().empty() ? " (none)\n" : "\n");
    for (const dtab::Dentry& d : ovr.dtab.dtab().dentries()) {
      absl::StrAppend(&out, "  ", d.Show(), "\n");
    }
    return out;
  }

  // A pooled connection to `endpoint`, or null. With `check_alive`, one
  // the upstream has closed (or sent unsolicited bytes on) meanwhile is
  // dropped: for requests with a body, which cannot be retried on a new
  // connection once sent. (Body-less requests skip the extra syscall: they
  // are retried instead.)
  std::unique_ptr<Upstream> TakeIdle(Worker& w, EndpointState* endpoint, bool check_alive) {
    auto it = w.idle.find(endpoint);
    while (it != w.idle.end() && !it->second.empty()) {
      std::unique_ptr<Upstream> up = std::move(it->second.back());
      it->second.pop_back();
      if (!check_alive) return up;
      if (up->buffer.size() > 0) continue;  // bytes after a complete response
      char byte;
      const ssize_t n = ::recv(up->stream.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return up;
    }
    return nullptr;
  }

  void ReturnIdle(Worker& w, std::unique_ptr<Upstream> up) {
    if (draining_.load()) return;
    auto& conns = w.idle[up->endpoint];
    if (static_cast<int>(conns.size()) >= max_idle_per_endpoint_) return;
    up->idle_since = Clock::now();
    conns.push_back(std::move(up));
  }

  // Connects to `endpoint` by `deadline`. Null on failure, with `error`
  // set (and `timed_out` when the connect timed out).
  awaitable<std::unique_ptr<Upstream>> Connect(Worker& w, Session& s, EndpointState* endpoint,
                                               const ClientConfig& cc, Clock::time_point deadline,
                                               std::string* error, bool* timed_out) {
    beast::error_code ec;
    asio::ip::address ip = asio::ip::make_address(endpoint->ip(), ec);
    if (ec) {
      *error = absl::StrCat("bad endpoint address ", endpoint->key());
      co_return nullptr;
    }
    auto up = std::make_unique<Upstream>(w.ioc.get_executor());
    up->endpoint = endpoint;
    s.SetDeadline(std::min(deadline, Clock::now() + ToChrono(cc.connect_timeout)));
    s.upstream = up.get();
    ++w.stats.upstream_connects;
    co_await up->stream.async_connect(tcp::endpoint(ip, endpoint->port()), Ec(ec));
    s.upstream = nullptr;
    *timed_out = s.timed_out;
    s.SetDeadline(deadline);
    if (ec) {
      ++w.stats.upstream_connect_failures;
      endpoint->RecordFailure(cc, absl::Now());
      *error = absl::StrCat("connection to ", endpoint->key(), " failed: ",
                            *timed_out ? "connect timed out" : ec.message());
      co_return nullptr;
    }
    up->stream.set_option(tcp::no_delay(true), ec);
    // Not a success yet for failure accrual: an endpoint that accepts
    // connections but never answers must still be ejected. Only a complete
    // response resets its failures.
    co_return up;
  }

  // Serves one request whose header `parser` has read. Returns whether the
  // client connection may serve another request.
  awaitable<bool> Handle(Worker& w, const Listener& l, Session& s, beast::flat_buffer& cbuf,
                         RequestParser& parser, char* chunk) {
    const Clock::time_point start = Clock::now();
    Router& router = *l.router;
    const RouterConfig& rc = router.config();
    const ClientConfig& cc = rc.client;
    RouterStats& rs = w.stats.routers[l.router_index];
    auto& req = parser.get();
    const int version = req.version() == 10 ? 10 : 11;
    bool client_keep = req.keep_alive() && !draining_.load();
    const bool bodyless = parser.is_done();
    const Clock::time_point deadline = start + ToChrono(cc.request_timeout);
    s.SetDeadline(deadline);
    // The sweep may cancel the upstream in use until this request ends.
    struct UpstreamMark {
      Session& s;
      ~UpstreamMark() { s.upstream = nullptr; }
    } upstream_mark{s};
    auto elapsed_ms = [&] {
      return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    };
    auto fail = [&](int status, absl::string_view message, bool retryable = false,
                    const dtab::Path* service = nullptr) -> awaitable<bool> {
      rs.total.Record(status, elapsed_ms());
      if (service != nullptr) rs.Service(*service).Record(status, elapsed_ms());
      co_return co_await SendError(s, l, status, message, parser.is_done(), version, client_keep,
                                   retryable);
    };

    // Request smuggling guards (RFC 9112 sections 6.1 and 6.3): the only
    // transfer coding accepted is one plain "chunked" (Beast would take a
    // request with, say, "gzip" as having no body and parse that body as the
    // next request), and one Content-Length value. Either way the
    // connection closes after the 400.
    {
      size_t te_fields = 0;
      bool te_chunked = true;
      std::string te_value;
      for (auto it = req.find(bhttp::field::transfer_encoding);
           it != req.end() && it->name() == bhttp::field::transfer_encoding; ++it) {
        ++te_fields;
        te_value = std::string(View(it->value()));
        te_chunked &= absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(te_value), "chunked");
      }
      size_t cl_fields = 0;
      bool cl_list = false;
      for (auto it = req.find(bhttp::field::content_length);
           it != req.end() && it->name() == bhttp::field::content_length; ++it) {
        ++cl_fields;
        cl_list |= absl::StrContains(View(it->value()), ',');
      }
      std::string problem;
      if (te_fields > 1 || (te_fields == 1 && !te_chunked)) {
        problem = absl::StrCat("unsupported Transfer-Encoding '", te_value,
                               te_fields > 1 ? "' (several fields)" : "'", "; only chunked");
      } else if (cl_fields > 1 || cl_list) {
        problem = "more than one Content-Length value";
      }
      if (!problem.empty()) {
        ++w.stats.malformed;
        rs.total.Record(400, elapsed_ms());
        co_return co_await SendError(s, l, 400, absl::StrCat("malformed HTTP request: ", problem),
                                     /*request_done=*/false, version, false);
      }
    }

    // Untrusted listener: no inbound l5d-* header survives.
    if (l.server.clear_context) EraseL5dHeaders(req);

    const size_t hops = ViaHops(req);
    if (hops > static_cast<size_t>(l.server.max_call_depth)) {
      co_return co_await fail(400, absl::StrCat("Maximum call depth exceeded: ", hops,
                                                " Via hops, limit ", l.server.max_call_depth));
    }

    // Identify.
    auto header = [&req](absl::string_view name) -> std::optional<absl::string_view> {
      auto it = req.find(beast::string_view(name.data(), name.size()));
      if (it == req.end()) return std::nullopt;
      return View(it->value());
    };
    const RequestInfo info{View(req.method_string()), View(req.target()), version, header};
    absl::StatusOr<Identified> id = router.identifier().Identify(info);
    if (!id.ok()) {
      co_return co_await fail(400, absl::StrCat("Unknown destination: ", id.status().message()));
    }

    // The override: all l5d-ctx-dtab values, then all l5d-dtab values.
    std::shared_ptr<const Override> ovr;
    {
      absl::InlinedVector<absl::string_view, 2> ctx;
      absl::InlinedVector<absl::string_view, 2> user;
      for (auto it = req.find("l5d-ctx-dtab"); it != req.end() &&
                                                absl::EqualsIgnoreCase(View(it->name_string()),
                                                                       "l5d-ctx-dtab");
           ++it) {
        ctx.push_back(View(it->value()));
      }
      for (auto it = req.find("l5d-dtab");
           it != req.end() && absl::EqualsIgnoreCase(View(it->name_string()), "l5d-dtab");
           ++it) {
        user.push_back(View(it->value()));
      }
      if (ctx.empty() && user.empty()) {
        static const Override* const kNone = new Override(dtab::Dtab(), std::string());
        ovr = std::shared_ptr<const Override>(std::shared_ptr<const Override>(), kNone);
      } else {
        const uint64_t hits = w.overrides.hits();
        ovr = w.overrides.Get(ctx, user, router.policy());
        ++rs.overrides;
        ++(w.overrides.hits() != hits ? rs.override_cache_hits : rs.override_cache_misses);
      }
    }
    if (!ovr->status.ok()) {
      ++rs.overrides_rejected;
      co_return co_await fail(400, absl::StrCat("Invalid override: ", ovr->status.message()), false,
                              &id->name);
    }

    // Bind, pick, connect (a failed connect is retried on a new pick).
    std::unique_ptr<Upstream> up;
    Route route;
    bool reused = false;
    std::string connect_error;
    bool timed_out = false;
    for (int attempt = 0; attempt < kConnectAttempts && up == nullptr; ++attempt) {
      absl::StatusOr<Route> r =
          router.Bind(id->name, router.table().Get(), *ovr, w.random, absl::Now());
      if (!r.ok()) {
        co_return co_await fail(502, RouteError(router, id->name, *ovr, r.status().message()),
                                false, &id->name);
      }
      route = *std::move(r);
      up = TakeIdle(w, route.endpoint, /*check_alive=*/!bodyless);
      reused = up != nullptr;
      if (up == nullptr) {
        up = co_await Connect(w, s, route.endpoint, cc, deadline, &connect_error, &timed_out);
        if (Clock::now() >= deadline) break;
      }
    }
    if (up == nullptr) {
      co_return co_await fail(timed_out ? 503 : 502,
                              RouteError(router, id->name, *ovr, connect_error), true, &id->name);
    }

    // The request as forwarded, serialized here in one pass over the
    // received fields (no field-tree updates, no allocation once the
    // session's buffer has grown): hop-by-hop headers and Expect dropped,
    // linkerd's headers added, Via appended, always HTTP/1.1 keep-alive.
    const ConnectionTokens named(req);
    bool expect_continue = false;
    std::string& head = s.head;
    head.clear();
    absl::StrAppend(&head, View(req.method_string()), " ",
                    id->rewritten_target.has_value() ? absl::string_view(*id->rewritten_target)
                                                     : View(req.target()),
                    " HTTP/1.1\r\n");
    for (const auto& f : req) {
      const absl::string_view name = View(f.name_string());
      if (f.name() == bhttp::field::expect) {
        expect_continue = absl::EqualsIgnoreCase(View(f.value()), "100-continue");
        continue;
      }
      if (IsHopByHop(f.name(), name) || named.Contains(name)) continue;
      // The override headers (turned into l5d-ctx-dtab below), and ours to
      // set (an inbound copy could misreport the route).
      if (IsL5dHeader(name) &&
          (absl::EqualsIgnoreCase(name, "l5d-dtab") || absl::EqualsIgnoreCase(name, "l5d-ctx-dtab") ||
           absl::EqualsIgnoreCase(name, "l5d-dst-service") ||
           absl::EqualsIgnoreCase(name, "l5d-dst-client") ||
           absl::EqualsIgnoreCase(name, "l5d-dst-residual") ||
           absl::EqualsIgnoreCase(name, "l5d-reqid"))) {
        continue;
      }
      AppendField(name, View(f.value()), &head);
    }
    if (!ovr->text.empty()) AppendField("l5d-ctx-dtab", ovr->text, &head);
    head += "l5d-dst-service: ";
    id->name.ShowTo(&head);
    head += "\r\n";
    head += "l5d-dst-client: ";
    route.client.ShowTo(&head);
    head += "\r\n";
    if (!route.residual.empty()) {
      head += "l5d-dst-residual: ";
      route.residual.ShowTo(&head);
      head += "\r\n";
    }
    head += "l5d-reqid: ";
    AppendHex64(w.random.Next(), &head);
    head += version == 10 ? "\r\nVia: 1.0 dtab-proxy\r\n\r\n" : "\r\nVia: 1.1 dtab-proxy\r\n\r\n";
    const bool request_chunked = req.chunked();

    EndpointState* endpoint = route.endpoint;
    endpoint->BeginRequest();
    struct InflightGuard {
      EndpointState* e;
      ~InflightGuard() { e->EndRequest(); }
    } inflight{endpoint};
    RequestStats& service_stats = rs.Service(id->name);
    auto record = [&](int status) {
      const double ms = elapsed_ms();
      rs.total.Record(status, ms);
      service_stats.Record(status, ms);
      rs.clients[endpoint].Record(status, ms);
    };
    auto upstream_fail = [&](const beast::error_code& ec, absl::string_view what) -> awaitable<bool> {
      const bool timeout = s.timed_out || Clock::now() >= deadline;
      const int status = timeout ? 503 : 502;
      record(status);
      // Failure accrual counts an endpoint that accepts but never answers
      // (or breaks its connections) like one that refuses them.
      endpoint->RecordFailure(cc, absl::Now());
      std::string reason =
          timeout ? absl::StrCat("request timed out after ",
                                 absl::FormatDuration(cc.request_timeout), " (", what, " ",
                                 endpoint->key(), ")")
                  : absl::StrCat(what, " ", endpoint->key(), " failed: ", ec.message());
      co_return co_await SendError(s, l, status, RouteError(router, id->name, *ovr, reason),
                                   parser.is_done(), version, client_keep);
    };

    beast::error_code ec;
    s.upstream = up.get();
    if (expect_continue && !parser.is_done()) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(s.client, asio::buffer(kContinue, sizeof kContinue - 1), Ec(ec));
      if (ec) co_return false;
    }

    // Send the request and read the response header. A pooled connection
    // that turns out closed gets one retry on a new connection when the
    // request had no body (nothing was consumed from the client).
    std::optional<ResponseParser> rp;
    const auto new_response_parser = [&] {
      rp.emplace(std::piecewise_construct, std::make_tuple(),
                 std::make_tuple(ArenaAllocator<char>(&s.arena)));
    };
    for (int send_attempt = 0;; ++send_attempt) {
      bool client_failed = false;
      if (parser.is_done()) {
        co_await asio::async_write(up->stream, asio::buffer(head), Ec(ec));
      } else {
        // Stream the body: each piece the parser decodes is written on,
        // re-chunked when the request is chunked; the header goes with
        // the first piece.
        bool first = true;
        while (!ec) {
          req.body().data = chunk;
          req.body().size = kBodyChunk;
          co_await bhttp::async_read(s.client, cbuf, parser, Ec(ec));
          if (ec == bhttp::error::need_buffer) ec = {};
          if (ec) {
            client_failed = true;
            break;
          }
          const size_t n = kBodyChunk - req.body().size;
          const bool last = parser.is_done();
          co_await WriteBody(up->stream, first ? absl::string_view(head) : absl::string_view(),
                             absl::string_view(chunk, n), request_chunked, last,
                             s.chunk_size_line, ec);
          first = false;
          if (last) break;
        }
      }
      if (client_failed) {
        // The client went away (or sent a broken body) mid-request.
        record(s.timed_out ? 503 : 400);
        if (!s.timed_out && !IsDisconnect(ec)) {
          co_await SendError(s, l, 400, absl::StrCat("malformed request body: ", ec.message()),
                             false, version, false);
        }
        co_return false;
      }
      if (!ec) {
        new_response_parser();
        rp->header_limit(kMaxResponseHeaderBytes);
        rp->body_limit(std::numeric_limits<std::uint64_t>::max());
        if (req.method() == bhttp::verb::head) rp->skip(true);
        co_await bhttp::async_read_header(up->stream, up->buffer, *rp, Ec(ec));
        // Interim responses (other than 101) are not forwarded.
        while (!ec && rp->get().result_int() / 100 == 1 && rp->get().result_int() != 101) {
          new_response_parser();
          rp->header_limit(kMaxResponseHeaderBytes);
          rp->body_limit(std::numeric_limits<std::uint64_t>::max());
          if (req.method() == bhttp::verb::head) rp->skip(true);
          co_await bhttp::async_read_header(up->stream, up->buffer, *rp, Ec(ec));
        }
      }
      if (!ec) break;
      if (reused && bodyless && send_attempt == 0 && IsDisconnect(ec) && !s.timed_out) {
        std::string error;
        bool connect_timed_out = false;
        up = co_await Connect(w, s, endpoint, cc, deadline, &error, &connect_timed_out);
        reused = false;
        if (up == nullptr) {
          record(connect_timed_out ? 503 : 502);
          co_return co_await SendError(s, l, connect_timed_out ? 503 : 502,
                                       RouteError(router, id->name, *ovr, error), true, version,
                                       client_keep, true);
        }
        s.upstream = up.get();
        continue;
      }
      co_return co_await upstream_fail(ec, "request to");
    }

    // Relay the response, its header serialized here as the request's.
    auto& res = rp->get();
    const int status = res.result_int();
    bool upstream_keep = res.keep_alive();
    const bool no_body = req.method() == bhttp::verb::head || status == 204 || status == 304 ||
                         status / 100 == 1;
    const bool upstream_chunked = res.chunked();
    // How the body goes to the client: re-chunked (a chunked upstream, or
    // one that ends by closing, for an HTTP/1.1 client), or as it comes.
    bool out_chunked = false;
    bool add_chunked_header = false;
    bool drop_transfer_encoding = false;
    if (!no_body && !upstream_chunked && !res.has_content_length()) {
      // Ends when the upstream closes.
      upstream_keep = false;
      if (version == 11) {
        out_chunked = true;
        add_chunked_header = true;
      } else {
        client_keep = false;
      }
    } else if (!no_body && upstream_chunked) {
      if (version == 11) {
        out_chunked = true;
      } else {
        // An HTTP/1.0 client cannot read chunked framing (RFC 9112
        // section 7): relay the de-chunked body and end it by closing.
        // (proxy_integration_test: Http10ClientGetsAnUnchunkedBodyEndedByClose)
        drop_transfer_encoding = true;
        client_keep = false;
      }
    }
    const bool clear_err = l.server.clear_context && res.find("l5d-err") != res.end();
    const ConnectionTokens res_named(res);
    head.clear();
    absl::StrAppend(&head, version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", status, " ",
                    res.reason().empty() ? View(bhttp::obsolete_reason(res.result()))
                                         : View(res.reason()),
                    "\r\n");
    for (const auto& f : res) {
      const absl::string_view name = View(f.name_string());
      if (IsHopByHop(f.name(), name) || res_named.Contains(name)) continue;
      if (l.server.clear_context && IsL5dHeader(name)) continue;
      if (f.name() == bhttp::field::transfer_encoding && (drop_transfer_encoding || clear_err)) {
        continue;
      }
      if (f.name() == bhttp::field::content_length && clear_err) continue;
      AppendField(name, View(f.value()), &head);
    }
    if (add_chunked_header && !clear_err) head += "Transfer-Encoding: chunked\r\n";
    // linkerd clears the body of a failed response at an edge.
    if (clear_err) head += "Content-Length: 0\r\n";
    if (version == 11 && !client_keep) head += "Connection: close\r\n";
    if (version == 10 && client_keep) head += "Connection: keep-alive\r\n";
    head += "\r\n";
    if (clear_err) {
      co_await asio::async_write(s.client, asio::buffer(head), Ec(ec));
      record(status);
      co_return client_keep && !ec && parser.is_done();
    }
    if (no_body || rp->is_done()) {
      co_await asio::async_write(s.client, asio::buffer(head), Ec(ec));
      if (ec) {
        record(0);
        co_return false;
      }
    } else {
      bool first = true;
      while (true) {
        res.body().data = chunk;
        res.body().size = kBodyChunk;
        co_await bhttp::async_read(up->stream, up->buffer, *rp, Ec(ec));
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
          // The response is under way: all we can do is close.
          record(0);
          co_return false;
        }
        const size_t n = kBodyChunk - res.body().size;
        const bool last = rp->is_done();
        co_await WriteBody(s.client, first ? absl::string_view(head) : absl::string_view(),
                           absl::string_view(chunk, n), out_chunked, last, s.chunk_size_line,
                           ec);
        first = false;
        if (ec) {
          record(0);
          co_return false;
        }
        if (last) break;
      }
    }
    record(status);
    endpoint->RecordSuccess();
    if (upstream_keep && rp->is_done()) ReturnIdle(w, std::move(up));
    co_return client_keep && parser.is_done();
  }

  std::vector<Router*> routers_;
  Options options_;
  absl::Duration upstream_idle_timeout_;
  int max_idle_per_endpoint_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::vector<std::string>> addresses_;
  std::atomic<size_t> next_worker_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  absl::Mutex mu_;
  int open_sessions_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex drain_mu_;
  bool drained_ ABSL_GUARDED_BY(drain_mu_) = false;
};

DataPlane::DataPlane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DataPlane::~DataPlane() = default;

absl::StatusOr<std::unique_ptr<DataPlane>> DataPlane::Start(std::vector<Router*> routers,
                                                            Options options) {
  auto impl = std::make_unique<Impl>(std::move(routers), options);
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<DataPlane>(new DataPlane(std::move(impl)));
}

const std::vector<std::vector<std::string>>& DataPlane::addresses() const {
  return impl_->addresses();
}

WorkerStats DataPlane::Stats() const { return impl_->Stats(); }

void DataPlane::Drain(absl::Duration timeout) { impl_->Drain(timeout); }

}  // namespace dtabd::proxy
