#include "tests/testing/backend.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/http_client.h"

namespace dtabd::testing {

std::string PatternBytes(size_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    const uint64_t x = offset + i;
    out[i] = static_cast<char>(((x ^ (x >> 8) ^ (x >> 16) ^ (x >> 24)) * 31 + 7) & 0xff);
  }
  return out;
}

uint64_t Fnv1a(absl::string_view data, uint64_t hash) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

uint64_t PatternFnv(size_t n) {
  uint64_t hash = kFnvBasis;
  constexpr size_t kStep = 1 << 20;
  for (size_t offset = 0; offset < n; offset += kStep) {
    hash = Fnv1a(PatternBytes(offset, std::min(kStep, n - offset)), hash);
  }
  return hash;
}

const std::string* ReceivedRequest::Header(absl::string_view lower) const {
  for (const auto& [name, value] : headers) {
    if (name == lower) {
      return &value;
    }
  }
  return nullptr;
}

std::string ReceivedRequest::HeaderOr(absl::string_view lower) const {
  const std::string* v = Header(lower);
  return v == nullptr ? "<none>" : *v;
}

std::vector<std::string> ReceivedRequest::HeaderValues(absl::string_view lower) const {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers) {
    if (name == lower) {
      out.push_back(value);
    }
  }
  return out;
}

// Runs tasks at their time, in time order, on one thread (so handlers
// never block). Tasks still pending at Stop() are dropped (their
// Responders then answer 500, or nothing once the server is gone).
class Backend::Worker {
 public:
  using Clock = std::chrono::steady_clock;

  Worker() : thread_([this] { Loop(); }) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { Stop(); }

  void At(Clock::time_point when, std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return;
    }
    tasks_.emplace(when, std::move(fn));
    cv_.Signal();
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      cv_.Signal();
    }
    if (thread_.joinable()) {
      thread_.join();
    }
    std::multimap<Clock::time_point, std::function<void()>> dropped;
    {
      absl::MutexLock lock(&mu_);
      dropped.swap(tasks_);
    }
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        while (!stopping_ && (tasks_.empty() || tasks_.begin()->first > Clock::now())) {
          cv_.WaitWithTimeout(&mu_, tasks_.empty()
                                        ? absl::InfiniteDuration()
                                        : absl::FromChrono(tasks_.begin()->first - Clock::now()));
        }
        if (stopping_) {
          return;
        }
        fn = std::move(tasks_.begin()->second);
        tasks_.erase(tasks_.begin());
      }
      fn();
    }
  }

  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::multimap<Clock::time_point, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts after the members above exist
};

Backend::Backend(Options options, std::string next_hop, std::string next_host)
    : options_(std::move(options)),
      next_hop_(std::move(next_hop)),
      next_host_(std::move(next_host)) {}

Backend::~Backend() {
  if (worker_ != nullptr) {
    worker_->Stop();
  }
  if (server_ != nullptr) {
    server_->Shutdown();
  }
}

absl::StatusOr<std::unique_ptr<Backend>> Backend::StartEcho(Options options) {
  std::unique_ptr<Backend> b(new Backend(std::move(options), "", ""));
  if (absl::Status s = b->Start(); !s.ok()) {
    return s;
  }
  return b;
}

absl::StatusOr<std::unique_ptr<Backend>> Backend::StartHello(Options options,
                                                             std::string next_hop,
                                                             std::string next_host) {
  std::unique_ptr<Backend> b(
      new Backend(std::move(options), std::move(next_hop), std::move(next_host)));
  if (absl::Status s = b->Start(); !s.ok()) {
    return s;
  }
  return b;
}

absl::Status Backend::Start() {
  worker_ = std::make_unique<Worker>();
  http::Server::Options o;
  o.address = "127.0.0.1:0";
  o.threads = options_.threads;
  o.max_body_bytes = options_.max_body_bytes;
  o.max_stream_buffer_bytes =
      std::max<size_t>(o.max_stream_buffer_bytes, options_.stream_bytes + options_.stream_chunk);
  o.shutdown_grace = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<http::Server>> server = http::Server::Start(
      o, [this](const http::Request& request, http::Responder responder) {
        Handle(request, std::move(responder));
      });
  if (!server.ok()) {
    return server.status();
  }
  server_ = *std::move(server);
  return absl::OkStatus();
}

std::string Backend::address() const { return server_->address(); }

int Backend::port() const { return server_->port(); }

size_t Backend::request_count() const {
  absl::MutexLock lock(&mu_);
  return requests_.size();
}

std::vector<ReceivedRequest> Backend::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

ReceivedRequest Backend::last_request() const {
  absl::MutexLock lock(&mu_);
  return requests_.empty() ? ReceivedRequest() : requests_.back();
}

bool Backend::WaitForRequests(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

void Backend::Handle(const http::Request& request, http::Responder responder) {
  ReceivedRequest got;
  got.method = request.method;
  got.target = request.target;
  got.version = request.version;
  got.headers = request.headers;
  got.body_size = request.body.size();
  got.body_fnv = Fnv1a(request.body);
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(got);
  }
  if (!next_hop_.empty()) {
    Hello(got, std::move(responder));
  } else {
    Echo(got, std::move(responder));
  }
}

void Backend::Echo(const ReceivedRequest& got, http::Responder responder) {
  http::HeaderList headers = {{"x-backend", options_.name},
                              {"x-body-bytes", absl::StrCat(got.body_size)},
                              {"x-body-fnv", absl::StrCat(absl::Hex(got.body_fnv))}};
  headers.insert(headers.end(), options_.response_headers.begin(),
                 options_.response_headers.end());
  if (options_.stream_bytes == 0 && options_.delay == absl::ZeroDuration()) {
    responder.Send(http::Response{options_.status, std::move(headers), options_.name + "\n"});
    return;
  }
  worker_->At(Worker::Clock::now() + absl::ToChronoNanoseconds(options_.delay), [this, responder = std::move(responder),
                                             headers = std::move(headers)]() mutable {
    if (options_.stream_bytes == 0) {
      responder.Send(http::Response{options_.status, std::move(headers), options_.name + "\n"});
      return;
    }
    std::shared_ptr<http::Stream> stream = responder.StartStream(options_.status, headers);
    for (size_t offset = 0; offset < options_.stream_bytes; offset += options_.stream_chunk) {
      stream->Write(
          PatternBytes(offset, std::min(options_.stream_chunk, options_.stream_bytes - offset)));
    }
    stream->Close();
  });
}

void Backend::Hello(const ReceivedRequest& got, http::Responder responder) {
  Headers forward = {{"Host", next_host_}};
  for (const auto& [name, value] : got.headers) {
    if (absl::StartsWith(name, "l5d-ctx-")) {
      forward.emplace_back(name, value);
    }
  }
  worker_->At(Worker::Clock::now(), [this, responder = std::move(responder),
                            forward = std::move(forward)]() {
    auto failed = [&](const absl::Status& s) {
      responder.Send(http::Response::Text(
          502, absl::StrCat(options_.name, ": next hop failed: ", s.ToString(), "\n")));
    };
    absl::StatusOr<std::unique_ptr<HttpClient>> client = HttpClient::Connect(next_hop_);
    if (!client.ok()) {
      failed(client.status());
      return;
    }
    if (absl::Status s = (*client)->SendPlain("GET", "/", forward); !s.ok()) {
      failed(s);
      return;
    }
    absl::StatusOr<HttpResponse> r = (*client)->ReadResponse();
    if (!r.ok()) {
      failed(r.status());
      return;
    }
    responder.Send(http::Response{
        r->status, {{"x-backend", options_.name}}, absl::StrCat(options_.name, "\n", r->body)});
  });
}

}  // namespace dtabd::testing
