// grpc_get_benchmark: unary GetDtab throughput and latency over loopback,
// with many concurrent callers, against a real dtabd.
//
//   grpc_get_benchmark [--server HOST:PORT] [--channels N]
//                      [--inflight N,N,...] [--seconds S] [--warmup S]
//                      [--json FILE]
//
// Without --server it starts build/bin/dtabd itself (DtabdProcess: every
// listener on 127.0.0.1:0, a temporary database) and stops it at the end.
// It writes namespace "bench" (a 10-dentry dtab) once, then for each
// in-flight level runs a closed loop: `inflight` lanes spread over
// `channels` channels (each its own TCP connection), each lane issuing one
// GetDtab (latest version, with a deadline) through the callback API and
// the next as soon as the answer arrives. After `warmup` seconds, calls
// that start and finish within the next `seconds` are counted; calls/s is
// completed calls over the window, latencies are per call (client clock,
// steady). Any non-OK answer is an error and fails the run (exit 1).
//
// One line per level on stdout; with --json, the levels as JSON for
// benchmarks/run.sh, which checks the goal (>= 25k GetDtab/s with
// p99 <= 2 ms, on the 2-core machine with client and server on it).
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "dtabd/v1/dtab.grpc.pb.h"
#include "tests/integration/dtabd_process.h"

namespace dtabd::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kCallDeadline = std::chrono::seconds(5);
constexpr char kNamespace[] = "bench";

// A 10-dentry dtab in the shape of a small mesh (linkerd hello world plus
// per-service routes).
constexpr char kBenchDtab[] =
    "/srv=>/#/io.l5d.fs;/host=>/srv;/svc=>/host;"
    "/srv/users=>/#/io.l5d.fs/users-prod|/#/io.l5d.fs/users;"
    "/host/users=>0.9*/srv/users&0.1*/srv/users-canary;/svc/users=>/host/users;"
    "/srv/orders=>/#/io.l5d.fs/orders-prod|/#/io.l5d.fs/orders;"
    "/host/orders=>0.9*/srv/orders&0.1*/srv/orders-canary;/svc/orders=>/host/orders;"
    "/host/world=>/srv/world-v2";

struct Flags {
  std::string server;  // empty: start dtabd
  int channels = 4;
  std::vector<int> inflight = {1, 4, 8, 16, 32, 64};
  double seconds = 3.0;
  double warmup = 0.5;
  std::string json;
};

// One closed-loop caller: one GetDtab at a time, the next issued from the
// previous one's callback. A lane's fields are touched by one call at a
// time (gRPC orders a callback after the call it completes), so they need
// no lock.
class Lane {
 public:
  Lane(v1::DtabService::Stub* stub, const std::atomic<bool>* stop, Clock::time_point window_begin,
       Clock::time_point window_end, absl::BlockingCounter* done)
      : stub_(stub), stop_(stop), window_begin_(window_begin), window_end_(window_end),
        done_(done) {
    request_.set_namespace_(kNamespace);
    latencies_ns_.reserve(1 << 16);
  }

  void Issue() {
    if (stop_->load(std::memory_order_relaxed)) {
      done_->DecrementCount();
      return;
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    start_ = Clock::now();
    stub_->async()->GetDtab(ctx_.get(), &request_, &response_,
                            [this](grpc::Status status) { OnDone(std::move(status)); });
  }

  const std::vector<int64_t>& latencies_ns() const { return latencies_ns_; }
  int64_t errors() const { return errors_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void OnDone(grpc::Status status) {
    const Clock::time_point end = Clock::now();
    if (!status.ok()) {
      if (errors_++ == 0) {
        first_error_ = absl::StrCat(status.error_code(), " ", status.error_message());
      }
    } else if (start_ >= window_begin_ && end <= window_end_) {
      latencies_ns_.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_).count());
    }
    Issue();
  }

  v1::DtabService::Stub* const stub_;
  const std::atomic<bool>* const stop_;
  const Clock::time_point window_begin_;
  const Clock::time_point window_end_;
  absl::BlockingCounter* const done_;

  v1::GetDtabRequest request_;
  v1::VersionedDtab response_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  Clock::time_point start_;
  std::vector<int64_t> latencies_ns_;
  int64_t errors_ = 0;
  std::string first_error_;
};

// CPU time (user + system) of this process.
double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time (user + system) of process `pid` from /proc, or -1.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
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

struct LevelResult {
  int inflight = 0;
  double client_cpu_us_per_call = 0;
  double server_cpu_us_per_call = -1;  // -1: unknown (--server)
  int64_t calls = 0;
  double calls_per_s = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  int64_t errors = 0;
  std::string first_error;
};

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) {
    return 0;
  }
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()));
  return static_cast<double>(sorted[i]) / 1e3;
}

LevelResult RunLevel(const std::vector<std::unique_ptr<v1::DtabService::Stub>>& stubs,
                     int inflight, const Flags& flags, pid_t server_pid) {
  std::atomic<bool> stop{false};
  absl::BlockingCounter done(inflight);
  const Clock::time_point begin =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(flags.warmup));
  const Clock::time_point end =
      begin + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(flags.seconds));
  std::vector<std::unique_ptr<Lane>> lanes;
  for (int i = 0; i < inflight; ++i) {
    lanes.push_back(std::make_unique<Lane>(stubs[i % stubs.size()].get(), &stop, begin, end,
                                           &done));
  }
  for (auto& lane : lanes) {
    lane->Issue();
  }
  // The measurement window is a duration, not a synchronization: wait it
  // out, then let every lane finish its call in flight.
  absl::Notification never;
  (void)never.WaitForNotificationWithTimeout(absl::FromChrono(begin - Clock::now()));
  const double client_cpu0 = SelfCpuSeconds();
  const double server_cpu0 = server_pid > 0 ? ProcessCpuSeconds(server_pid) : -1;
  (void)never.WaitForNotificationWithTimeout(absl::FromChrono(end - Clock::now()));
  const double client_cpu = SelfCpuSeconds() - client_cpu0;
  const double server_cpu = server_pid > 0 ? ProcessCpuSeconds(server_pid) - server_cpu0 : -1;
  stop.store(true, std::memory_order_relaxed);
  done.Wait();

  LevelResult r;
  r.inflight = inflight;
  std::vector<int64_t> all;
  for (const auto& lane : lanes) {
    all.insert(all.end(), lane->latencies_ns().begin(), lane->latencies_ns().end());
    r.errors += lane->errors();
    if (r.first_error.empty()) {
      r.first_error = lane->first_error();
    }
  }
  std::sort(all.begin(), all.end());
  r.calls = static_cast<int64_t>(all.size());
  r.calls_per_s = static_cast<double>(all.size()) / flags.seconds;
  r.p50_us = Percentile(all, 0.50);
  r.p90_us = Percentile(all, 0.90);
  r.p99_us = Percentile(all, 0.99);
  r.p999_us = Percentile(all, 0.999);
  r.max_us = all.empty() ? 0 : static_cast<double>(all.back()) / 1e3;
  if (r.calls > 0) {
    r.client_cpu_us_per_call = client_cpu * 1e6 / static_cast<double>(r.calls);
    if (server_cpu0 >= 0 && server_cpu >= 0) {
      r.server_cpu_us_per_call = server_cpu * 1e6 / static_cast<double>(r.calls);
    }
  }
  return r;
}

std::optional<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    bool ok = true;
    if (arg == "--server") {
      f.server = value;
    } else if (arg == "--channels") {
      ok = absl::SimpleAtoi(value, &f.channels) && f.channels > 0;
    } else if (arg == "--inflight") {
      f.inflight.clear();
      for (absl::string_view n : absl::StrSplit(value, ',')) {
        int v = 0;
        ok = ok && absl::SimpleAtoi(n, &v) && v > 0;
        f.inflight.push_back(v);
      }
    } else if (arg == "--seconds") {
      ok = absl::SimpleAtod(value, &f.seconds) && f.seconds > 0;
    } else if (arg == "--warmup") {
      ok = absl::SimpleAtod(value, &f.warmup) && f.warmup >= 0;
    } else if (arg == "--json") {
      f.json = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "grpc_get_benchmark: bad flag '" << argv[i] << "'\n"
                << "usage: grpc_get_benchmark [--server HOST:PORT] [--channels N] "
                   "[--inflight N,N,...] [--seconds S] [--warmup S] [--json FILE]\n";
      return std::nullopt;
    }
  }
  return f;
}

int Main(int argc, char** argv) {
  std::optional<Flags> flags = ParseFlags(argc, argv);
  if (!flags) {
    return 2;
  }
  std::unique_ptr<integration::DtabdProcess> dtabd;
  std::string address = flags->server;
  if (address.empty()) {
    absl::StatusOr<std::unique_ptr<integration::DtabdProcess>> p =
        integration::DtabdProcess::Start();
    if (!p.ok()) {
      std::cerr << "grpc_get_benchmark: cannot start dtabd: " << p.status() << "\n";
      return 1;
    }
    dtabd = *std::move(p);
    address = dtabd->grpc_address();
  }

  std::vector<std::unique_ptr<v1::DtabService::Stub>> stubs;
  for (int i = 0; i < flags->channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    stubs.push_back(v1::DtabService::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args)));
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    v1::PutDtabRequest req;
    req.set_namespace_(kNamespace);
    req.set_dtab(kBenchDtab);
    v1::VersionedDtab resp;
    const grpc::Status s = stubs[0]->PutDtab(&ctx, req, &resp);
    if (!s.ok()) {
      std::cerr << "grpc_get_benchmark: PutDtab: " << s.error_code() << " " << s.error_message()
                << "\n";
      return 1;
    }
  }

  std::printf("GetDtab (latest) over %d channels to %s, %.1f s per level after %.1f s warmup\n",
              flags->channels, address.c_str(), flags->seconds, flags->warmup);
  std::printf("%8s %10s %10s %8s %8s %8s %9s %8s %6s %11s %11s\n", "inflight", "calls",
              "calls/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "errors",
              "cli cpu/call", "srv cpu/call");
  std::vector<LevelResult> results;
  bool failed = false;
  for (int inflight : flags->inflight) {
    LevelResult r = RunLevel(stubs, inflight, *flags, dtabd != nullptr ? dtabd->pid() : -1);
    std::printf("%8d %10lld %10.0f %8.0f %8.0f %8.0f %9.0f %8.0f %6lld %9.1fus %9.1fus\n",
                r.inflight, static_cast<long long>(r.calls), r.calls_per_s, r.p50_us, r.p90_us,
                r.p99_us, r.p999_us, r.max_us, static_cast<long long>(r.errors),
                r.client_cpu_us_per_call, r.server_cpu_us_per_call);
    std::fflush(stdout);
    if (r.errors > 0) {
      std::fprintf(stderr, "grpc_get_benchmark: %lld errors at inflight=%d, first: %s\n",
                   static_cast<long long>(r.errors), inflight, r.first_error.c_str());
      failed = true;
    }
    results.push_back(std::move(r));
  }

  if (!flags->json.empty()) {
    std::ofstream out(flags->json);
    out << "{\"channels\":" << flags->channels << ",\"seconds\":" << flags->seconds
        << ",\"levels\":[";
    for (size_t i = 0; i < results.size(); ++i) {
      const LevelResult& r = results[i];
      out << (i ? "," : "") << "{\"inflight\":" << r.inflight << ",\"calls\":" << r.calls
          << ",\"calls_per_s\":" << r.calls_per_s << ",\"p50_us\":" << r.p50_us
          << ",\"p90_us\":" << r.p90_us << ",\"p99_us\":" << r.p99_us
          << ",\"p999_us\":" << r.p999_us << ",\"max_us\":" << r.max_us
          << ",\"errors\":" << r.errors
          << ",\"client_cpu_us_per_call\":" << r.client_cpu_us_per_call
          << ",\"server_cpu_us_per_call\":" << r.server_cpu_us_per_call << "}";
    }
    out << "]}\n";
    if (!out.flush()) {
      std::cerr << "grpc_get_benchmark: cannot write " << flags->json << "\n";
      return 1;
    }
  }
  stubs.clear();  // close the connections before stopping dtabd
  if (dtabd != nullptr) {
    absl::StatusOr<int> code = dtabd->Stop();
    if (!code.ok() || *code != 0) {
      std::cerr << "grpc_get_benchmark: dtabd did not stop cleanly: "
                << (code.ok() ? absl::StrCat("exit ", *code) : code.status().ToString()) << "\n";
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace dtabd::bench

int main(int argc, char** argv) { return dtabd::bench::Main(argc, argv); }
