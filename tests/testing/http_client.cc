#include "tests/testing/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace dtabd::testing {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool HasHeader(const Headers& headers, absl::string_view name) {
  for (const auto& [n, v] : headers) {
    if (absl::EqualsIgnoreCase(n, name)) {
      return true;
    }
  }
  return false;
}

}  // namespace

const std::string* HttpResponse::Header(absl::string_view lower) const {
  for (const auto& [name, value] : headers) {
    if (name == lower) {
      return &value;
    }
  }
  return nullptr;
}

std::string HttpResponse::HeaderOr(absl::string_view lower) const {
  const std::string* v = Header(lower);
  return v == nullptr ? "<none>" : *v;
}

std::vector<std::string> HttpResponse::HeaderValues(absl::string_view lower) const {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers) {
    if (name == lower) {
      out.push_back(value);
    }
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const HttpResponse& r) {
  os << r.status;
  for (const auto& [n, v] : r.headers) {
    os << "\n" << n << ": " << v;
  }
  os << "\n\n";
  // Large bodies (the streaming tests) would drown the message.
  constexpr size_t kShown = 4096;
  if (r.body.size() > kShown) {
    return os << r.body.substr(0, kShown) << "... (" << r.body.size() << " bytes)";
  }
  return os << r.body;
}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Connect(absl::string_view address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port <= 0 || port > 65535 ||
      inet_pton(AF_INET, std::string(address.substr(0, colon)).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad address '", address, "'"));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Errno("socket");
  }
  std::unique_ptr<HttpClient> c(new HttpClient(fd, std::string(address)));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("connect ", address));
  }
  return c;
}

HttpClient::~HttpClient() { close(fd_); }

absl::Status HttpClient::SendRequest(absl::string_view method, absl::string_view target,
                                     const Headers& headers, absl::string_view body) {
  std::string req = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: ", address_,
                                 "\r\nUser-Agent: Go-http-client/1.1\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&req, name, ": ", value, "\r\n");
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    absl::StrAppend(&req, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&req, "Accept-Encoding: gzip\r\n\r\n", body);
  return SendBytes(req);
}

absl::Status HttpClient::SendPlain(absl::string_view method, absl::string_view target,
                                   const Headers& headers, absl::string_view body) {
  std::string req = absl::StrCat(method, " ", target, " HTTP/1.1\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&req, name, ": ", value, "\r\n");
  }
  if (!body.empty() && !HasHeader(headers, "content-length") &&
      !HasHeader(headers, "transfer-encoding")) {
    absl::StrAppend(&req, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&req, "\r\n");
  if (absl::Status s = SendBytes(req); !s.ok()) {
    return s;
  }
  return SendBytes(body);
}

absl::Status HttpClient::SendChunked(absl::string_view method, absl::string_view target,
                                     const Headers& headers, size_t total, size_t chunk,
                                     const std::function<std::string(size_t, size_t)>& fill) {
  Headers all = headers;
  all.emplace_back("Transfer-Encoding", "chunked");
  if (absl::Status s = SendPlain(method, target, all); !s.ok()) {
    return s;
  }
  for (size_t offset = 0; offset < total;) {
    const size_t n = std::min(chunk, total - offset);
    std::string data = absl::StrCat(absl::Hex(n), "\r\n", fill(offset, n), "\r\n");
    if (absl::Status s = SendBytes(data); !s.ok()) {
      return s;
    }
    offset += n;
  }
  return SendBytes("0\r\n\r\n");
}

absl::Status HttpClient::SendBytes(absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Errno("send");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> HttpClient::ReadResponse(bool head) {
  absl::StatusOr<HttpResponse> r = ReadHead();
  if (!r.ok() || head || r->status == 204 || r->status == 304) {
    return r;
  }
  if (r->chunked) {
    while (true) {
      absl::StatusOr<std::optional<std::string>> chunk = ReadChunk();
      if (!chunk.ok()) {
        return chunk.status();
      }
      if (!chunk->has_value()) {
        return r;
      }
      r->body += **chunk;
    }
  }
  if (const std::string* cl = r->Header("content-length"); cl != nullptr) {
    size_t n = 0;
    if (!absl::SimpleAtoi(*cl, &n)) {
      return absl::DataLossError(absl::StrCat("bad Content-Length '", *cl, "'"));
    }
    absl::StatusOr<std::string> body = ReadN(n);
    if (!body.ok()) {
      return body.status();
    }
    r->body = *std::move(body);
    return r;
  }
  // Framed by the server closing the connection.
  while (true) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) {
      return more.status();
    }
    if (!*more) {
      r->body = buf_.substr(buf_pos_);
      buf_.clear();
      buf_pos_ = 0;
      return r;
    }
  }
}

absl::StatusOr<HttpResponse> HttpClient::ReadHead() {
  HttpResponse r;
  absl::StatusOr<std::string> line = ReadLine();
  if (!line.ok()) {
    return line.status();
  }
  std::vector<absl::string_view> parts = absl::StrSplit(*line, absl::MaxSplits(' ', 2));
  if (parts.size() < 2 || !absl::StartsWith(parts[0], "HTTP/1.") ||
      !absl::SimpleAtoi(parts[1], &r.status)) {
    return absl::DataLossError(absl::StrCat("bad status line '", *line, "'"));
  }
  while (true) {
    line = ReadLine();
    if (!line.ok()) {
      return line.status();
    }
    if (line->empty()) {
      break;
    }
    const size_t colon = line->find(':');
    if (colon == std::string::npos) {
      return absl::DataLossError(absl::StrCat("bad header line '", *line, "'"));
    }
    r.headers.emplace_back(absl::AsciiStrToLower(line->substr(0, colon)),
                           std::string(absl::StripAsciiWhitespace(line->substr(colon + 1))));
  }
  const std::string* te = r.Header("transfer-encoding");
  r.chunked = te != nullptr && absl::EqualsIgnoreCase(*te, "chunked");
  stream_.clear();
  stream_ended_ = false;
  return r;
}

absl::StatusOr<std::string> HttpClient::ReadBodyLine() {
  while (true) {
    if (const size_t nl = stream_.find('\n'); nl != std::string::npos) {
      std::string line = stream_.substr(0, nl);
      stream_.erase(0, nl + 1);
      return line;
    }
    if (stream_ended_) {
      return absl::OutOfRangeError(absl::StrCat("end of stream",
                                                stream_.empty() ? "" : " after a partial line '",
                                                stream_, stream_.empty() ? "" : "'"));
    }
    absl::StatusOr<std::optional<std::string>> chunk = ReadChunk();
    if (!chunk.ok()) {
      return chunk.status();
    }
    if (chunk->has_value()) {
      stream_ += **chunk;
    } else {
      stream_ended_ = true;
    }
  }
}

bool HttpClient::ClosedByServer() {
  if (buf_pos_ < buf_.size()) {
    return false;
  }
  absl::StatusOr<bool> more = Fill();
  return more.ok() && !*more;
}

absl::StatusOr<bool> HttpClient::Fill() {
  // Drop consumed bytes once they dominate the buffer (large bodies).
  if (buf_pos_ > (64u << 10) && buf_pos_ * 2 > buf_.size()) {
    buf_.erase(0, buf_pos_);
    buf_pos_ = 0;
  }
  const Clock::time_point deadline = Clock::now() + timeout_;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    const int n = poll(&pfd, 1, left.count() < 0 ? 0 : static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return Errno("poll");
    }
    if (n == 0) {
      return absl::DeadlineExceededError(absl::StrCat("nothing from ", address_, " within ",
                                                      timeout_.count(), " ms; unparsed: '",
                                                      buf_.substr(buf_pos_, 512), "'"));
    }
    char tmp[64 << 10];
    const ssize_t r = recv(fd_, tmp, sizeof(tmp), 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (r < 0 && errno == ECONNRESET) {
      return false;
    }
    if (r < 0) {
      return Errno("recv");
    }
    buf_.append(tmp, static_cast<size_t>(r));
    return r > 0;
  }
}

absl::StatusOr<std::string> HttpClient::ReadLine() {
  while (true) {
    if (const size_t pos = buf_.find("\r\n", buf_pos_); pos != std::string::npos) {
      std::string line = buf_.substr(buf_pos_, pos - buf_pos_);
      buf_pos_ = pos + 2;
      return line;
    }
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) {
      return more.status();
    }
    if (!*more) {
      return absl::DataLossError(
          absl::StrCat("connection closed mid-line: '", buf_.substr(buf_pos_, 512), "'"));
    }
  }
}

absl::StatusOr<std::string> HttpClient::ReadN(size_t n) {
  while (buf_.size() - buf_pos_ < n) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) {
      return more.status();
    }
    if (!*more) {
      return absl::DataLossError(absl::StrCat("connection closed after ", buf_.size() - buf_pos_,
                                              " of ", n, " bytes"));
    }
  }
  std::string out = buf_.substr(buf_pos_, n);
  buf_pos_ += n;
  return out;
}

absl::StatusOr<std::optional<std::string>> HttpClient::ReadChunk() {
  absl::StatusOr<std::string> size_line = ReadLine();
  if (!size_line.ok()) {
    return size_line.status();
  }
  size_t size = 0;
  const absl::string_view hex = absl::StripAsciiWhitespace(
      absl::string_view(*size_line).substr(0, size_line->find(';')));
  if (!absl::SimpleHexAtoi(hex, &size)) {
    return absl::DataLossError(absl::StrCat("bad chunk size line '", *size_line, "'"));
  }
  if (size == 0) {
    while (true) {  // trailers, then an empty line
      absl::StatusOr<std::string> trailer = ReadLine();
      if (!trailer.ok()) {
        return trailer.status();
      }
      if (trailer->empty()) {
        return std::optional<std::string>();
      }
    }
  }
  absl::StatusOr<std::string> data = ReadN(size + 2);
  if (!data.ok()) {
    return data.status();
  }
  if (data->substr(size) != "\r\n") {
    return absl::DataLossError("chunk data not followed by CRLF");
  }
  data->resize(size);
  return std::optional<std::string>(*std::move(data));
}

absl::StatusOr<HttpResponse> Fetch(absl::string_view address, absl::string_view method,
                                   absl::string_view target, const Headers& headers,
                                   absl::string_view body) {
  absl::StatusOr<std::unique_ptr<HttpClient>> c = HttpClient::Connect(address);
  if (!c.ok()) {
    return c.status();
  }
  if (absl::Status s = (*c)->SendPlain(method, target, headers, body); !s.ok()) {
    return s;
  }
  return (*c)->ReadResponse(method == "HEAD");
}

}  // namespace dtabd::testing
