// fanout_client: the subscriber side of the fanout load run (issue 5,
// "Performance"): N DeltaDtabs streams in one process, as N proxies would
// hold them, against a running dtabd.
//
//   fanout_client --server HOST:PORT --streams N [--per-channel 100]
//                 [--queues 8] [--namespace fanout] [--updates 20] [--pause-ms 50]
//                 [--baseline 5] [--dtabd-pid PID] [--reconnect]
//                 [--timeout-s 60] [--json FILE] [--hold-s S]
//
// 1. Writes the namespace (PutDtab, a 10-dentry dtab), then --baseline
//    updates with no stream open (the commit's own cost: SQLite, fsync with
//    dtabd's default --sync full) and, with --dtabd-pid, reads dtabd's VmRSS
//    from /proc/PID/status.
// 2. Opens N streams over ceil(N / per-channel) channels (each its own TCP
//    connection), on gRPC's async API with --queues completion queues (one
//    thread each; see Stream): node id "fanout-I", subscribed to the
//    namespace. Every stream ACKs every response (one write in flight;
//    an ACK due meanwhile replaces the pending one) and records, per
//    version, when it arrived (steady clock of this process). A stream that
//    dtabd refuses (RESOURCE_EXHAUSTED: admission limits) is retried after
//    the grpc-retry-pushback-ms it was given (default 100 ms), jittered.
//    Waits until every stream holds the initial version, lets ACKs settle
//    (300 ms) and reads VmRSS again: (after - before) / N is the memory per
//    stream.
// 3. Commits --updates new versions one at a time (UpdateDtab, compare-and-
//    set, on its own channel), each timestamped right before the call, and
//    waits until every stream has it (then --pause-ms). Per update: commit
//    time (the RPC), the median stream's and the LAST stream's arrival after
//    the timestamp. Reports p50/p99/max of the last-stream times
//    (nearest rank: with 20 updates p99 is the maximum), and the CPU time
//    dtabd and this process spent per delivery (update x stream).
// 4. With --reconnect: cancels every stream at once and closes every
//    channel, commits one more version meanwhile, then reopens all N on new
//    channels with initial_resource_versions = what each held. Re-sync time:
//    from the start of the reconnect until the last stream has the new
//    version. Then drops and reopens them all again with nothing changed in
//    between (dtabd must send nothing) and commits one more update. A
//    stream that receives a version it already had counts as a duplicate
//    (in every step).
//
// --hold-s S (tests/soak/soak.sh) replaces 1-4: writes nothing, opens the N
// streams on an existing namespace, waits until each holds a version, prints
// "fanout: holding N streams ...", keeps them open (ACKing whatever arrives)
// for S seconds or until SIGTERM/SIGINT, then prints one "fanout: held ..."
// line (versions received, the newest version held, lowest and highest over
// the streams, streams ended, duplicates, protocol errors); exit 1 if a
// stream ended meanwhile or a duplicate or protocol error was seen.
//
// Exit 0 when it could measure (duplicates are reported, not fatal); 1 on an
// RPC error, a stream ending unexpectedly or a wait exceeding --timeout-s;
// 2 on bad flags. One human summary on stdout; --json writes the figures for
// benchmarks/fanout/run.sh, which checks the goals.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dtabd/v1/discovery.grpc.pb.h"
#include "dtabd/v1/dtab.grpc.pb.h"

namespace dtabd::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Request = v1::DeltaDiscoveryRequest;
using Response = v1::DeltaDiscoveryResponse;

constexpr auto kRpcDeadline = std::chrono::seconds(10);
constexpr absl::Duration kSettle = absl::Milliseconds(300);
constexpr int64_t kDefaultPushbackMs = 100;

// The same 10-dentry dtab as grpc_get_benchmark; each update appends one
// distinct dentry.
constexpr char kBaseDtab[] =
    "/srv=>/#/io.l5d.fs;/host=>/srv;/svc=>/host;"
    "/srv/users=>/#/io.l5d.fs/users-prod|/#/io.l5d.fs/users;"
    "/host/users=>0.9*/srv/users&0.1*/srv/users-canary;/svc/users=>/host/users;"
    "/srv/orders=>/#/io.l5d.fs/orders-prod|/#/io.l5d.fs/orders;"
    "/host/orders=>0.9*/srv/orders&0.1*/srv/orders-canary;/svc/orders=>/host/orders;"
    "/host/world=>/srv/world-v2";

struct Flags {
  std::string server;
  int streams = 1000;
  int per_channel = 100;
  int queues = 8;
  std::string ns = "fanout";
  int updates = 20;
  int baseline = 5;
  int pause_ms = 50;
  pid_t dtabd_pid = -1;
  bool reconnect = false;
  double timeout_s = 60;
  std::string json;
  double hold_s = 0;  // > 0: the subscribe-only mode (Hold)
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

class Fanout;

// One DeltaDtabs stream on gRPC's async API. Every operation of a stream
// completes on the same completion queue, which one thread serves, and only
// that thread runs Proceed: the stream's state needs no lock. (Async rather
// than callback API so that the streams spread over several completion
// queues: Debian's libgrpc is built with its debug checks, which scan a
// queue's outstanding operations linearly on every completion; with the
// callback API that scan cost this client as much CPU per delivery as
// dtabd, and more channels did not help.) Owned by Fanout, destroyed
// only after its Finish completed (Fanout::OnEnded).
class Stream {
 public:
  enum class Op { kStart, kRead, kWrite, kFinish };
  struct Tag {
    Stream* stream;
    Op op;
  };

  Stream(Fanout* fanout, int index) : fanout_(fanout), index_(index) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Starts the call; once started (Proceed), the first request (node,
  // subscription and, when `held` > 0, initial_resource_versions) and the
  // reads follow. Main thread.
  void Start(v1::DiscoveryService::Stub* stub, grpc::CompletionQueue* cq, const std::string& ns,
             int64_t held) {
    first_.mutable_node()->set_id(absl::StrCat("fanout-", index_));
    first_.mutable_node()->set_cluster("fanout");
    first_.mutable_node()->set_user_agent("fanout_client");
    first_.add_resource_names_subscribe(ns);
    if (held > 0) {
      (*first_.mutable_initial_resource_versions())[ns] = absl::StrCat(held);
    }
    call_ = stub->PrepareAsyncDeltaDtabs(&ctx_, cq);
    starting_ = true;  // before any completion can run
    // StartCall sends the initial metadata with the writes' operation set:
    // no Write until it completes.
    call_->StartCall(&start_tag_);
  }

  // Any thread.
  void Cancel() { ctx_.TryCancel(); }

  // A completed operation (the queue's thread).
  void Proceed(Op op, bool ok);

 private:
  void WriteAck(std::string nonce) {
    writing_ = true;
    ack_.set_response_nonce(std::move(nonce));
    call_->Write(ack_, &write_tag_);
  }
  // Finish once nothing else is outstanding.
  void MaybeFinish() {
    if (!starting_ && !reading_ && !writing_ && !finishing_) {
      finishing_ = true;
      call_->Finish(&status_, &finish_tag_);
    }
  }

  Fanout* const fanout_;
  const int index_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<Request, Response>> call_;
  Tag start_tag_{this, Op::kStart};
  Tag read_tag_{this, Op::kRead};
  Tag write_tag_{this, Op::kWrite};
  Tag finish_tag_{this, Op::kFinish};
  // Touched by Start (before any operation) and then by the queue's thread.
  Request first_;
  Response response_;  // the pending read's message
  Request ack_;        // the pending write's message
  grpc::Status status_;
  std::string pending_nonce_;  // an ACK due while a write was in flight
  bool starting_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool write_failed_ = false;
  bool finishing_ = false;
};

// Per-version arrival times, over all streams.
struct VersionStats {
  std::vector<Clock::time_point> arrivals;
};

// What happened when a stream ended.
struct Ended {
  int index;
  grpc::StatusCode code;
  std::string message;
  int64_t pushback_ms;
};

// The streams, their channels and the bookkeeping shared with the
// reactions. Thread-safe where it says so; the rest runs on the main thread.
class Fanout {
 public:
  explicit Fanout(const Flags& flags)
      : flags_(flags), rng_(12345), held_(static_cast<size_t>(flags.streams), 0) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    dtab_stub_ = v1::DtabService::NewStub(
        grpc::CreateCustomChannel(flags_.server, grpc::InsecureChannelCredentials(), args));
    const int queues = std::min(flags_.queues, flags_.streams);
    for (int i = 0; i < queues; ++i) {
      queues_.push_back(std::make_unique<grpc::CompletionQueue>());
      threads_.emplace_back([cq = queues_.back().get()] {
        void* tag = nullptr;
        bool ok = false;
        while (cq->Next(&tag, &ok)) {
          auto* t = static_cast<Stream::Tag*>(tag);
          t->stream->Proceed(t->op, ok);
        }
      });
    }
  }

  ~Fanout() {
    CancelAll();
    (void)WaitAllEnded(absl::Seconds(10));
    streams_.clear();
    for (auto& cq : queues_) {
      cq->Shutdown();
    }
    for (std::thread& t : threads_) {
      t.join();
    }
  }

  // Reactions (any thread).
  void OnReceive(int index, int64_t version, Clock::time_point at) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    int64_t& held = held_[static_cast<size_t>(index)];
    if (version <= held) {
      if (duplicates_++ == 0) {
        first_duplicate_ = absl::StrCat("stream ", index, " received version ", version,
                                        " while holding ", held);
      }
      return;
    }
    if (held < target_ && version >= target_) {
      ++reached_;
    }
    held = version;
    ++received_;
    if (flags_.hold_s <= 0) {  // a soak runs for long: no per-version arrival log
      stats_[version].arrivals.push_back(at);
    }
  }
  void OnProtocolError(std::string what) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (protocol_errors_++ == 0) {
      first_protocol_error_ = std::move(what);
    }
  }
  void OnEnded(Ended e) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ended_.push_back(std::move(e));
    --live_;
  }
  const std::string& ns() const { return flags_.ns; }

  // Main thread.

  // PutDtab (first) or UpdateDtab (compare-and-set on `expected`); returns
  // the new version, or nullopt after printing the error.
  std::optional<int64_t> Commit(int64_t expected, const std::string& dtab) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::VersionedDtab out;
    grpc::Status s;
    if (expected == 0) {
      v1::PutDtabRequest req;
      req.set_namespace_(flags_.ns);
      req.set_dtab(dtab);
      req.set_comment("fanout_client");
      s = dtab_stub_->PutDtab(&ctx, req, &out);
    } else {
      v1::UpdateDtabRequest req;
      req.set_namespace_(flags_.ns);
      req.set_dtab(dtab);
      req.set_expected_version(expected);
      req.set_comment("fanout_client");
      s = dtab_stub_->UpdateDtab(&ctx, req, &out);
    }
    if (!s.ok()) {
      std::cerr << "fanout_client: " << (expected == 0 ? "PutDtab" : "UpdateDtab") << ": "
                << s.error_code() << " " << s.error_message() << "\n";
      return std::nullopt;
    }
    return out.version();
  }

  // New channels (one TCP connection each) for the streams.
  void MakeChannels() {
    stubs_.clear();
    const int n = (flags_.streams + flags_.per_channel - 1) / flags_.per_channel;
    for (int i = 0; i < n; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      stubs_.push_back(v1::DiscoveryService::NewStub(
          grpc::CreateCustomChannel(flags_.server, grpc::InsecureChannelCredentials(), args)));
    }
  }
  size_t channels() const { return stubs_.size(); }

  // Every stream should reach `version`; counts those that hold it.
  void SetTarget(int64_t version) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    target_ = version;
    reached_ = 0;
    for (int64_t h : held_) {
      reached_ += h >= version ? 1 : 0;
    }
  }

  // Opens (or reopens) every stream, resuming from what each holds.
  void OpenAll() ABSL_LOCKS_EXCLUDED(mu_) {
    streams_.clear();
    streams_.resize(static_cast<size_t>(flags_.streams));
    for (int i = 0; i < flags_.streams; ++i) {
      Open(i);
    }
  }

  // Waits until every stream holds the target version, retrying streams
  // dtabd refused. False (after printing why) on timeout or when a stream
  // ended otherwise.
  bool WaitForTarget() ABSL_LOCKS_EXCLUDED(mu_) {
    const absl::Time deadline = absl::Now() + absl::Seconds(flags_.timeout_s);
    std::multimap<absl::Time, int> retries;  // when -> stream index
    while (true) {
      std::vector<Ended> ended;
      {
        absl::MutexLock lock(&mu_);
        const absl::Time wake = retries.empty() ? deadline : std::min(deadline, retries.begin()->first);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return reached_ == flags_.streams || !ended_.empty();
        };
        mu_.AwaitWithDeadline(absl::Condition(&ready), wake);
        if (reached_ == flags_.streams) {
          return true;
        }
        ended.swap(ended_);
      }
      for (const Ended& e : ended) {
        if (e.code != grpc::StatusCode::RESOURCE_EXHAUSTED) {
          std::cerr << "fanout_client: stream " << e.index << " ended: " << e.code << " "
                    << e.message << "\n";
          return false;
        }
        std::uniform_real_distribution<double> jitter(1.0, 1.5);
        retries.emplace(absl::Now() + absl::Milliseconds(static_cast<double>(e.pushback_ms) *
                                                         jitter(rng_)),
                        e.index);
        ++retried_;
      }
      const absl::Time now = absl::Now();
      while (!retries.empty() && retries.begin()->first <= now) {
        Open(retries.begin()->second);
        retries.erase(retries.begin());
      }
      if (now >= deadline) {
        absl::MutexLock lock(&mu_);
        std::cerr << "fanout_client: after " << flags_.timeout_s << " s only " << reached_
                  << " of " << flags_.streams << " streams hold version " << target_ << "\n";
        return false;
      }
    }
  }

  void CancelAll() {
    for (auto& s : streams_) {
      if (s != nullptr) {
        s->Cancel();
      }
    }
  }

  // Waits until no stream is live, then forgets the ended ones.
  bool WaitAllEnded(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
    const bool ok = mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
    ended_.clear();
    return ok;
  }

  // Closes every stream and channel.
  bool DropAll() {
    CancelAll();
    if (!WaitAllEnded(absl::Seconds(flags_.timeout_s))) {
      std::cerr << "fanout_client: streams did not end after cancellation\n";
      return false;
    }
    streams_.clear();
    stubs_.clear();
    return true;
  }

  // Arrival times of `version` (copied).
  std::vector<Clock::time_point> Arrivals(int64_t version) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return stats_[version].arrivals;
  }
  int64_t duplicates() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return duplicates_;
  }
  std::string first_duplicate() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return first_duplicate_;
  }
  int64_t protocol_errors() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return protocol_errors_;
  }
  std::string first_protocol_error() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return first_protocol_error_;
  }
  // True if every stream holds exactly `version`.
  bool AllHold(int64_t version) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return std::all_of(held_.begin(), held_.end(), [&](int64_t h) { return h == version; });
  }
  int64_t retried() const { return retried_; }
  // Streams that ended (any status) and are not yet collected by WaitForTarget.
  size_t ended() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return ended_.size();
  }
  int64_t received() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  // The lowest and highest newest-version-held over the streams.
  std::pair<int64_t, int64_t> HeldRange() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto [lo, hi] = std::minmax_element(held_.begin(), held_.end());
    return {*lo, *hi};
  }

 private:
  void Open(int i) ABSL_LOCKS_EXCLUDED(mu_) {
    int64_t held = 0;
    {
      absl::MutexLock lock(&mu_);
      held = held_[static_cast<size_t>(i)];
      ++live_;
    }
    auto& slot = streams_[static_cast<size_t>(i)];
    slot = std::make_unique<Stream>(this, i);  // a previous one has ended (OnEnded)
    slot->Start(stubs_[static_cast<size_t>(i / flags_.per_channel)].get(),
                queues_[static_cast<size_t>(i) % queues_.size()].get(), flags_.ns, held);
  }

  const Flags flags_;
  std::unique_ptr<v1::DtabService::Stub> dtab_stub_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::thread> threads_;  // one per queue
  std::vector<std::unique_ptr<v1::DiscoveryService::Stub>> stubs_;
  std::vector<std::unique_ptr<Stream>> streams_;
  int64_t retried_ = 0;
  std::mt19937 rng_;

  absl::Mutex mu_;
  std::vector<int64_t> held_ ABSL_GUARDED_BY(mu_);  // per stream: newest version received
  std::map<int64_t, VersionStats> stats_ ABSL_GUARDED_BY(mu_);
  int64_t target_ ABSL_GUARDED_BY(mu_) = 0;
  int reached_ ABSL_GUARDED_BY(mu_) = 0;  // streams holding target_ or newer
  int live_ ABSL_GUARDED_BY(mu_) = 0;     // started, Finish not yet completed
  std::vector<Ended> ended_ ABSL_GUARDED_BY(mu_);
  int64_t duplicates_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;  // versions received, duplicates aside
  std::string first_duplicate_ ABSL_GUARDED_BY(mu_);
  int64_t protocol_errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_protocol_error_ ABSL_GUARDED_BY(mu_);
};

void Stream::Proceed(Op op, bool ok) {
  switch (op) {
    case Op::kStart:
      starting_ = false;
      if (!ok) {
        MaybeFinish();
        return;
      }
      reading_ = writing_ = true;
      call_->Write(first_, &write_tag_);
      call_->Read(&response_, &read_tag_);
      return;
    case Op::kRead: {
      reading_ = false;
      if (!ok) {
        MaybeFinish();
        return;
      }
      const Clock::time_point at = Clock::now();
      for (const v1::DtabResource& r : response_.resources()) {
        int64_t version = 0;
        if (r.name() != fanout_->ns() || !absl::SimpleAtoi(r.version(), &version)) {
          fanout_->OnProtocolError(absl::StrCat("stream ", index_, ": unexpected resource '",
                                                r.name(), "' version '", r.version(), "'"));
          continue;
        }
        fanout_->OnReceive(index_, version, at);
      }
      for (const std::string& name : response_.removed_resources()) {
        fanout_->OnProtocolError(absl::StrCat("stream ", index_, ": '", name, "' removed"));
      }
      std::string nonce = response_.nonce();
      reading_ = true;
      call_->Read(&response_, &read_tag_);
      if (write_failed_) {
        return;
      }
      if (writing_) {
        pending_nonce_ = std::move(nonce);  // the newest ACK replaces an unsent one
      } else {
        WriteAck(std::move(nonce));
      }
      return;
    }
    case Op::kWrite:
      writing_ = false;
      if (!ok) {
        write_failed_ = true;
      } else if (!pending_nonce_.empty()) {
        WriteAck(std::exchange(pending_nonce_, std::string()));
        return;
      }
      MaybeFinish();
      return;
    case Op::kFinish: {
      int64_t pushback = kDefaultPushbackMs;
      const auto& trailers = ctx_.GetServerTrailingMetadata();
      if (auto it = trailers.find("grpc-retry-pushback-ms"); it != trailers.end()) {
        int64_t ms = 0;
        if (absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) &&
            ms > 0) {
          pushback = ms;
        }
      }
      // The last thing done with `this`: the owner may destroy it afterwards.
      fanout_->OnEnded({index_, status_.error_code(), status_.error_message(), pushback});
      return;
    }
  }
}

// CPU time (user + system) of this process.
double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time (user + system) of process `pid` from /proc, or -1.
double ProcessCpuSeconds(pid_t pid) {
  if (pid <= 0) {
    return -1;
  }
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 > stat.size()) {
    return -1;
  }
  // Fields after "(comm)": state is field 3; utime and stime are 14 and 15.
  std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
  double utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtod(f[11], &utime) || !absl::SimpleAtod(f[12], &stime)) {
    return -1;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// dtabd's resident set in KiB, or -1.
int64_t RssKib(pid_t pid) {
  if (pid <= 0) {
    return -1;
  }
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') {
          digits += c;
        }
      }
      return absl::SimpleAtoi(digits, &kib) ? kib : -1;
    }
  }
  return -1;
}

// Nearest-rank percentile of `v` (sorted), q in (0, 1].
double Percentile(const std::vector<double>& v, double q) {
  if (v.empty()) {
    return 0;
  }
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

struct UpdateResult {
  int64_t version = 0;
  double commit_ms = 0;
  double median_ms = 0;  // the median stream's arrival after the timestamp
  double last_ms = 0;    // the last stream's
};

// Fills `u` from the arrivals of u->version after `start`.
void Summarize(Fanout* f, Clock::time_point start, UpdateResult* u) {
  std::vector<Clock::time_point> a = f->Arrivals(u->version);
  std::sort(a.begin(), a.end());
  if (!a.empty()) {
    u->median_ms = Ms(a[a.size() / 2] - start);
    u->last_ms = Ms(a.back() - start);
  }
}

std::optional<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (arg == "--reconnect") {
      f.reconnect = true;
      continue;
    }
    if (!has_value && i + 1 < argc) {
      value = argv[++i];
    }
    bool ok = true;
    if (arg == "--server") {
      f.server = value;
    } else if (arg == "--streams") {
      ok = absl::SimpleAtoi(value, &f.streams) && f.streams > 0;
    } else if (arg == "--per-channel") {
      ok = absl::SimpleAtoi(value, &f.per_channel) && f.per_channel > 0;
    } else if (arg == "--queues") {
      ok = absl::SimpleAtoi(value, &f.queues) && f.queues > 0;
    } else if (arg == "--namespace") {
      f.ns = value;
    } else if (arg == "--updates") {
      ok = absl::SimpleAtoi(value, &f.updates) && f.updates >= 0;
    } else if (arg == "--baseline") {
      ok = absl::SimpleAtoi(value, &f.baseline) && f.baseline >= 0;
    } else if (arg == "--pause-ms") {
      ok = absl::SimpleAtoi(value, &f.pause_ms) && f.pause_ms >= 0;
    } else if (arg == "--dtabd-pid") {
      ok = absl::SimpleAtoi(value, &f.dtabd_pid) && f.dtabd_pid > 0;
    } else if (arg == "--timeout-s") {
      ok = absl::SimpleAtod(value, &f.timeout_s) && f.timeout_s > 0;
    } else if (arg == "--json") {
      f.json = value;
    } else if (arg == "--hold-s") {
      ok = absl::SimpleAtod(value, &f.hold_s) && f.hold_s > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "fanout_client: bad flag '" << argv[i] << "'\n"
                << "usage: fanout_client --server HOST:PORT --streams N [--per-channel N] [--queues N] "
                   "[--namespace NS] [--updates N] [--baseline N] [--pause-ms MS] [--dtabd-pid PID] "
                   "[--reconnect] [--timeout-s S] [--json FILE] [--hold-s S]\n";
      return std::nullopt;
    }
  }
  if (f.server.empty()) {
    std::cerr << "fanout_client: --server is required\n";
    return std::nullopt;
  }
  return f;
}

// --hold-s: the subscribe-only mode (see the top of the file).
int Hold(const Flags& flags) {
  // Blocked before any thread starts, so every thread inherits the mask and
  // only sigtimedwait below takes these signals.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  Fanout fanout(flags);
  fanout.MakeChannels();
  fanout.SetTarget(1);  // any version
  const Clock::time_point open_start = Clock::now();
  fanout.OpenAll();
  if (!fanout.WaitForTarget()) {
    return 1;
  }
  std::printf("fanout: holding %d streams over %zu channels to %s, namespace '%s' (opened in "
              "%.0f ms, %lld refused and retried)\n",
              flags.streams, fanout.channels(), flags.server.c_str(), flags.ns.c_str(),
              Ms(Clock::now() - open_start), static_cast<long long>(fanout.retried()));
  std::fflush(stdout);
  const size_t ended0 = fanout.ended();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(flags.hold_s);
  int sig = -1;
  while (sig < 0 && fanout.ended() == ended0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      break;
    }
    const timespec ts = absl::ToTimespec(std::min(left, absl::Seconds(1)));
    sig = sigtimedwait(&stop, nullptr, &ts);
  }
  const size_t ended = fanout.ended() - ended0;
  const auto [lo, hi] = fanout.HeldRange();
  std::printf("fanout: held %d streams for %.1f s (%s): %lld versions received, newest held "
              "min %lld max %lld; %zu ended, %lld duplicates, %lld protocol errors\n",
              flags.streams, absl::ToDoubleSeconds(absl::Now() - start),
              sig > 0 ? "signalled" : (ended > 0 ? "a stream ended" : "time up"),
              static_cast<long long>(fanout.received()), static_cast<long long>(lo),
              static_cast<long long>(hi), ended, static_cast<long long>(fanout.duplicates()),
              static_cast<long long>(fanout.protocol_errors()));
  if (fanout.duplicates() > 0) {
    std::printf("fanout: first duplicate: %s\n", fanout.first_duplicate().c_str());
  }
  if (fanout.protocol_errors() > 0) {
    std::printf("fanout: first protocol error: %s\n", fanout.first_protocol_error().c_str());
  }
  std::fflush(stdout);
  return ended > 0 || fanout.duplicates() > 0 || fanout.protocol_errors() > 0 ? 1 : 0;
}

int Main(int argc, char** argv) {
  std::optional<Flags> flags = ParseFlags(argc, argv);
  if (!flags) {
    return 2;
  }
  // Only this tool's own locks: abseil's deadlock detection (on in
  // Debian's build) would cost a graph lookup per lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (flags->hold_s > 0) {
    return Hold(*flags);
  }
  const int n = flags->streams;
  Fanout fanout(*flags);

  // 1. The namespace and the baseline memory.
  std::optional<int64_t> version = fanout.Commit(0, kBaseDtab);
  if (!version) {
    return 1;
  }
  std::vector<double> baseline;
  for (int i = 1; i <= flags->baseline; ++i) {
    const Clock::time_point start = Clock::now();
    version = fanout.Commit(*version, absl::StrCat(kBaseDtab, ";/svc/baseline=>/srv/b-", i));
    if (!version) {
      return 1;
    }
    baseline.push_back(Ms(Clock::now() - start));
  }
  std::sort(baseline.begin(), baseline.end());
  const double baseline_p50 = Percentile(baseline, 0.5);
  const int64_t rss_before = RssKib(flags->dtabd_pid);

  // 2. Open every stream; wait for the initial version.
  fanout.MakeChannels();
  fanout.SetTarget(*version);
  const Clock::time_point open_start = Clock::now();
  fanout.OpenAll();
  if (!fanout.WaitForTarget()) {
    return 1;
  }
  const double open_ms = Ms(Clock::now() - open_start);
  const int64_t open_retried = fanout.retried();
  absl::SleepFor(kSettle);  // let the last ACKs land before measuring memory
  const int64_t rss_after = RssKib(flags->dtabd_pid);
  const double per_stream_bytes =
      rss_before > 0 && rss_after > 0 ? static_cast<double>(rss_after - rss_before) * 1024.0 / n
                                      : -1;
  std::printf("fanout: %d streams over %zu channels to %s, namespace '%s'\n", n,
              fanout.channels(), flags->server.c_str(), flags->ns.c_str());
  std::printf("opened, all holding version %lld, in %.0f ms (%lld refused and retried)\n",
              static_cast<long long>(*version), open_ms,
              static_cast<long long>(open_retried));
  if (!baseline.empty()) {
    std::printf("commit with no stream open, median of %zu: %.1f ms\n", baseline.size(),
                baseline_p50);
  }
  if (per_stream_bytes >= 0) {
    std::printf("dtabd VmRSS %.1f MiB -> %.1f MiB: %.1f KiB per stream\n", rss_before / 1024.0,
                rss_after / 1024.0, per_stream_bytes / 1024.0);
  }

  // 3. Updates, one at a time.
  std::vector<UpdateResult> updates;
  const double server_cpu0 = ProcessCpuSeconds(flags->dtabd_pid);
  const double client_cpu0 = SelfCpuSeconds();
  if (flags->updates > 0) {
    std::printf("%7s %8s %10s %12s %10s\n", "update", "version", "commit ms", "median ms",
                "last ms");
  }
  for (int u = 1; u <= flags->updates; ++u) {
    const std::string dtab = absl::StrCat(kBaseDtab, ";/svc/update=>/srv/update-", u);
    const Clock::time_point start = Clock::now();
    std::optional<int64_t> next = fanout.Commit(*version, dtab);
    const Clock::time_point committed = Clock::now();
    if (!next) {
      return 1;
    }
    version = next;
    fanout.SetTarget(*version);
    if (!fanout.WaitForTarget()) {
      return 1;
    }
    UpdateResult r;
    r.version = *version;
    r.commit_ms = Ms(committed - start);
    Summarize(&fanout, start, &r);
    std::printf("%7d %8lld %10.1f %12.1f %10.1f\n", u, static_cast<long long>(r.version),
                r.commit_ms, r.median_ms, r.last_ms);
    updates.push_back(r);
    absl::SleepFor(absl::Milliseconds(flags->pause_ms));
  }
  const double deliveries = static_cast<double>(flags->updates) * n;
  const double server_cpu_us =
      server_cpu0 >= 0 && deliveries > 0
          ? (ProcessCpuSeconds(flags->dtabd_pid) - server_cpu0) * 1e6 / deliveries
          : -1;
  const double client_cpu_us =
      deliveries > 0 ? (SelfCpuSeconds() - client_cpu0) * 1e6 / deliveries : -1;
  std::vector<double> last;
  for (const UpdateResult& r : updates) {
    last.push_back(r.last_ms);
  }
  std::sort(last.begin(), last.end());
  const double p50 = Percentile(last, 0.50);
  const double p99 = Percentile(last, 0.99);
  const double max = last.empty() ? 0 : last.back();
  if (!last.empty()) {
    std::printf("last stream, over %zu updates: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                last.size(), p50, p99, max);
    std::printf("CPU per delivery (update x stream, pauses included): dtabd %.1f us, "
                "fanout_client %.1f us\n",
                server_cpu_us, client_cpu_us);
  }

  // 4. Drop everything, commit, reconnect.
  double resync_ms = -1;
  int64_t resync_retried = 0;
  int64_t duplicates_before_reconnect = fanout.duplicates();
  int64_t unchanged_resent = 0;
  bool all_current = true;
  if (flags->reconnect) {
    const Clock::time_point drop = Clock::now();
    if (!fanout.DropAll()) {
      return 1;
    }
    const double drop_ms = Ms(Clock::now() - drop);
    std::optional<int64_t> next =
        fanout.Commit(*version, absl::StrCat(kBaseDtab, ";/svc/update=>/srv/after-reconnect"));
    if (!next) {
      return 1;
    }
    version = next;
    fanout.SetTarget(*version);
    const int64_t retried0 = fanout.retried();
    const Clock::time_point start = Clock::now();
    fanout.MakeChannels();
    fanout.OpenAll();
    if (!fanout.WaitForTarget()) {
      return 1;
    }
    UpdateResult r;
    r.version = *version;
    Summarize(&fanout, start, &r);
    resync_ms = r.last_ms;
    resync_retried = fanout.retried() - retried0;
    all_current = fanout.AllHold(*version);
    std::printf(
        "reconnect: %d streams dropped at once (%.0f ms to end them), version %lld committed "
        "meanwhile; all re-synced %.1f ms after reconnecting (median %.1f ms; %lld refused "
        "and retried); %lld resent\n",
        n, drop_ms, static_cast<long long>(*version), r.last_ms, r.median_ms,
        static_cast<long long>(resync_retried),
        static_cast<long long>(fanout.duplicates() - duplicates_before_reconnect));

    // Again with nothing changed while disconnected: dtabd must send
    // nothing on resume, so the next update is the first thing each stream
    // receives (a re-sent version would count as a duplicate).
    const int64_t duplicates0 = fanout.duplicates();
    if (!fanout.DropAll()) {
      return 1;
    }
    fanout.MakeChannels();
    fanout.OpenAll();
    absl::SleepFor(kSettle);  // let the first requests reach dtabd
    const Clock::time_point start2 = Clock::now();
    next = fanout.Commit(*version, absl::StrCat(kBaseDtab, ";/svc/update=>/srv/after-resume"));
    if (!next) {
      return 1;
    }
    version = next;
    fanout.SetTarget(*version);
    if (!fanout.WaitForTarget()) {
      return 1;
    }
    UpdateResult r2;
    r2.version = *version;
    Summarize(&fanout, start2, &r2);
    unchanged_resent = fanout.duplicates() - duplicates0;
    all_current = all_current && fanout.AllHold(*version);
    std::printf(
        "reconnect with nothing changed: %d streams resumed; %lld resent; the next update "
        "reached all in %.1f ms\n",
        n, static_cast<long long>(unchanged_resent), r2.last_ms);
  }
  const int64_t duplicates = fanout.duplicates();
  if (duplicates > 0) {
    std::printf("DUPLICATES: %lld resources re-sent that a stream already had; first: %s\n",
                static_cast<long long>(duplicates), fanout.first_duplicate().c_str());
  }
  if (fanout.protocol_errors() > 0) {
    std::printf("PROTOCOL ERRORS: %lld; first: %s\n",
                static_cast<long long>(fanout.protocol_errors()),
                fanout.first_protocol_error().c_str());
  }

  if (!flags->json.empty()) {
    std::ofstream out(flags->json);
    out << "{\"streams\":" << n << ",\"channels\":" << fanout.channels()
        << ",\"open_ms\":" << open_ms << ",\"open_retried\":" << open_retried
        << ",\"rss_before_kib\":" << rss_before << ",\"rss_after_kib\":" << rss_after
        << ",\"rss_per_stream_bytes\":" << per_stream_bytes
        << ",\"commit_no_streams_p50_ms\":" << baseline_p50
        << ",\"server_cpu_us_per_delivery\":" << server_cpu_us
        << ",\"client_cpu_us_per_delivery\":" << client_cpu_us << ",\"updates\":[";
    for (size_t i = 0; i < updates.size(); ++i) {
      const UpdateResult& r = updates[i];
      out << (i ? "," : "") << "{\"version\":" << r.version << ",\"commit_ms\":" << r.commit_ms
          << ",\"median_ms\":" << r.median_ms << ",\"last_ms\":" << r.last_ms << "}";
    }
    out << "],\"last_p50_ms\":" << p50 << ",\"last_p99_ms\":" << p99 << ",\"last_max_ms\":" << max
        << ",\"reconnect\":" << (flags->reconnect ? "true" : "false")
        << ",\"resync_ms\":" << resync_ms << ",\"resync_retried\":" << resync_retried
        << ",\"unchanged_resent\":" << unchanged_resent
        << ",\"all_current\":" << (all_current ? "true" : "false")
        << ",\"duplicates\":" << duplicates << ",\"protocol_errors\":" << fanout.protocol_errors()
        << "}\n";
    if (!out.flush()) {
      std::cerr << "fanout_client: cannot write " << flags->json << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace dtabd::bench

int main(int argc, char** argv) { return dtabd::bench::Main(argc, argv); }
