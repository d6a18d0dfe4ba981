// Backoff: the delays between reconnect attempts of a discovery client, as
// jittered exponential backoff [Envoy JitteredExponentialBackOffStrategy,
// gRPC connection-backoff.md].
//
// After n consecutive failures the ceiling is min(max, base * multiplier^n);
// the delay is drawn uniformly from [ceiling * (1 - jitter), ceiling], so a
// fleet that lost dtabd at the same moment spreads its reconnects. Reset()
// (called when a message arrives) starts again at base.
//
// The random source is a seeded std::mt19937_64 and the draw is computed
// here (not by std::uniform_real_distribution), so a seed gives the same
// delays on every platform.
//
// Thread-safety: not thread-safe; one owner (the client's thread).
#ifndef DTABD_DISCOVERY_BACKOFF_H_
#define DTABD_DISCOVERY_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace dtabd::discovery {

class Backoff {
 public:
  struct Options {
    // The ceiling of the first delay. Should be > 0.
    absl::Duration base = absl::Milliseconds(500);
    // The largest ceiling. Should be >= base.
    absl::Duration max = absl::Seconds(30);
    // Growth of the ceiling per failure. Should be >= 1.
    double multiplier = 2.0;
    // The fraction of the ceiling that is random. Should be in [0, 1].
    double jitter = 0.5;
  };

  // `options` should satisfy the constraints above (DtabClient::Start
  // rejects those that do not); out-of-range values are clamped into range.
  Backoff(const Options& options, uint64_t seed);

  // The delay before the next attempt, after one more failure: uniform in
  // [ceiling * (1 - jitter), ceiling] where ceiling = min(max, base *
  // multiplier^failures()). Increments failures().
  absl::Duration Next();

  // The delay when the server asked for `pushback` (grpc-retry-pushback-ms):
  // pushback scaled by a uniform factor in [1, 1 + jitter] (never sooner
  // than asked; spread so clients pushed back together do not return
  // together), at most max(max, pushback). Increments failures(), so a
  // later Next() continues from the grown ceiling.
  absl::Duration NextWithPushback(absl::Duration pushback);

  // Starts over at base (a message was received). failures() becomes 0.
  void Reset() { failures_ = 0; }

  // Failures since construction or the last Reset().
  int failures() const { return failures_; }

  const Options& options() const { return options_; }

 private:
  // Uniform in [0, 1), from the top 53 bits of one draw.
  double Uniform01();
  // min(max, base * multiplier^failures_).
  absl::Duration Ceiling() const;

  const Options options_;
  std::mt19937_64 rng_;
  int failures_ = 0;
};

}  // namespace dtabd::discovery

#endif  // DTABD_DISCOVERY_BACKOFF_H_
