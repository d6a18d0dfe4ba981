#include "proxy/balancer.h"

#include <array>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config.h"

namespace dtabd::proxy {
namespace {

using ::testing::HasSubstr;

// A fixed instant: no wall clock in these tests.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

// Endpoints owned by the test, with the pointer and weight spans PickP2C
// takes.
class Pool {
 public:
  explicit Pool(std::vector<double> weights) : weights_(std::move(weights)) {
    for (size_t i = 0; i < weights_.size(); ++i) {
      owned_.push_back(std::make_unique<EndpointState>("10.0.0.1", static_cast<uint16_t>(i + 1)));
      pointers_.push_back(owned_.back().get());
    }
  }
  ~Pool() {
    for (EndpointState* e : pointers_) {
      while (e->inflight() > 0) {
        e->EndRequest();
      }
    }
  }

  EndpointState& at(size_t i) { return *pointers_[i]; }
  void SetInflight(size_t i, int n) {
    while (at(i).inflight() < n) {
      at(i).BeginRequest();
    }
    while (at(i).inflight() > n) {
      at(i).EndRequest();
    }
  }
  size_t Pick(FastRandom& random, absl::Time now = kNow) const {
    return PickP2C(pointers_, weights_, now, random);
  }
  // Picks `n` times and counts how often each endpoint won.
  std::vector<int> Count(int n, FastRandom& random, bool begin_requests = false,
                         absl::Time now = kNow) {
    std::vector<int> counts(pointers_.size(), 0);
    for (int i = 0; i < n; ++i) {
      const size_t picked = Pick(random, now);
      EXPECT_LT(picked, pointers_.size());
      if (picked >= pointers_.size()) {
        break;
      }
      ++counts[picked];
      if (begin_requests) {
        at(picked).BeginRequest();
      }
    }
    return counts;
  }

 private:
  std::vector<double> weights_;
  std::vector<std::unique_ptr<EndpointState>> owned_;
  std::vector<EndpointState*> pointers_;
};

ClientConfig Accrual(int failures, absl::Duration backoff, absl::Duration max) {
  ClientConfig c;
  c.failures_to_eject = failures;
  c.ejection_backoff = backoff;
  c.ejection_backoff_max = max;
  return c;
}

void Eject(EndpointState& e) {
  const ClientConfig c = Accrual(1, absl::Seconds(5), absl::Seconds(5));
  e.RecordFailure(c, kNow);
  ASSERT_TRUE(e.Ejected(kNow));
}

// ---------------------------------------------------------------------------
// FastRandom

TEST(FastRandomTest, StaysInRange) {
  FastRandom random(7);
  for (int i = 0; i < 10000; ++i) {
    const double d = random.NextDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
    ASSERT_LT(random.Below(3), 3u);
  }
  FastRandom zero(0);  // a zero seed is replaced (xorshift would stick at 0)
  EXPECT_NE(zero.Next(), 0u);
}

// ---------------------------------------------------------------------------
// PickP2C

TEST(PickP2CTest, SingleEndpointIsAlwaysPicked) {
  Pool pool({1.0});
  FastRandom random(1);
  EXPECT_EQ(pool.Pick(random), 0u);
  Eject(pool.at(0));
  EXPECT_EQ(pool.Pick(random), 0u);
}

TEST(PickP2CTest, PrefersTheLessLoadedOfTwo) {
  Pool pool({1.0, 1.0});
  FastRandom random(42);
  pool.SetInflight(0, 5);
  EXPECT_THAT(pool.Count(200, random), ::testing::ElementsAre(0, 200));
  pool.SetInflight(0, 0);
  pool.SetInflight(1, 1);
  EXPECT_THAT(pool.Count(200, random), ::testing::ElementsAre(200, 0));
}

TEST(PickP2CTest, TheMostLoadedOfThreeIsNeverPicked) {
  Pool pool({1.0, 1.0, 1.0});
  FastRandom random(3);
  pool.SetInflight(0, 0);
  pool.SetInflight(1, 1);
  pool.SetInflight(2, 10);
  const std::vector<int> counts = pool.Count(3000, random);
  EXPECT_EQ(counts[2], 0);
  // Endpoint 0 wins every pair it is in (2 of 3 pairs), 1 the pair {1, 2}.
  EXPECT_NEAR(counts[0], 2000, 150);
  EXPECT_NEAR(counts[1], 1000, 150);
}

TEST(PickP2CTest, AtEqualLoadTheHeavierOfThePairWins) {
  Pool pool({1.0, 2.0, 4.0});
  FastRandom random(11);
  const std::vector<int> counts = pool.Count(30000, random);
  // Pairs are uniform: {0,1} -> 1, {0,2} -> 2, {1,2} -> 2.
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1], 10000, 600);
  EXPECT_NEAR(counts[2], 20000, 600);
}

TEST(PickP2CTest, SpreadsLoadInProportionToWeight) {
  // Requests that never finish: the balancer keeps in-flight counts per
  // unit of weight level, so endpoint 3 (weight 3) gets half of them.
  Pool pool({1.0, 1.0, 1.0, 3.0});
  FastRandom random(5);
  const std::vector<int> counts = pool.Count(6000, random, /*begin_requests=*/true);
  EXPECT_NEAR(counts[3], 3000, 150);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(counts[i], 1000, 100) << i;
  }
}

TEST(PickP2CTest, SkipsEjectedEndpoints) {
  Pool pool({1.0, 1.0, 1.0});
  FastRandom random(9);
  pool.SetInflight(1, 3);
  pool.SetInflight(2, 3);
  Eject(pool.at(0));  // the least loaded, but ejected
  const std::vector<int> counts = pool.Count(3000, random);
  EXPECT_EQ(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  // Once the ejection is over it is picked again.
  const std::vector<int> later =
      pool.Count(300, random, /*begin_requests=*/false, kNow + absl::Seconds(5));
  EXPECT_NEAR(later[0], 200, 40);  // it wins every pair it is in
}

TEST(PickP2CTest, FindsTheOneHealthyEndpointWhenBothChoicesAreEjected) {
  Pool pool({1.0, 1.0, 1.0, 1.0});
  FastRandom random(13);
  pool.SetInflight(3, 50);
  Eject(pool.at(0));
  Eject(pool.at(1));
  Eject(pool.at(2));
  EXPECT_THAT(pool.Count(500, random), ::testing::ElementsAre(0, 0, 0, 500));
}

TEST(PickP2CTest, FallsBackToTheLeastLoadedWhenAllAreEjected) {
  Pool pool({1.0, 1.0, 1.0});
  FastRandom random(17);
  pool.SetInflight(0, 5);
  pool.SetInflight(1, 2);
  pool.SetInflight(2, 9);
  for (size_t i = 0; i < 3; ++i) {
    Eject(pool.at(i));
  }
  EXPECT_THAT(pool.Count(300, random), ::testing::ElementsAre(0, 300, 0));
}

// ---------------------------------------------------------------------------
// EndpointState

TEST(EndpointStateTest, KeyShowsTheAddress) {
  EXPECT_EQ(EndpointState("127.0.0.1", 8080).key(), "127.0.0.1:8080");
  EXPECT_EQ(EndpointState("::1", 80).key(), "[::1]:80");
  EndpointState e("10.1.2.3", 9);
  EXPECT_EQ(e.ip(), "10.1.2.3");
  EXPECT_EQ(e.port(), 9);
}

TEST(EndpointStateTest, InflightCountsBeginAndEnd) {
  EndpointState e("127.0.0.1", 1);
  EXPECT_EQ(e.inflight(), 0);
  e.BeginRequest();
  e.BeginRequest();
  EXPECT_EQ(e.inflight(), 2);
  e.EndRequest();
  EXPECT_EQ(e.inflight(), 1);
  e.EndRequest();
}

TEST(EndpointStateTest, EjectsAfterFailuresToEject) {
  const ClientConfig c = Accrual(3, absl::Seconds(5), absl::Seconds(300));
  EndpointState e("127.0.0.1", 1);
  e.RecordFailure(c, kNow);
  e.RecordFailure(c, kNow);
  EXPECT_FALSE(e.Ejected(kNow));
  EXPECT_EQ(e.ejections(), 0);
  e.RecordFailure(c, kNow);
  EXPECT_TRUE(e.Ejected(kNow));
  EXPECT_EQ(e.ejections(), 1);
  EXPECT_TRUE(e.Ejected(kNow + absl::Seconds(5) - absl::Nanoseconds(1)));
  EXPECT_FALSE(e.Ejected(kNow + absl::Seconds(5)));
}

TEST(EndpointStateTest, BackoffDoublesPerEjectionUpToTheMax) {
  const ClientConfig c = Accrual(2, absl::Seconds(5), absl::Seconds(30));
  EndpointState e("127.0.0.1", 1);
  absl::Time t = kNow;
  // Expected ejection lengths: 5, 10, 20, then capped at 30.
  for (absl::Duration want : {absl::Seconds(5), absl::Seconds(10), absl::Seconds(20),
                              absl::Seconds(30), absl::Seconds(30)}) {
    e.RecordFailure(c, t);
    EXPECT_FALSE(e.Ejected(t));
    e.RecordFailure(c, t);
    EXPECT_TRUE(e.Ejected(t + want - absl::Nanoseconds(1))) << want;
    EXPECT_FALSE(e.Ejected(t + want)) << want;
    t += want;
  }
  EXPECT_EQ(e.ejections(), 5);
}

TEST(EndpointStateTest, RecordSuccessResetsFailuresAndBackoff) {
  const ClientConfig c = Accrual(3, absl::Seconds(5), absl::Seconds(300));
  EndpointState e("127.0.0.1", 1);
  e.RecordFailure(c, kNow);
  e.RecordFailure(c, kNow);
  e.RecordSuccess();
  e.RecordFailure(c, kNow);
  e.RecordFailure(c, kNow);
  EXPECT_FALSE(e.Ejected(kNow));  // 2 consecutive, not 4

  // Two ejections in a row would make the next one 20 s; a success in
  // between starts over at 5 s.
  e.RecordFailure(c, kNow);  // ejected for 5 s
  ASSERT_TRUE(e.Ejected(kNow));
  absl::Time t = kNow + absl::Seconds(5);
  for (int i = 0; i < 3; ++i) {
    e.RecordFailure(c, t);  // ejected for 10 s
  }
  EXPECT_TRUE(e.Ejected(t + absl::Seconds(9)));
  t += absl::Seconds(10);
  e.RecordSuccess();
  for (int i = 0; i < 3; ++i) {
    e.RecordFailure(c, t);
  }
  EXPECT_TRUE(e.Ejected(t + absl::Seconds(5) - absl::Nanoseconds(1)));
  EXPECT_FALSE(e.Ejected(t + absl::Seconds(5)));
  EXPECT_EQ(e.ejections(), 3);
}

// ---------------------------------------------------------------------------
// EndpointRegistry

TEST(EndpointRegistryTest, ResolvesNamesAndShorthandsToOneState) {
  EndpointRegistry registry;
  absl::StatusOr<EndpointState*> by_name = registry.Get("localhost", 8080);
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ((*by_name)->ip(), "127.0.0.1");
  EXPECT_EQ((*by_name)->port(), 8080);
  EXPECT_EQ((*by_name)->key(), "127.0.0.1:8080");

  absl::StatusOr<EndpointState*> shorthand = registry.Get("127.1", 8080);
  ASSERT_TRUE(shorthand.ok()) << shorthand.status();
  EXPECT_EQ(*shorthand, *by_name);
  absl::StatusOr<EndpointState*> literal = registry.Get("127.0.0.1", 8080);
  ASSERT_TRUE(literal.ok()) << literal.status();
  EXPECT_EQ(*literal, *by_name);
  // Asked again by name: the same state.
  EXPECT_EQ(*registry.Get("localhost", 8080), *by_name);

  absl::StatusOr<EndpointState*> other_port = registry.Get("127.0.0.1", 8081);
  ASSERT_TRUE(other_port.ok()) << other_port.status();
  EXPECT_NE(*other_port, *by_name);
}

TEST(EndpointRegistryTest, AcceptsIpv6Literals) {
  EndpointRegistry registry;
  absl::StatusOr<EndpointState*> v6 = registry.Get("::1", 80);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ((*v6)->key(), "[::1]:80");
  EXPECT_EQ(*registry.Get("0:0:0:0:0:0:0:1", 80), *v6);
}

TEST(EndpointRegistryTest, UnresolvableNameIsInvalidArgument) {
  EndpointRegistry registry;
  absl::StatusOr<EndpointState*> e = registry.Get("no-such-host.invalid", 80);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("no-such-host.invalid"));
  EXPECT_TRUE(registry.All().empty());
}

TEST(EndpointRegistryTest, AllListsEveryEndpointByKey) {
  EndpointRegistry registry;
  ASSERT_TRUE(registry.Get("127.0.0.2", 2).ok());
  ASSERT_TRUE(registry.Get("127.0.0.1", 1).ok());
  ASSERT_TRUE(registry.Get("localhost", 1).ok());  // the same as 127.0.0.1:1
  std::vector<std::string> keys;
  for (const EndpointState* e : registry.All()) {
    keys.push_back(e->key());
  }
  EXPECT_THAT(keys, ::testing::ElementsAre("127.0.0.1:1", "127.0.0.2:2"));
}

TEST(EndpointRegistryTest, ConcurrentGetsAgreeOnTheState) {
  EndpointRegistry registry;
  constexpr int kThreads = 4;
  std::array<EndpointState*, kThreads> got{};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry, &got, t] {
      for (int i = 0; i < 100; ++i) {
        absl::StatusOr<EndpointState*> e =
            registry.Get(i % 2 == 0 ? "127.0.0.1" : "localhost", 9000);
        if (e.ok()) {
          got[t] = *e;
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (EndpointState* e : got) {
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e, got[0]);
  }
  EXPECT_EQ(registry.All().size(), 1u);
}

}  // namespace
}  // namespace dtabd::proxy
