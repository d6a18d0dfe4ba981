#include "discovery/backoff.h"

#include <algorithm>
#include <cmath>

namespace dtabd::discovery {
namespace {

Backoff::Options Clamped(Backoff::Options o) {
  if (o.base <= absl::ZeroDuration()) {
    o.base = absl::Milliseconds(1);
  }
  o.max = std::max(o.max, o.base);
  if (!(o.multiplier >= 1.0)) {  // also NaN
    o.multiplier = 1.0;
  }
  if (!(o.jitter >= 0.0)) {
    o.jitter = 0.0;
  }
  o.jitter = std::min(o.jitter, 1.0);
  return o;
}

}  // namespace

Backoff::Backoff(const Options& options, uint64_t seed) : options_(Clamped(options)), rng_(seed) {}

double Backoff::Uniform01() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

absl::Duration Backoff::Ceiling() const {
  // base * multiplier^failures_, computed in doubles so it cannot overflow;
  // compared with max before converting back.
  const double base_s = absl::ToDoubleSeconds(options_.base);
  const double max_s = absl::ToDoubleSeconds(options_.max);
  const double ceiling_s = base_s * std::pow(options_.multiplier, failures_);
  if (!(ceiling_s < max_s)) {
    return options_.max;
  }
  return absl::Seconds(ceiling_s);
}

absl::Duration Backoff::Next() {
  const absl::Duration ceiling = Ceiling();
  const double factor = 1.0 - options_.jitter * Uniform01();  // in (1 - jitter, 1]
  if (failures_ < 1'000'000) {
    ++failures_;
  }
  return ceiling * factor;
}

absl::Duration Backoff::NextWithPushback(absl::Duration pushback) {
  pushback = std::max(pushback, absl::ZeroDuration());
  const double factor = 1.0 + options_.jitter * Uniform01();  // in [1, 1 + jitter)
  if (failures_ < 1'000'000) {
    ++failures_;
  }
  return std::min(pushback * factor, std::max(options_.max, pushback));
}

}  // namespace dtabd::discovery
