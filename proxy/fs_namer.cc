#include "proxy/fs_namer.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "proxy/published.h"

namespace dtabd::proxy {
namespace {

using Clock = std::chrono::steady_clock;

// Every line handed to Options::logger starts with this.
constexpr absl::string_view kLogPrefix = "io.l5d.fs: ";
// Files larger than this are rejected rather than read.
constexpr off_t kMaxFileBytes = 4 << 20;
// How long a file that was created, written without being closed, or had
// its attributes changed must stay quiet before it is re-read. Writers that
// close the file (IN_CLOSE_WRITE) or rename it into place (IN_MOVED_TO) are
// read at once.
constexpr Clock::duration kSettle = std::chrono::milliseconds(100);
// How often a missing root directory is looked for.
constexpr Clock::duration kRootPoll = std::chrono::milliseconds(200);
// What is watched on every directory.
constexpr uint32_t kDirMask = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                              IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

// strerror(e), thread-safe, with a lower-case first letter (house style).
std::string ErrnoText(int e) {
  char buf[128];
  // GNU strerror_r: returns a pointer to the text (maybe not into buf).
  std::string text = strerror_r(e, buf, sizeof buf);
  if (!text.empty()) {
    text[0] = absl::ascii_tolower(static_cast<unsigned char>(text[0]));
  }
  return text;
}

absl::Status ErrnoStatus(int e, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(e), absl::StrCat(what, ": ", ErrnoText(e)));
}

// 'token' with non-printable bytes escaped, for error messages.
std::string Quote(absl::string_view token) {
  return absl::StrCat("'", absl::CHexEscape(token), "'");
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }  // '\r': CRLF files

// The blank-separated tokens of `line`; the views point into `line`.
absl::InlinedVector<absl::string_view, 4> Tokens(absl::string_view line) {
  absl::InlinedVector<absl::string_view, 4> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsBlank(line[i])) {
      ++i;
    }
    const size_t begin = i;
    while (i < line.size() && !IsBlank(line[i])) {
      ++i;
    }
    if (i > begin) {
      tokens.push_back(line.substr(begin, i - begin));
    }
  }
  return tokens;
}

// True for a syntactically plausible DNS name: dot-separated labels of
// letters, digits, '-' and '_', each 1-63 bytes, 253 bytes at most (a
// trailing dot is allowed).
bool IsHostName(absl::string_view s) {
  if (!s.empty() && s.back() == '.') {
    s.remove_suffix(1);
  }
  if (s.empty() || s.size() > 253) {
    return false;
  }
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    if (label.empty() || label.size() > 63) {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return false;
      }
    }
  }
  return true;
}

// The numeric form of the host token: IP literals as written (IPv6 may be
// bracketed; the brackets are dropped), names resolved with getaddrinfo
// (the first IPv4 result, else the first IPv6 one). Messages name the token.
absl::StatusOr<std::string> ResolveHost(absl::string_view token) {
  std::string host(token);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    host = host.substr(1, host.size() - 2);
  }
  in_addr v4;
  in6_addr v6;
  if (!bracketed && inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return host;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return host;
  }
  if (bracketed || !IsHostName(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("host ", Quote(token), " is not an IP address or host name"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one result per address, not per socket type
  addrinfo* results = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &results);
  if (rc != 0) {
    const std::string why = rc == EAI_SYSTEM ? ErrnoText(errno) : gai_strerror(rc);
    return absl::InvalidArgumentError(
        absl::StrCat("host ", Quote(token), " does not resolve: ", absl::AsciiStrToLower(why)));
  }
  const addrinfo* v4_result = nullptr;
  const addrinfo* v6_result = nullptr;
  for (const addrinfo* r = results; r != nullptr; r = r->ai_next) {
    if (r->ai_family == AF_INET && v4_result == nullptr) {
      v4_result = r;
    } else if (r->ai_family == AF_INET6 && v6_result == nullptr) {
      v6_result = r;
    }
  }
  char text[INET6_ADDRSTRLEN] = {};
  const char* numeric = nullptr;
  if (v4_result != nullptr) {
    numeric =
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(v4_result->ai_addr)->sin_addr,
                  text, sizeof text);
  } else if (v6_result != nullptr) {
    numeric =
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(v6_result->ai_addr)->sin6_addr,
                  text, sizeof text);
  }
  freeaddrinfo(results);
  if (numeric == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("host ", Quote(token), " has no IPv4 or IPv6 address"));
  }
  return std::string(numeric);
}

absl::StatusOr<uint16_t> ParsePort(absl::string_view token) {
  if (token.empty() ||
      !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::InvalidArgumentError(absl::StrCat("port ", Quote(token), " is not a number"));
  }
  int port = 0;
  if (token.size() > 5 || !absl::SimpleAtoi(token, &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", token, " is not in 1-65535"));
  }
  return static_cast<uint16_t>(port);
}

absl::StatusOr<double> ParseWeight(absl::string_view token) {
  double weight = 0;
  if (!absl::SimpleAtod(token, &weight) || !std::isfinite(weight) || weight <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight ", Quote(token), " is not a positive number"));
  }
  return weight;
}

// One non-blank line's tokens: HOST PORT [* WEIGHT | *WEIGHT]. `resolved`
// caches host names resolved earlier in the same file.
absl::StatusOr<Address> ParseLine(absl::Span<const absl::string_view> tokens,
                                  absl::flat_hash_map<std::string, std::string>* resolved) {
  if (tokens.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("missing port after host ", Quote(tokens[0])));
  }
  Address address;
  DTABD_ASSIGN_OR_RETURN(address.port, ParsePort(tokens[1]));
  size_t next = 2;
  if (next < tokens.size()) {
    const absl::string_view star = tokens[next];
    if (star.front() != '*') {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected ", Quote(star), " after the port (expected '* weight')"));
    }
    absl::string_view weight = star.substr(1);  // "*2"
    ++next;
    if (weight.empty()) {  // "* 2"
      if (next == tokens.size()) {
        return absl::InvalidArgumentError("missing weight after '*'");
      }
      weight = tokens[next++];
    }
    DTABD_ASSIGN_OR_RETURN(address.weight, ParseWeight(weight));
    if (next < tokens.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected ", Quote(tokens[next]), " after the weight"));
    }
  }
  const std::string host_token(tokens[0]);
  if (auto it = resolved->find(host_token); it != resolved->end()) {
    address.host = it->second;
  } else {
    DTABD_ASSIGN_OR_RETURN(address.host, ResolveHost(host_token));
    resolved->emplace(host_token, address.host);
  }
  return address;
}

bool SameService(const FsNamer::Service& a, const FsNamer::Service& b) {
  return a.addresses == b.addresses && a.error == b.error;
}

// True for names the namer ignores: hidden files (also atomic-rename
// writers' temporary files) and editor backups and swap files.
bool IsIgnoredName(absl::string_view name) {
  return name.empty() || name.front() == '.' || name.back() == '~' || absl::EndsWith(name, ".swp");
}

// Appends the labels of `path` from index `from` on to `key`, joined with
// '/'. False if a label cannot name a file or directory (it holds '/' or
// NUL), in which case `key` holds the labels before it.
bool AppendKey(const dtab::Path& path, size_t from, std::string* key,
               absl::InlinedVector<size_t, 8>* ends) {
  for (size_t i = from; i < path.size(); ++i) {
    const absl::string_view label = path.label(i);
    if (label.find('/') != label.npos || label.find('\0') != label.npos) {
      return false;
    }
    if (!key->empty()) {
      key->push_back('/');
    }
    key->append(label.data(), label.size());
    if (ends != nullptr) {
      ends->push_back(key->size());
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<Address>> ParseFsEndpoints(absl::string_view text) {
  std::vector<Address> addresses;
  absl::flat_hash_map<std::string, std::string> resolved;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != line.npos) {
      line = line.substr(0, hash);
    }
    const auto tokens = Tokens(line);
    if (tokens.empty()) {
      continue;
    }
    absl::StatusOr<Address> address = ParseLine(tokens, &resolved);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", address.status().message()));
    }
    addresses.push_back(*std::move(address));
  }
  return addresses;
}

// The namer's state. The hot path (Lookup, Find) reads only `options_` and
// `published_`. Everything under "Watcher state" belongs to Init() until it
// starts the watcher thread, and to that thread afterwards; nothing else
// touches it, so it needs no lock.
//
// Invariants (watcher state): `wd_dirs_` and `dir_wds_` are inverse maps of
// the live watches; `root_wd_` is the root's watch or -1; while
// `root_missing_`, no watch exists and `working_` is empty; `working_`
// equals the last published snapshot unless `dirty_`.
class FsNamer::Impl {
 public:
  explicit Impl(Options options)
      : options_(std::move(options)),
        root_prefix_(absl::EndsWith(options_.root_dir, "/") ? options_.root_dir
                                                            : options_.root_dir + "/"),
        published_(std::make_shared<const Snapshot>()) {
    if (!options_.logger) {
      options_.logger = [](absl::string_view line) {
        std::cerr << absl::StrCat("dtab-proxy: ", line, "\n") << std::flush;
      };
    }
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  ~Impl() {
    if (thread_.joinable()) {
      const uint64_t one = 1;
      while (write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
      }
      thread_.join();
    }
    if (inotify_fd_ >= 0) {
      close(inotify_fd_);
    }
    if (stop_fd_ >= 0) {
      close(stop_fd_);
    }
  }

  // Watches and reads the root, publishes the first snapshot and starts the
  // watcher thread. Errors: the root cannot be watched (the errno's code).
  absl::Status Init() {
    inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) {
      return ErrnoStatus(errno, "io.l5d.fs: inotify_init1");
    }
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0) {
      return ErrnoStatus(errno, "io.l5d.fs: eventfd");
    }
    DTABD_RETURN_IF_ERROR(WatchDir(""));
    Snapshot fresh;
    ScanTree("", &fresh);
    working_ = std::move(fresh);
    published_.Publish(std::make_shared<const Snapshot>(working_));
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  const dtab::Path& prefix() const { return options_.prefix; }
  const Published<Snapshot>& published() const { return published_; }

 private:
  std::string FullPath(absl::string_view key) const { return absl::StrCat(root_prefix_, key); }

  void Log(absl::string_view message) const { options_.logger(absl::StrCat(kLogPrefix, message)); }

  // --- Reading files -------------------------------------------------------

  // The contents of regular file `full`. NotFound: it does not exist or is
  // not a regular file (it is then no service). Other errors: the errno's
  // code, or InvalidArgument for a file over kMaxFileBytes.
  static absl::StatusOr<std::string> ReadFileText(const std::string& full) {
    const int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      const int e = errno;
      if (e == ENOENT || e == ENOTDIR) {
        return absl::NotFoundError(full);
      }
      return ErrnoStatus(e, absl::StrCat(full, ": cannot open"));
    }
    std::string text;
    absl::Status status;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      status = ErrnoStatus(errno, absl::StrCat(full, ": cannot stat"));
    } else if (!S_ISREG(st.st_mode)) {
      status = absl::NotFoundError(absl::StrCat(full, ": not a regular file"));
    } else if (st.st_size > kMaxFileBytes) {
      status = absl::InvalidArgumentError(
          absl::StrCat(full, ": ", st.st_size, " bytes is over the limit of ", kMaxFileBytes));
    } else {
      char buf[16 * 1024];
      for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          status = ErrnoStatus(errno, absl::StrCat(full, ": cannot read"));
          break;
        }
        if (n == 0) {
          break;
        }
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > static_cast<size_t>(kMaxFileBytes)) {
          status = absl::InvalidArgumentError(
              absl::StrCat(full, ": over the limit of ", kMaxFileBytes, " bytes"));
          break;
        }
      }
    }
    close(fd);
    if (!status.ok()) {
      return status;
    }
    return text;
  }

  // The new state of file `key` given its previous state in `working_`;
  // nullopt when it is no service (gone, or not a regular file). Logs a
  // new or changed error and a recovery.
  std::optional<Service> ReadService(const std::string& key) const {
    const std::string full = FullPath(key);
    const auto prev = working_.find(key);
    const Service* previous = prev == working_.end() ? nullptr : &prev->second;
    absl::Status error;
    absl::StatusOr<std::string> text = ReadFileText(full);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) {
        return std::nullopt;
      }
      error = text.status();
    } else {
      absl::StatusOr<std::vector<Address>> addresses = ParseFsEndpoints(*text);
      if (addresses.ok()) {
        if (previous != nullptr && !previous->error.ok()) {
          Log(absl::StrCat(full, ": ok again, ", addresses->size(),
                           addresses->size() == 1 ? " address" : " addresses"));
        }
        return Service{*std::move(addresses), absl::OkStatus()};
      }
      error = absl::InvalidArgumentError(absl::StrCat(full, ": ", addresses.status().message()));
    }
    if (previous == nullptr || previous->error != error) {
      Log(error.message());
    }
    Service service;
    if (previous != nullptr) {
      service.addresses = previous->addresses;
    }
    service.error = std::move(error);
    return service;
  }

  // --- Changing working_ ---------------------------------------------------

  void UpdateFile(const std::string& key) {
    std::optional<Service> service = ReadService(key);
    if (!service.has_value()) {
      dirty_ |= working_.erase(key) > 0;
      return;
    }
    auto [it, inserted] = working_.try_emplace(key);
    if (inserted || !SameService(it->second, *service)) {
      it->second = *std::move(service);
      dirty_ = true;
    }
  }

  // The entries of `working_` at or below directory `key` ("" = all).
  std::pair<Snapshot::iterator, Snapshot::iterator> TreeRange(const std::string& key) {
    if (key.empty()) {
      return {working_.begin(), working_.end()};
    }
    // '0' follows '/' in byte order: [key/, key0) is everything below key.
    return {working_.lower_bound(absl::StrCat(key, "/")),
            working_.lower_bound(absl::StrCat(key, "0"))};
  }

  // Makes the services below directory `key` exactly `fresh`.
  void ReplaceTree(const std::string& key, Snapshot fresh) {
    auto [begin, end] = TreeRange(key);
    const bool same = static_cast<size_t>(std::distance(begin, end)) == fresh.size() &&
                      std::equal(begin, end, fresh.begin(), [](const auto& a, const auto& b) {
                        return a.first == b.first && SameService(a.second, b.second);
                      });
    if (same) {
      return;
    }
    working_.erase(begin, end);
    working_.merge(fresh);
    dirty_ = true;
  }

  void PublishIfDirty() {
    if (dirty_) {
      published_.Publish(std::make_shared<const Snapshot>(working_));
      dirty_ = false;
    }
  }

  // --- Watches and scans ---------------------------------------------------

  // Watches directory `key`. NotFound: it is gone. Other errors: the
  // errno's code (e.g. ResourceExhausted when the inotify watch limit is
  // reached).
  absl::Status WatchDir(const std::string& key) {
    const std::string full = FullPath(key);
    // The root may be a symlink; subdirectories are only entered when they
    // are real directories (see ScanTree).
    const uint32_t mask = key.empty() ? kDirMask : kDirMask | IN_DONT_FOLLOW;
    const int wd = inotify_add_watch(inotify_fd_, full.c_str(), mask);
    if (wd < 0) {
      const int e = errno;
      if (e == ENOENT || e == ENOTDIR) {
        return absl::NotFoundError(absl::StrCat("io.l5d.fs: ", full, ": gone"));
      }
      return ErrnoStatus(e, absl::StrCat("io.l5d.fs: cannot watch ", full));
    }
    // The same directory may come back under a new key (a rename whose
    // IN_MOVED_FROM was lost to a queue overflow): the new key wins.
    auto [it, inserted] = wd_dirs_.try_emplace(wd, key);
    if (!inserted && it->second != key) {
      dir_wds_.erase(it->second);
      it->second = key;
    }
    dir_wds_[key] = wd;
    if (key.empty()) {
      root_wd_ = wd;
    }
    return absl::OkStatus();
  }

  void WatchDirOrLog(const std::string& key) {
    absl::Status status = WatchDir(key);
    if (!status.ok() && !absl::IsNotFound(status)) {
      options_.logger(absl::StrCat(status.message(), "; its changes will be missed"));
    }
  }

  // Removes the watches of directory `key` and of every directory below it
  // ("" = all).
  void UnwatchTree(const std::string& key) {
    auto begin = dir_wds_.lower_bound(key);
    auto end = key.empty() ? dir_wds_.end() : dir_wds_.lower_bound(absl::StrCat(key, "0"));
    for (auto it = begin; it != end;) {
      const bool below =
          key.empty() || it->first == key || absl::StartsWith(it->first, absl::StrCat(key, "/"));
      if (!below) {  // e.g. "a-b" between "a" and "a0"
        ++it;
        continue;
      }
      inotify_rm_watch(inotify_fd_, it->second);  // fails harmlessly if already gone
      wd_dirs_.erase(it->second);
      if (it->second == root_wd_) {
        root_wd_ = -1;
      }
      it = dir_wds_.erase(it);
    }
  }

  // Reads every service below directory `key` into `out`, watching each
  // subdirectory before listing it (so nothing created meanwhile is
  // missed). REQUIRES: `key` itself was watched (or that failed) already.
  void ScanTree(const std::string& key, Snapshot* out) {
    const std::string full = FullPath(key);
    DIR* dir = opendir(full.c_str());
    if (dir == nullptr) {
      const int e = errno;
      if (e != ENOENT && e != ENOTDIR) {
        options_.logger(ErrnoStatus(e, absl::StrCat("io.l5d.fs: cannot list ", full)).message());
      }
      return;
    }
    while (const dirent* entry = readdir(dir)) {
      const absl::string_view name = entry->d_name;
      if (IsIgnoredName(name)) {  // also "." and ".."
        continue;
      }
      const std::string child = key.empty() ? std::string(name) : absl::StrCat(key, "/", name);
      struct stat st;
      if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        continue;  // just deleted
      }
      if (S_ISDIR(st.st_mode)) {
        WatchDirOrLog(child);
        ScanTree(child, out);
      } else if (std::optional<Service> service = ReadService(child)) {
        out->emplace(child, *std::move(service));
      }
    }
    closedir(dir);
  }

  // A directory appeared at `key` (created or moved in).
  void AddTree(const std::string& key) {
    pending_.erase(key);
    dirty_ |= working_.erase(key) > 0;  // a file of that name, if its deletion was missed
    UnwatchTree(key);
    WatchDirOrLog(key);
    Snapshot fresh;
    ScanTree(key, &fresh);
    ReplaceTree(key, std::move(fresh));
  }

  // The directory at `key` went away (deleted or moved out).
  void RemoveTree(const std::string& key) {
    UnwatchTree(key);
    ReplaceTree(key, Snapshot());
    const std::string below = absl::StrCat(key, "/");
    for (auto it = pending_.lower_bound(below);
         it != pending_.end() && absl::StartsWith(it->first, below);) {
      it = pending_.erase(it);
    }
  }

  // Rebuilds every watch and re-reads every file.
  void FullRescan() {
    UnwatchTree("");
    pending_.clear();
    rescan_at_.reset();
    struct stat st;
    if (stat(root_prefix_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      RootGone();
      return;
    }
    WatchDirOrLog("");
    Snapshot fresh;
    ScanTree("", &fresh);
    ReplaceTree("", std::move(fresh));
  }

  // The root was deleted or moved away: every service goes, and the root is
  // looked for every kRootPoll.
  void RootGone() {
    UnwatchTree("");
    pending_.clear();
    rescan_at_.reset();
    const size_t services = working_.size();
    ReplaceTree("", Snapshot());
    if (!root_missing_) {
      Log(absl::StrCat("root directory ", options_.root_dir, " is gone (", services,
                       " services removed); waiting for it to come back"));
    }
    root_missing_ = true;
    next_root_check_ = Clock::now();  // it may have been replaced already
  }

  void CheckRoot() {
    struct stat st;
    if (stat(root_prefix_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      next_root_check_ = Clock::now() + kRootPoll;
      return;
    }
    root_missing_ = false;
    Log(absl::StrCat("root directory ", options_.root_dir, " is back; rescanning"));
    FullRescan();
  }

  // --- The watcher thread --------------------------------------------------

  void HandleEvent(const inotify_event& event) {
    if ((event.mask & IN_Q_OVERFLOW) != 0) {
      if (!root_missing_) {
        Log("inotify queue overflowed; rescanning");
        FullRescan();
      }
      return;
    }
    const auto watch = wd_dirs_.find(event.wd);
    if (watch == wd_dirs_.end()) {
      return;  // a watch removed since the event was queued
    }
    if ((event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) != 0) {
      // Subdirectories are handled by their parent's IN_DELETE and
      // IN_MOVED_FROM; only the root's own events matter.
      if (event.wd == root_wd_) {
        RootGone();
      } else if ((event.mask & IN_IGNORED) != 0) {
        dir_wds_.erase(watch->second);
        wd_dirs_.erase(watch);
      }
      return;
    }
    if (event.len == 0) {
      return;
    }
    const absl::string_view name(event.name, strnlen(event.name, event.len));
    const std::string& dir = watch->second;
    const std::string key = dir.empty() ? std::string(name) : absl::StrCat(dir, "/", name);
    if (IsIgnoredName(name)) {
      // A hidden entry renamed into place may be a symlink swap (Kubernetes
      // ConfigMap volumes swap `..data`): the visible files may now point
      // elsewhere, so look at everything again.
      if ((event.mask & IN_MOVED_TO) != 0 && name.front() == '.') {
        rescan_at_ = Clock::now() + kSettle;
      }
      return;
    }
    if ((event.mask & IN_ISDIR) != 0) {
      if ((event.mask & (IN_CREATE | IN_MOVED_TO)) != 0) {
        AddTree(key);
      } else if ((event.mask & (IN_DELETE | IN_MOVED_FROM)) != 0) {
        RemoveTree(key);
      }
      return;
    }
    if ((event.mask & (IN_DELETE | IN_MOVED_FROM)) != 0) {
      pending_.erase(key);
      dirty_ |= working_.erase(key) > 0;
    } else if ((event.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0) {
      pending_.erase(key);
      UpdateFile(key);
    } else if ((event.mask & (IN_CREATE | IN_MODIFY | IN_ATTRIB)) != 0) {
      pending_[key] = Clock::now() + kSettle;
    }
  }

  void DrainEvents() {
    alignas(inotify_event) char buf[32 * 1024];
    for (;;) {
      const ssize_t n = read(inotify_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        if (errno != EAGAIN) {
          options_.logger(ErrnoStatus(errno, "io.l5d.fs: reading inotify events").message());
        }
        return;
      }
      for (const char* p = buf; p < buf + n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(p);
        HandleEvent(*event);
        p += sizeof(inotify_event) + event->len;
      }
    }
  }

  // The earliest moment something is due, if anything is.
  std::optional<Clock::time_point> NextDeadline() const {
    std::optional<Clock::time_point> next = rescan_at_;
    const auto consider = [&next](Clock::time_point t) {
      if (!next.has_value() || t < *next) {
        next = t;
      }
    };
    if (root_missing_) {
      consider(next_root_check_);
    }
    for (const auto& [key, at] : pending_) {
      consider(at);
    }
    return next;
  }

  void RunDue() {
    const Clock::time_point now = Clock::now();
    if (root_missing_ && now >= next_root_check_) {
      CheckRoot();
    }
    if (rescan_at_.has_value() && now >= *rescan_at_) {
      FullRescan();
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second <= now) {
        const std::string key = it->first;
        it = pending_.erase(it);
        UpdateFile(key);
      } else {
        ++it;
      }
    }
  }

  void Run() {
    for (;;) {
      int timeout_ms = -1;
      if (const std::optional<Clock::time_point> next = NextDeadline()) {
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now());
        timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
      }
      pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
      const int rc = poll(fds, 2, timeout_ms);
      if (rc < 0 && errno != EINTR) {
        options_.logger(ErrnoStatus(errno, "io.l5d.fs: poll failed; no longer watching").message());
        return;
      }
      if (rc > 0 && fds[0].revents != 0) {
        return;  // stop requested
      }
      if (rc > 0 && (fds[1].revents & POLLIN) != 0) {
        DrainEvents();
      }
      RunDue();
      PublishIfDirty();
    }
  }

  // Immutable after construction (the logger is called from the watcher
  // thread and, during Init(), from Start()'s caller).
  Options options_;
  const std::string root_prefix_;  // root_dir ending in '/'

  // The hot path's view. Thread-safe.
  Published<Snapshot> published_;

  // Watcher state (see the class comment).
  int inotify_fd_ = -1;
  int stop_fd_ = -1;  // eventfd; written once by ~Impl to stop the thread
  absl::flat_hash_map<int, std::string> wd_dirs_;  // watch -> directory key ("" = root)
  std::map<std::string, int> dir_wds_;             // directory key -> watch
  int root_wd_ = -1;
  bool root_missing_ = false;
  Clock::time_point next_root_check_;  // meaningful while root_missing_
  Snapshot working_;                   // the state being maintained
  bool dirty_ = false;
  // Files to re-read once quiet (see kSettle), by key.
  std::map<std::string, Clock::time_point> pending_;
  std::optional<Clock::time_point> rescan_at_;  // a full rescan is due then

  // Started last by Init(), joined first by ~Impl.
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<FsNamer>> FsNamer::Start(Options options) {
  if (options.root_dir.empty()) {
    return absl::InvalidArgumentError("io.l5d.fs: root_dir is empty");
  }
  if (options.prefix.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("io.l5d.fs root_dir '", options.root_dir,
                     "': prefix is empty (expected e.g. /#/io.l5d.fs)"));
  }
  struct stat st;
  if (stat(options.root_dir.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("io.l5d.fs root_dir '", options.root_dir, "': ", ErrnoText(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("io.l5d.fs root_dir '", options.root_dir, "': not a directory"));
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  DTABD_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<FsNamer>(new FsNamer(std::move(impl)));
}

FsNamer::FsNamer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FsNamer::~FsNamer() = default;

absl::StatusOr<dtab::NameTree<dtab::BoundName>> FsNamer::Lookup(const dtab::Path& path,
                                                                size_t prefix_size) const {
  using Tree = dtab::NameTree<dtab::BoundName>;
  if (prefix_size > path.size()) {
    return absl::InvalidArgumentError(absl::StrCat("io.l5d.fs: path '", path.Show(),
                                                   "' is shorter than its prefix (", prefix_size,
                                                   " labels)"));
  }
  const Snapshot& snapshot = impl_->published().Get();
  if (snapshot.empty() || prefix_size == path.size()) {
    return Tree::Neg();
  }
  // key = rest's labels joined with '/'; ends[k] = its length after k + 1
  // labels. Reused per thread: no allocation in the steady state.
  thread_local std::string key;
  key.clear();
  absl::InlinedVector<size_t, 8> ends;
  AppendKey(path, prefix_size, &key, &ends);  // stops before a label that cannot be a name
  for (size_t k = ends.size(); k > 0; --k) {
    if (snapshot.find(std::string_view(key.data(), ends[k - 1])) != snapshot.end()) {
      return Tree::Leaf(dtab::BoundName{path.Take(prefix_size + k), path.Drop(prefix_size + k)});
    }
  }
  return Tree::Neg();
}

const FsNamer::Service* FsNamer::Find(const dtab::Path& id) const {
  const dtab::Path& prefix = impl_->prefix();
  if (id.size() <= prefix.size() || !id.StartsWith(prefix)) {
    return nullptr;
  }
  thread_local std::string key;
  key.clear();
  if (!AppendKey(id, prefix.size(), &key, nullptr)) {
    return nullptr;
  }
  const Snapshot& snapshot = impl_->published().Get();
  const auto it = snapshot.find(std::string_view(key));
  return it == snapshot.end() ? nullptr : &it->second;
}

std::shared_ptr<const FsNamer::Snapshot> FsNamer::snapshot() const {
  return impl_->published().Load();
}

uint64_t FsNamer::generation() const { return impl_->published().generation(); }

}  // namespace dtabd::proxy
