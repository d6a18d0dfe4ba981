// The io.l5d.fs namer (shared/reference/linkerd-behaviour.md section 2.5):
// a directory of files, one per service; each file lists the service's
// endpoints, one `host port` or `host port * weight` per line (`#` starts a
// comment, blank lines are ignored, ports 1-65535, weight a positive
// number). Directories nest: /#/io.l5d.fs/a/b names file `a/b`.
//
// The directory is watched with inotify (files created, changed, renamed
// into place, deleted; subdirectories; the root deleted and recreated):
// changes are visible to the next request, without a restart. A file that
// becomes malformed is reported (log + error()) and its last good content
// is kept; a file that never parsed has no addresses and reports why.
//
// Which files count: regular files (or symlinks to them) at any depth.
// Names starting with '.' (so atomic-rename writers can use hidden
// temporary files) or ending in '~' or ".swp" (editors) are ignored, files
// and directories alike; symlinks to directories are not followed.
//
// When changes are seen: a file closed after writing or renamed into place
// is re-read at once; one created, written or chmod-ed without a close is
// re-read once it has been quiet for 100 ms. A hidden entry renamed into
// place (a Kubernetes ConfigMap's `..data` swap) causes a full rescan, as
// does an inotify queue overflow. When the root itself goes away every
// service is removed (lookups give Neg) and the root is looked for every
// 200 ms; when it comes back it is read and watched again. Only a change
// of some service's addresses or error publishes a new snapshot.
//
// Thread-safety: Lookup() and Find() are called concurrently from the
// proxy's io threads and take no lock in the steady state (Published<T>).
#ifndef DTABD_PROXY_FS_NAMER_H_
#define DTABD_PROXY_FS_NAMER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dtab/namer.h"
#include "dtab/path.h"

namespace dtabd::proxy {

// One endpoint of a replica set. `host` is a numeric IPv4/IPv6 address
// (names in files are resolved when the file is read).
struct Address {
  std::string host;
  uint16_t port = 0;
  double weight = 1.0;

  friend bool operator==(const Address& a, const Address& b) {
    return a.host == b.host && a.port == b.port && a.weight == b.weight;
  }
};

// Parses one endpoint file. InvalidArgument naming the 1-based line and
// what is wrong, e.g. "line 3: port 70000 is not in 1-65535". Tokens are
// separated by spaces and tabs (a '\r' before the newline is ignored); the
// weight may be written `* 2` or `*2`. IP literals are kept as written (an
// IPv6 one may be bracketed, `[::1]`; the brackets are dropped). Host names
// are resolved (getaddrinfo: the first IPv4 result, else the first IPv6
// one); a name that does not resolve is an error for that line. Duplicated
// endpoints are kept, in file order. Blocks while resolving names.
absl::StatusOr<std::vector<Address>> ParseFsEndpoints(absl::string_view text);

class FsNamer final : public dtab::Namer {
 public:
  struct Options {
    // The watched directory (must exist at Start).
    std::string root_dir;
    // Where this namer is mounted, e.g. /#/io.l5d.fs.
    dtab::Path prefix;
    // Receives one line "io.l5d.fs: MESSAGE" per file that becomes
    // malformed or unreadable ("io.l5d.fs: /dir/a/b: line 3: ..."), per
    // such file that is fixed, per watch problem, and when the root goes
    // away or comes back. Called from Start() and then from the watcher
    // thread. Default: "dtab-proxy: LINE" on std::cerr.
    std::function<void(absl::string_view)> logger;
  };

  // The state of one service file.
  struct Service {
    // The last good content (empty if none yet or the file lists nothing).
    std::vector<Address> addresses;
    // OK, or why the current content is rejected (the addresses are then
    // the last good ones): InvalidArgument "FILE: line N: reason" for a
    // malformed file, the errno's code ("FILE: cannot open: permission
    // denied") for an unreadable one. FILE is root_dir + "/" + key.
    absl::Status error;
  };
  // Every known file, keyed by its path below root_dir ("world-v1", "a/b").
  using Snapshot = std::map<std::string, Service, std::less<>>;

  // Reads the directory, then watches it on its own thread.
  // InvalidArgument: root_dir empty, missing or not a directory; prefix
  // empty. Otherwise the errno's code when inotify cannot be set up or the
  // root cannot be watched (e.g. ResourceExhausted: watch limit reached).
  static absl::StatusOr<std::unique_ptr<FsNamer>> Start(Options options);
  FsNamer(const FsNamer&) = delete;
  FsNamer& operator=(const FsNamer&) = delete;
  ~FsNamer() override;  // stops the watcher thread

  // dtab::Namer. For `path` = prefix ++ rest: the longest leading part of
  // `rest` that names a file binds to a leaf {id = prefix ++ that part,
  // residual = the remaining labels}; no file (or empty rest, or a label
  // holding '/'): Neg. InvalidArgument: prefix_size > path.size().
  // Hot path: no lock in the steady state.
  absl::StatusOr<dtab::NameTree<dtab::BoundName>> Lookup(const dtab::Path& path,
                                                         size_t prefix_size) const override;

  // The service of a bound id produced by Lookup(), or nullptr when its
  // file is gone (or `id` is not below the prefix). Hot path: no lock, no
  // copy. The pointer is valid until the calling thread's next Lookup() or
  // Find() on this namer.
  const Service* Find(const dtab::Path& id) const;

  // The current state of every file (admin pages, tests).
  std::shared_ptr<const Snapshot> snapshot() const;
  // Bumped whenever the snapshot changes, and only then (events that
  // change nothing publish nothing). Tests wait on it.
  uint64_t generation() const;

 private:
  class Impl;
  explicit FsNamer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtabd::proxy

#endif  // DTABD_PROXY_FS_NAMER_H_
