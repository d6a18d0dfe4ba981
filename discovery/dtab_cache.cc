#include "discovery/dtab_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace dtabd::discovery {
namespace {

constexpr absl::string_view kMagic = "dtabd-dtab-cache";
constexpr absl::string_view kFormatVersion = "1";
constexpr absl::string_view kSuffix = ".dtab";
constexpr absl::string_view kTempInfix = ".dtab.tmp.";
// A cache file larger than this is corrupt (dtabd caps dtab text at 1 MiB).
constexpr size_t kMaxFileBytes = 8 << 20;

std::string ErrnoText() { return std::strerror(errno); }

// The table for the reflected Castagnoli polynomial 0x82F63B78.
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

// Writes all of `data` to `fd`, retrying short writes and EINTR.
bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Fsyncs directory `dir`, making renames and unlinks in it durable.
absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cache: open '", dir, "': ", ErrnoText()));
  }
  const int rc = fsync(fd);
  const std::string err = rc != 0 ? ErrnoText() : "";
  close(fd);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cache: fsync '", dir, "': ", err));
  }
  return absl::OkStatus();
}

// The whole file at `path`. NotFound: no such file. Unavailable: an I/O
// error. DataLoss: larger than kMaxFileBytes.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("cache: no file '", path, "'"));
    }
    return absl::UnavailableError(absl::StrCat("cache: open '", path, "': ", ErrnoText()));
  }
  std::string out;
  char buf[64 << 10];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const std::string err = ErrnoText();
      close(fd);
      return absl::UnavailableError(absl::StrCat("cache: read '", path, "': ", err));
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileBytes) {
      close(fd);
      return absl::DataLossError(absl::StrCat("cache file '", path, "' is corrupt: larger than ",
                                              kMaxFileBytes, " bytes"));
    }
  }
  close(fd);
  return out;
}

}  // namespace

absl::Status ValidateNamespaceName(absl::string_view ns) {
  if (ns.empty() || ns.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat("namespace '", ns.substr(0, 200),
                                                   "' must be 1 to 128 characters long (it has ",
                                                   ns.size(), ")"));
  }
  for (char c : ns) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace '", ns, "' may contain only letters, digits, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

uint32_t Crc32c(absl::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    c = kCrc32cTable[(c ^ b) & 0xFF] ^ (c >> 8);
  }
  return c ^ 0xFFFFFFFFu;
}

absl::StatusOr<std::unique_ptr<DtabCache>> DtabCache::Open(std::string dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("cache directory is empty");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache directory '", dir, "': cannot create: ", ec.message()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache directory '", dir, "' is not a directory"));
  }
  // Remove temporary files an interrupted Write left behind.
  std::vector<std::filesystem::path> stray;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && absl::StrContains(name, kTempInfix)) {
      stray.push_back(entry.path());
    }
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache directory '", dir, "': cannot list: ", ec.message()));
  }
  for (const std::filesystem::path& p : stray) {
    std::filesystem::remove(p, ec);  // best effort: a leftover is harmless
  }
  return std::unique_ptr<DtabCache>(new DtabCache(std::move(dir)));
}

std::string DtabCache::PathFor(absl::string_view ns) const {
  return absl::StrCat(dir_, "/", ns, kSuffix);
}

absl::StatusOr<v1::VersionedDtab> DtabCache::Read(absl::string_view ns) const {
  if (absl::Status s = ValidateNamespaceName(ns); !s.ok()) {
    return s;
  }
  const std::string path = PathFor(ns);
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) {
    return contents.status();
  }
  auto corrupt = [&path](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("cache file '", path, "' is corrupt: ", why));
  };
  absl::string_view rest = *contents;
  const size_t eol = rest.find('\n');
  if (eol == absl::string_view::npos) {
    return corrupt("no header line");
  }
  const std::vector<absl::string_view> header = absl::StrSplit(rest.substr(0, eol), ' ');
  rest.remove_prefix(eol + 1);
  if (header.size() != 4 || header[0] != kMagic) {
    return corrupt("not a dtab cache file");
  }
  if (header[1] != kFormatVersion) {
    return corrupt(absl::StrCat("unknown format version '", header[1], "'"));
  }
  uint32_t crc = 0;
  uint64_t length = 0;
  if (header[2].size() != 8 || !absl::SimpleHexAtoi(header[2], &crc) ||
      !absl::SimpleAtoi(header[3], &length)) {
    return corrupt("malformed header");
  }
  if (length != rest.size()) {
    return corrupt(absl::StrCat("payload is ", rest.size(), " bytes, header says ", length));
  }
  if (Crc32c(rest) != crc) {
    return corrupt("checksum mismatch");
  }
  v1::VersionedDtab dtab;
  if (!dtab.ParseFromArray(rest.data(), static_cast<int>(rest.size()))) {
    return corrupt("payload is not a VersionedDtab");
  }
  if (dtab.namespace_() != ns) {
    return corrupt(absl::StrCat("it holds namespace '", dtab.namespace_(), "'"));
  }
  if (dtab.version() < 1 || dtab.deleted()) {
    return corrupt(
        absl::StrCat("it holds version ", dtab.version(), dtab.deleted() ? " (a deletion)" : ""));
  }
  return dtab;
}

absl::Status DtabCache::Write(const v1::VersionedDtab& dtab) const {
  if (absl::Status s = ValidateNamespaceName(dtab.namespace_()); !s.ok()) {
    return s;
  }
  if (dtab.version() < 1 || dtab.deleted()) {
    return absl::InvalidArgumentError(absl::StrCat("cache: dtab '", dtab.namespace_(), "' version ",
                                                   dtab.version(), " is not a live version"));
  }
  std::string payload;
  if (!dtab.SerializeToString(&payload)) {
    return absl::InternalError(
        absl::StrCat("cache: cannot serialize dtab '", dtab.namespace_(), "'"));
  }
  const std::string contents =
      absl::StrCat(kMagic, " ", kFormatVersion, " ", absl::StrFormat("%08x", Crc32c(payload)), " ",
                   payload.size(), "\n", payload);
  const std::string path = PathFor(dtab.namespace_());
  std::string tmp = absl::StrCat(dir_, "/.", dtab.namespace_(), kTempInfix, "XXXXXX");
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cache: create '", tmp, "': ", ErrnoText()));
  }
  auto fail = [&](absl::string_view what) {
    const std::string err = ErrnoText();
    if (fd >= 0) {
      close(fd);
    }
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cache: ", what, " '", tmp, "': ", err));
  };
  // mkostemp creates 0600; a cache is as readable as the proxy's config.
  if (fchmod(fd, 0644) != 0) {
    return fail("chmod");
  }
  if (!WriteAll(fd, contents)) {
    return fail("write");
  }
  if (fsync(fd) != 0) {
    return fail("fsync");
  }
  if (close(fd) != 0) {
    const std::string err = ErrnoText();
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cache: close '", tmp, "': ", err));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = ErrnoText();
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cache: rename '", tmp, "' to '", path, "': ", err));
  }
  return SyncDir(dir_);
}

absl::Status DtabCache::Remove(absl::string_view ns) const {
  if (absl::Status s = ValidateNamespaceName(ns); !s.ok()) {
    return s;
  }
  const std::string path = PathFor(ns);
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) {
      return absl::OkStatus();
    }
    return absl::UnavailableError(absl::StrCat("cache: remove '", path, "': ", ErrnoText()));
  }
  return SyncDir(dir_);
}

}  // namespace dtabd::discovery
