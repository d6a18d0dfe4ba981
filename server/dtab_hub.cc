#include "server/dtab_hub.h"

#include <algorithm>
#include <utility>

namespace dtabd::server {

void DtabHub::Publish(storage::VersionedDtab v) {
  auto snapshot = std::make_shared<const storage::VersionedDtab>(std::move(v));
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[snapshot->ns];
  if (e.latest != nullptr && e.latest->revision >= snapshot->revision) {
    return;
  }
  e.latest = snapshot;
  revision_ = std::max(revision_, snapshot->revision);
  for (Subscriber* s : e.subscribers) {
    s->OnDtab(snapshot);
  }
  for (Subscriber* s : all_subscribers_) {
    s->OnDtab(snapshot);
  }
}

DtabHub::Snapshot DtabHub::Latest(const std::string& ns) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(ns);
  return it == entries_.end() ? nullptr : it->second.latest;
}

DtabHub::Snapshot DtabHub::Subscribe(const std::string& ns, Subscriber* s, bool* shut_down) {
  absl::MutexLock lock(&mu_);
  *shut_down = shut_down_;
  if (shut_down_) {
    return nullptr;
  }
  Entry& e = entries_[ns];
  e.subscribers.push_back(s);
  return e.latest;
}

void DtabHub::Unsubscribe(const std::string& ns, Subscriber* s) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(ns);
  if (it == entries_.end()) {
    return;
  }
  auto& subs = it->second.subscribers;
  subs.erase(std::remove(subs.begin(), subs.end(), s), subs.end());
}

std::vector<DtabHub::Snapshot> DtabHub::SubscribeAll(Subscriber* s, bool* shut_down) {
  absl::MutexLock lock(&mu_);
  *shut_down = shut_down_;
  std::vector<Snapshot> out;
  if (shut_down_) {
    return out;
  }
  all_subscribers_.push_back(s);
  for (const auto& [ns, e] : entries_) {
    if (e.latest != nullptr) {
      out.push_back(e.latest);
    }
  }
  return out;
}

void DtabHub::UnsubscribeAll(Subscriber* s) {
  absl::MutexLock lock(&mu_);
  all_subscribers_.erase(std::remove(all_subscribers_.begin(), all_subscribers_.end(), s),
                         all_subscribers_.end());
}

int64_t DtabHub::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

void DtabHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (Subscriber* s : all_subscribers_) {
    s->OnShutdown();
  }
  for (auto& [ns, e] : entries_) {
    for (Subscriber* s : e.subscribers) {
      s->OnShutdown();
    }
  }
}

size_t DtabHub::subscriber_count() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;  // per-namespace watches only (not the discovery service)
  for (const auto& [ns, e] : entries_) {
    n += e.subscribers.size();
  }
  return n;
}

std::vector<std::string> DtabHub::LiveNamespaces() const {
  std::vector<std::string> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [ns, e] : entries_) {
      if (e.latest != nullptr && !e.latest->deleted) {
        out.push_back(ns);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dtabd::server
