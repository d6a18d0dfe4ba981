#include "discovery/backoff.h"

#include <algorithm>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::discovery {
namespace {

using ::testing::AllOf;
using ::testing::Ge;
using ::testing::Le;

Backoff::Options MakeOptions(absl::Duration base, absl::Duration max, double jitter) {
  Backoff::Options o;
  o.base = base;
  o.max = max;
  o.jitter = jitter;
  return o;
}

std::vector<absl::Duration> Draw(Backoff& b, int n) {
  std::vector<absl::Duration> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(b.Next());
  }
  return out;
}

TEST(BackoffTest, WithoutJitterDoublesFromBaseUpToMax) {
  Backoff b(MakeOptions(absl::Milliseconds(100), absl::Seconds(1), 0.0), 1);
  EXPECT_THAT(Draw(b, 6), ::testing::ElementsAre(absl::Milliseconds(100), absl::Milliseconds(200),
                                                 absl::Milliseconds(400), absl::Milliseconds(800),
                                                 absl::Seconds(1), absl::Seconds(1)));
  EXPECT_EQ(b.failures(), 6);
}

TEST(BackoffTest, JitteredDelayLiesBetweenHalfTheCeilingAndTheCeiling) {
  Backoff b(MakeOptions(absl::Milliseconds(500), absl::Seconds(30), 0.5), 42);
  absl::Duration ceiling = absl::Milliseconds(500);
  for (int i = 0; i < 20; ++i) {
    const absl::Duration d = b.Next();
    EXPECT_THAT(d, AllOf(Ge(ceiling / 2), Le(ceiling))) << "attempt " << i;
    ceiling = std::min(ceiling * 2, absl::Seconds(30));
  }
}

TEST(BackoffTest, SameSeedGivesSameDelaysAndOtherSeedsDiffer) {
  const Backoff::Options o = MakeOptions(absl::Milliseconds(500), absl::Seconds(30), 0.5);
  Backoff a(o, 7);
  Backoff b(o, 7);
  Backoff c(o, 8);
  const std::vector<absl::Duration> da = Draw(a, 10);
  EXPECT_EQ(da, Draw(b, 10));
  EXPECT_NE(da, Draw(c, 10));
}

TEST(BackoffTest, JitterSpreadsAFleetThatFailedTogether) {
  const Backoff::Options o = MakeOptions(absl::Milliseconds(500), absl::Seconds(30), 0.5);
  std::vector<absl::Duration> first;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Backoff b(o, seed);
    first.push_back(b.Next());
  }
  std::sort(first.begin(), first.end());
  // 100 uniform draws over [250ms, 500ms]: the spread covers most of it.
  EXPECT_GT(first.back() - first.front(), absl::Milliseconds(200));
  EXPECT_EQ(std::unique(first.begin(), first.end()), first.end());
}

TEST(BackoffTest, ResetStartsOverAtBase) {
  Backoff b(MakeOptions(absl::Milliseconds(100), absl::Seconds(10), 0.0), 1);
  Draw(b, 5);
  EXPECT_EQ(b.failures(), 5);
  b.Reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
}

TEST(BackoffTest, ManyFailuresStayAtMaxWithoutOverflow) {
  Backoff b(MakeOptions(absl::Milliseconds(1), absl::Seconds(30), 0.0), 1);
  absl::Duration last;
  for (int i = 0; i < 5000; ++i) {
    last = b.Next();
    ASSERT_LE(last, absl::Seconds(30)) << "attempt " << i;
  }
  EXPECT_EQ(last, absl::Seconds(30));
}

TEST(BackoffTest, PushbackIsNeverSoonerThanAskedAndIsSpread) {
  Backoff b(MakeOptions(absl::Milliseconds(100), absl::Seconds(30), 0.5), 3);
  for (int i = 0; i < 20; ++i) {
    EXPECT_THAT(b.NextWithPushback(absl::Seconds(2)),
                AllOf(Ge(absl::Seconds(2)), Le(absl::Seconds(3))));
  }
  EXPECT_EQ(b.failures(), 20);
}

TEST(BackoffTest, PushbackBeyondMaxIsHonouredExactly) {
  Backoff b(MakeOptions(absl::Milliseconds(100), absl::Seconds(30), 0.5), 3);
  EXPECT_EQ(b.NextWithPushback(absl::Seconds(90)), absl::Seconds(90));
}

TEST(BackoffTest, PushbackCountsAsAFailureForLaterDelays) {
  Backoff b(MakeOptions(absl::Milliseconds(100), absl::Seconds(30), 0.0), 3);
  (void)b.NextWithPushback(absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Milliseconds(200));
}

TEST(BackoffTest, OutOfRangeOptionsAreClamped) {
  Backoff b(MakeOptions(absl::ZeroDuration(), -absl::Seconds(1), 7.0), 3);
  const absl::Duration d = b.Next();
  EXPECT_GE(d, absl::ZeroDuration());
  EXPECT_LE(d, absl::Milliseconds(1));
}

}  // namespace
}  // namespace dtabd::discovery
