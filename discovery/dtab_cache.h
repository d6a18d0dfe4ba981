// DtabCache: the last accepted version of each namespace, on disk, so a
// restarted proxy can route before dtabd answers.
//
// Layout: one file per namespace, DIR/NAMESPACE.dtab, holding a one-line
// header "dtabd-dtab-cache 1 CRC LENGTH\n" (CRC: CRC-32C of the payload in
// 8 hex digits; LENGTH: payload bytes in decimal) followed by the payload,
// a serialized dtabd.v1.VersionedDtab. A file is replaced atomically: the
// new contents go to a temporary file in DIR (".NAMESPACE.dtab.tmp.XXXXXX"),
// which is fsynced and renamed over the old one, and DIR is fsynced; a crash
// leaves the old file or the new one, never a mix, and at worst a stray
// temporary file, which Open() removes.
//
// A file that fails any check (header, length, checksum, protobuf parse, its
// namespace or version) is corrupt: Read() reports DataLoss and the caller
// ignores it; the next Write() of that namespace replaces it.
//
// Thread-safety: thread-compatible. Concurrent calls for different
// namespaces are safe; calls for the same namespace must be serialised by
// the caller (DtabClient calls from its one thread). Every call blocks on
// file I/O.
#ifndef DTABD_DISCOVERY_DTAB_CACHE_H_
#define DTABD_DISCOVERY_DTAB_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dtabd/v1/dtab.pb.h"

namespace dtabd::discovery {

// OK when `ns` is a valid namespace name (1 to 128 of [A-Za-z0-9_-], as
// dtabd enforces), else InvalidArgument naming it. Valid names are safe
// file names.
absl::Status ValidateNamespaceName(absl::string_view ns);

// CRC-32C (Castagnoli) of `data`, as used in cache file headers.
uint32_t Crc32c(absl::string_view data);

class DtabCache {
 public:
  // Creates `dir` (and its parents) if missing and removes temporary files
  // left by an interrupted Write. InvalidArgument: `dir` is empty.
  // FailedPrecondition: `dir` cannot be created or is not a directory.
  static absl::StatusOr<std::unique_ptr<DtabCache>> Open(std::string dir);

  DtabCache(const DtabCache&) = delete;
  DtabCache& operator=(const DtabCache&) = delete;

  // The cached version of `ns`. NotFound: no file. DataLoss: the file is
  // corrupt (the message names the file and what is wrong). InvalidArgument:
  // `ns` is not a valid namespace. Unavailable: the file cannot be read.
  absl::StatusOr<v1::VersionedDtab> Read(absl::string_view ns) const;

  // Atomically replaces the file of `dtab.namespace_()` with `dtab`.
  // InvalidArgument: invalid namespace, version < 1, or a deletion
  // tombstone. Unavailable: an I/O error (e.g. disk full); the old file is
  // left intact.
  absl::Status Write(const v1::VersionedDtab& dtab) const;

  // Removes the file of `ns` (OK if there is none) and fsyncs the directory.
  // InvalidArgument: invalid namespace. Unavailable: an I/O error.
  absl::Status Remove(absl::string_view ns) const;

  const std::string& dir() const { return dir_; }
  // DIR/NS.dtab.
  std::string PathFor(absl::string_view ns) const;

 private:
  explicit DtabCache(std::string dir) : dir_(std::move(dir)) {}

  // Immutable after construction.
  const std::string dir_;
};

}  // namespace dtabd::discovery

#endif  // DTABD_DISCOVERY_DTAB_CACHE_H_
