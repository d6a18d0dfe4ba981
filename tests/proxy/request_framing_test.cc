#include "proxy/request_framing.h"

#include <string>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace dtabd::proxy {
namespace {

TEST(HasObsFoldTest, PlainHeadersAreNotFolded) {
  EXPECT_FALSE(HasObsFold(""));
  EXPECT_FALSE(HasObsFold("GET / HTTP/1.1\r\nHost: a\r\nX: b c\r\n\r\n"));
  EXPECT_FALSE(HasObsFold("GET / HTTP/1.1\nHost: a\n\n"));  // bare LF lines
  // Whitespace inside a value or before a CR is not a fold.
  EXPECT_FALSE(HasObsFold("GET / HTTP/1.1\r\nX:  \t b\t\r\n\r\n"));
}

TEST(HasObsFoldTest, LineBreakThenSpaceOrTabIsFolded) {
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"));
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"));
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\r\nContent-Length: 0\r\n\t5\r\n\r\n"));
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\nX: a\n\tb\n\n"));  // bare LF
  // A fold in the first field line (right after the start line).
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\r\n Host: a\r\n\r\n"));
}

TEST(HasObsFoldTest, LineBreakAtTheEndIsNotAFold) {
  EXPECT_FALSE(HasObsFold("GET / HTTP/1.1\r\n"));
  EXPECT_FALSE(HasObsFold("\n"));
  // The view ends at the line break even though the bytes after it fold.
  const std::string bytes = "GET / HTTP/1.1\r\n b";
  EXPECT_FALSE(HasObsFold(absl::string_view(bytes).substr(0, bytes.size() - 2)));
  EXPECT_TRUE(HasObsFold(bytes));
}

TEST(HasObsFoldTest, EmbeddedNulBytesDoNotEndTheScan) {
  const std::string bytes("X: a\0b\r\n c", 10);
  EXPECT_TRUE(HasObsFold(bytes));
}

}  // namespace
}  // namespace dtabd::proxy
