#include "proxy/metrics.h"

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "dtab/path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dtabd::proxy {
namespace {

using ::testing::ElementsAre;

// The bucket index each observation landed in (exactly one is set).
size_t BucketOf(double ms) {
  Histogram h;
  h.Observe(ms);
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    if (h.buckets[i] == 1) {
      return i;
    }
  }
  return h.buckets.size();
}

TEST(HistogramTest, BucketsAreUpperBoundsInclusive) {
  EXPECT_EQ(BucketOf(0), 0u);
  EXPECT_EQ(BucketOf(0.05), 0u);
  EXPECT_EQ(BucketOf(0.1), 0u);  // le="0.1"
  EXPECT_EQ(BucketOf(0.11), 1u);
  EXPECT_EQ(BucketOf(0.25), 1u);
  EXPECT_EQ(BucketOf(1), 3u);
  EXPECT_EQ(BucketOf(1.5), 4u);
  EXPECT_EQ(BucketOf(10000), 15u);
  EXPECT_EQ(BucketOf(10000.5), 16u);  // +Inf
  EXPECT_EQ(BucketOf(1e9), 16u);
  for (size_t i = 0; i < Histogram::kBoundsMs.size(); ++i) {
    EXPECT_EQ(BucketOf(Histogram::kBoundsMs[i]), i) << Histogram::kBoundsMs[i];
  }
}

TEST(HistogramTest, CountsAndSums) {
  Histogram h;
  h.Observe(0.2);
  h.Observe(0.2);
  h.Observe(30);
  EXPECT_EQ(h.count, 3u);
  EXPECT_DOUBLE_EQ(h.sum_ms, 30.4);
  EXPECT_EQ(h.buckets[1], 2u);
  EXPECT_EQ(h.buckets[8], 1u);  // (25, 50]
  uint64_t total = 0;
  for (uint64_t b : h.buckets) {
    total += b;
  }
  EXPECT_EQ(total, h.count);
}

TEST(HistogramTest, MergeAddsBucketsCountsAndSums) {
  Histogram a;
  a.Observe(0.5);
  a.Observe(20000);
  Histogram b;
  b.Observe(0.5);
  b.Observe(3);
  a.Merge(b);
  EXPECT_EQ(a.count, 4u);
  EXPECT_DOUBLE_EQ(a.sum_ms, 20004);
  EXPECT_EQ(a.buckets[2], 2u);
  EXPECT_EQ(a.buckets[5], 1u);
  EXPECT_EQ(a.buckets[16], 1u);
  // Merging an empty histogram changes nothing.
  const Histogram before = a;
  a.Merge(Histogram{});
  EXPECT_EQ(a.buckets, before.buckets);
  EXPECT_EQ(a.count, before.count);
}

TEST(RequestStatsTest, CountsStatusClasses) {
  RequestStats s;
  for (int status : {100, 200, 204, 301, 404, 499, 500, 503, 0, 600, 99, -1}) {
    s.Record(status, 1.0);
  }
  EXPECT_EQ(s.requests, 12u);
  // [0] no response (and anything outside 100-599), then 1xx..5xx.
  EXPECT_THAT(s.status_classes, ElementsAre(4, 1, 2, 1, 2, 2));
  EXPECT_EQ(s.latency.count, 12u);
  EXPECT_DOUBLE_EQ(s.latency.sum_ms, 12.0);
}

TEST(RequestStatsTest, MergeAddsEverything) {
  RequestStats a;
  a.Record(200, 1);
  RequestStats b;
  b.Record(502, 2);
  b.Record(200, 3);
  a.Merge(b);
  EXPECT_EQ(a.requests, 3u);
  EXPECT_THAT(a.status_classes, ElementsAre(0, 0, 2, 0, 0, 1));
  EXPECT_EQ(a.latency.count, 3u);
  EXPECT_DOUBLE_EQ(a.latency.sum_ms, 6);
}

dtab::Path Svc(int i) { return dtab::Path({"svc", absl::StrCat("s", i)}); }
dtab::Path Other() { return dtab::Path({"(other)"}); }

TEST(RouterStatsTest, ServiceReturnsOneEntryPerName) {
  RouterStats r;
  RequestStats& a = r.Service(Svc(1));
  a.Record(200, 1);
  EXPECT_EQ(&r.Service(Svc(1)), &a);
  EXPECT_EQ(r.Service(Svc(1)).requests, 1u);
  EXPECT_NE(&r.Service(Svc(2)), &a);
  EXPECT_EQ(r.services.size(), 2u);
}

TEST(RouterStatsTest, ServiceCapsAtMaxServicesIntoOther) {
  RouterStats r;
  for (size_t i = 0; i < RouterStats::kMaxServices; ++i) {
    r.Service(Svc(static_cast<int>(i))).Record(200, 1);
  }
  EXPECT_EQ(r.services.size(), RouterStats::kMaxServices);
  EXPECT_EQ(r.services.count(Other()), 0u);

  // New names from now on share "(other)".
  r.Service(Svc(5000)).Record(200, 1);
  r.Service(Svc(5001)).Record(500, 1);
  EXPECT_EQ(r.services.size(), RouterStats::kMaxServices + 1);
  EXPECT_EQ(r.services.count(Svc(5000)), 0u);
  ASSERT_EQ(r.services.count(Other()), 1u);
  EXPECT_EQ(r.services.at(Other()).requests, 2u);
  EXPECT_EQ(&r.Service(Svc(5002)), &r.services.at(Other()));

  // Names that already have an entry keep it.
  r.Service(Svc(7)).Record(200, 1);
  EXPECT_EQ(r.services.at(Svc(7)).requests, 2u);
  EXPECT_EQ(r.services.size(), RouterStats::kMaxServices + 1);
}

TEST(RouterStatsTest, MergeAddsCountersAndStats) {
  RouterStats a;
  a.total.Record(200, 1);
  a.Service(Svc(1)).Record(200, 1);
  a.overrides = 1;
  a.override_cache_hits = 2;
  RouterStats b;
  b.total.Record(404, 1);
  b.Service(Svc(1)).Record(404, 1);
  b.Service(Svc(2)).Record(200, 1);
  b.overrides = 3;
  b.overrides_rejected = 1;
  b.override_cache_hits = 5;
  b.override_cache_misses = 7;
  a.Merge(b);
  EXPECT_EQ(a.total.requests, 2u);
  EXPECT_EQ(a.services.at(Svc(1)).requests, 2u);
  EXPECT_EQ(a.services.at(Svc(2)).requests, 1u);
  EXPECT_EQ(a.overrides, 4u);
  EXPECT_EQ(a.overrides_rejected, 1u);
  EXPECT_EQ(a.override_cache_hits, 7u);
  EXPECT_EQ(a.override_cache_misses, 7u);
}

TEST(RouterStatsTest, MergeKeepsTheServiceCap) {
  // Two io threads that each saw kMaxServices different names: the merged
  // stats still hold at most kMaxServices names plus "(other)", and lose no
  // request.
  RouterStats a;
  RouterStats b;
  for (size_t i = 0; i < RouterStats::kMaxServices; ++i) {
    a.Service(Svc(static_cast<int>(i))).Record(200, 1);
    b.Service(Svc(static_cast<int>(i + RouterStats::kMaxServices))).Record(200, 1);
  }
  b.Service(Svc(999999)).Record(200, 1);  // b's "(other)"
  a.Merge(b);
  EXPECT_LE(a.services.size(), RouterStats::kMaxServices + 1);
  uint64_t requests = 0;
  for (const auto& [name, s] : a.services) {
    requests += s.requests;
  }
  EXPECT_EQ(requests, 2 * RouterStats::kMaxServices + 1);
  EXPECT_EQ(a.services.at(Other()).requests, RouterStats::kMaxServices + 1);
}

TEST(WorkerStatsTest, MergeGrowsRoutersAndAddsCounters) {
  WorkerStats a;
  a.routers.resize(1);
  a.routers[0].total.Record(200, 1);
  a.malformed = 1;
  WorkerStats b;
  b.routers.resize(2);
  b.routers[0].total.Record(200, 1);
  b.routers[1].total.Record(500, 1);
  b.malformed = 2;
  b.connections_accepted = 3;
  b.upstream_connects = 4;
  b.upstream_connect_failures = 5;
  a.Merge(b);
  ASSERT_EQ(a.routers.size(), 2u);
  EXPECT_EQ(a.routers[0].total.requests, 2u);
  EXPECT_EQ(a.routers[1].total.requests, 1u);
  EXPECT_EQ(a.malformed, 3u);
  EXPECT_EQ(a.connections_accepted, 3u);
  EXPECT_EQ(a.upstream_connects, 4u);
  EXPECT_EQ(a.upstream_connect_failures, 5u);
}

}  // namespace
}  // namespace dtabd::proxy
