#include "server/dtab_hub.h"

#include <vector>

#include "gtest/gtest.h"

namespace dtabd::server {
namespace {

storage::VersionedDtab Version(const std::string& ns, int64_t version, int64_t revision,
                               bool deleted = false) {
  storage::VersionedDtab v;
  v.ns = ns;
  v.version = version;
  v.revision = revision;
  v.dtab = deleted ? "" : "/a=>/b";
  v.deleted = deleted;
  return v;
}

class Recorder final : public DtabHub::Subscriber {
 public:
  void OnDtab(DtabHub::Snapshot dtab) override { versions.push_back(dtab->version); }
  void OnShutdown() override { ++shutdowns; }
  std::vector<int64_t> versions;
  int shutdowns = 0;
};

TEST(DtabHubTest, SubscribeReturnsTheLatestAndThenDeliversNewerVersions) {
  DtabHub hub;
  hub.Publish(Version("a", 1, 1));
  Recorder r;
  bool shut_down = true;
  DtabHub::Snapshot current = hub.Subscribe("a", &r, &shut_down);
  EXPECT_FALSE(shut_down);
  ASSERT_NE(current, nullptr);
  EXPECT_EQ(current->version, 1);
  hub.Publish(Version("a", 2, 5));
  hub.Publish(Version("b", 1, 6));  // another namespace: not delivered
  hub.Publish(Version("a", 3, 7, /*deleted=*/true));
  EXPECT_EQ(r.versions, (std::vector<int64_t>{2, 3}));
  hub.Unsubscribe("a", &r);
  hub.Publish(Version("a", 4, 8));
  EXPECT_EQ(r.versions.size(), 2u);
}

TEST(DtabHubTest, OlderRevisionsPublishedLateAreIgnored) {
  DtabHub hub;
  Recorder r;
  bool shut_down = false;
  EXPECT_EQ(hub.Subscribe("a", &r, &shut_down), nullptr);
  hub.Publish(Version("a", 2, 9));
  hub.Publish(Version("a", 1, 4));  // a slower concurrent writer
  EXPECT_EQ(r.versions, (std::vector<int64_t>{2}));
  EXPECT_EQ(hub.Latest("a")->version, 2);
}

TEST(DtabHubTest, LiveNamespacesExcludeDeletedOnes) {
  DtabHub hub;
  hub.Publish(Version("b", 1, 1));
  hub.Publish(Version("a", 1, 2));
  hub.Publish(Version("c", 1, 3));
  hub.Publish(Version("c", 2, 4, /*deleted=*/true));
  EXPECT_EQ(hub.LiveNamespaces(), (std::vector<std::string>{"a", "b"}));
}

TEST(DtabHubTest, ShutdownNotifiesSubscribersAndRefusesNewOnes) {
  DtabHub hub;
  Recorder r;
  bool shut_down = false;
  hub.Subscribe("a", &r, &shut_down);
  EXPECT_EQ(hub.subscriber_count(), 1u);
  hub.Shutdown();
  EXPECT_EQ(r.shutdowns, 1);
  Recorder late;
  EXPECT_EQ(hub.Subscribe("a", &late, &shut_down), nullptr);
  EXPECT_TRUE(shut_down);
  hub.Unsubscribe("a", &r);
  EXPECT_EQ(hub.subscriber_count(), 0u);
}

}  // namespace
}  // namespace dtabd::server
