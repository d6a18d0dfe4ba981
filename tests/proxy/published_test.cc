#include "proxy/published.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace dtabd::proxy {
namespace {

// A snapshot whose two fields must always agree (a torn or freed snapshot
// would break that).
struct Snapshot {
  explicit Snapshot(int v) : value(v), text(std::to_string(v)) {}
  int value;
  std::string text;
  bool Consistent() const { return text == std::to_string(value); }
};

std::shared_ptr<const Snapshot> Make(int v) { return std::make_shared<const Snapshot>(v); }

// Waits (with a deadline, never a sleep) for `n`; fails the test on timeout.
void Await(absl::Notification& n) {
  ASSERT_TRUE(n.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(PublishedTest, GetSeesTheInitialValue) {
  Published<Snapshot> p(Make(1));
  EXPECT_EQ(p.Get().value, 1);
  EXPECT_EQ(p.Load()->value, 1);
  EXPECT_EQ(p.generation(), 0u);
}

TEST(PublishedTest, GetSeesANewPublishOnTheSameThread) {
  Published<Snapshot> p(Make(1));
  EXPECT_EQ(p.Get().value, 1);
  p.Publish(Make(2));
  EXPECT_EQ(p.generation(), 1u);
  EXPECT_EQ(p.Get().value, 2);
  EXPECT_EQ(p.Load()->value, 2);
  p.Publish(Make(3));
  p.Publish(Make(4));
  EXPECT_EQ(p.Get().value, 4);
  EXPECT_EQ(p.generation(), 3u);
}

TEST(PublishedTest, ObjectsDoNotShareCachedSnapshots) {
  // Each object has its own per-thread slot, also for objects created at
  // the address of a destroyed one.
  for (int i = 0; i < 5; ++i) {
    auto a = std::make_unique<Published<Snapshot>>(Make(i));
    Published<Snapshot> b(Make(100 + i));
    EXPECT_EQ(a->Get().value, i);
    EXPECT_EQ(b.Get().value, 100 + i);
  }
}

TEST(PublishedTest, GetOnAnotherThreadSeesANewPublish) {
  Published<Snapshot> p(Make(1));
  absl::Notification read_first;
  absl::Notification published;
  int first = 0;
  int second = 0;
  std::thread reader([&] {
    first = p.Get().value;  // caches 1 on this thread
    read_first.Notify();
    Await(published);
    second = p.Get().value;
  });
  Await(read_first);
  p.Publish(Make(2));
  published.Notify();
  reader.join();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
}

TEST(PublishedTest, OldSnapshotsStayValidWhileHeld) {
  Published<Snapshot> p(Make(1));
  std::weak_ptr<const Snapshot> first;
  {
    std::shared_ptr<const Snapshot> held = p.Load();
    first = held;
    const Snapshot& cached = p.Get();  // this thread caches 1 too
    p.Publish(Make(2));
    p.Publish(Make(3));
    // Both references to the old snapshot are still good.
    EXPECT_EQ(held->value, 1);
    EXPECT_TRUE(held->Consistent());
    EXPECT_EQ(&cached, held.get());
    EXPECT_EQ(cached.value, 1);
  }
  // Still cached by this thread until its next Get.
  EXPECT_FALSE(first.expired());
  EXPECT_EQ(p.Get().value, 3);
  EXPECT_TRUE(first.expired());
}

TEST(PublishedTest, ReferenceFromGetSurvivesAPublishOnAnotherThread) {
  Published<Snapshot> p(Make(1));
  const Snapshot& mine = p.Get();
  std::thread writer([&p] {
    for (int i = 2; i <= 100; ++i) {
      p.Publish(Make(i));
      EXPECT_EQ(p.Get().value, i);  // the writer reads its own writes
    }
  });
  writer.join();
  EXPECT_EQ(mine.value, 1);
  EXPECT_TRUE(mine.Consistent());
  EXPECT_EQ(p.Get().value, 100);
}

TEST(PublishedTest, ConcurrentReadersSeeOnlyPublishedValuesInOrder) {
  constexpr int kReaders = 4;
  constexpr int kLast = 2000;
  Published<Snapshot> p(Make(0));
  std::atomic<bool> failed{false};
  std::vector<std::thread> readers;
  absl::Notification start;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      Await(start);
      int last_seen = 0;
      while (last_seen < kLast) {
        const Snapshot& s = p.Get();
        // Never a torn or freed value; never older than one seen before.
        if (!s.Consistent() || s.value < last_seen || s.value > kLast) {
          failed.store(true);
          return;
        }
        last_seen = s.value;
        if (r % 2 == 1 && p.Load()->value < last_seen) {
          failed.store(true);
          return;
        }
      }
    });
  }
  std::thread writer([&] {
    Await(start);
    for (int i = 1; i <= kLast; ++i) {
      p.Publish(Make(i));
    }
  });
  start.Notify();
  writer.join();
  for (std::thread& t : readers) {
    t.join();
  }
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(p.generation(), static_cast<uint64_t>(kLast));
  EXPECT_EQ(p.Get().value, kLast);
}

}  // namespace
}  // namespace dtabd::proxy
