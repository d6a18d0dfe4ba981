#include "server/convert.h"

namespace dtabd::server {

void ToProto(const storage::VersionedDtab& v, v1::VersionedDtab* out) {
  out->set_namespace_(v.ns);
  out->set_version(v.version);
  out->set_dtab(v.dtab);
  out->set_revision(v.revision);
  out->set_author(v.author);
  out->set_comment(v.comment);
  const int64_t us = absl::ToUnixMicros(v.created_at);
  out->mutable_created_at()->set_seconds(us / 1'000'000);
  out->mutable_created_at()->set_nanos(static_cast<int32_t>(us % 1'000'000) * 1000);
  out->set_deleted(v.deleted);
}

}  // namespace dtabd::server
