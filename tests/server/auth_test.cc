#include "server/auth.h"

#include "gtest/gtest.h"

namespace dtabd::server {
namespace {

constexpr char kTokens[] = R"(# token identity scope
s3cr3t-w   deployer  write
s3cr3t-r   dashboard read
)";

TEST(AuthenticatorTest, WriteTokenWritesAndNamesItsIdentity) {
  auto a = Authenticator::Parse(kTokens, "tokens");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Identity> id = (*a)->Authorize("Bearer s3cr3t-w", Scope::kWrite);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->name, "deployer");
  EXPECT_TRUE((*a)->Authorize("bearer s3cr3t-w", Scope::kRead).ok());
}

TEST(AuthenticatorTest, ReadTokenWritingIsPermissionDenied) {
  auto a = Authenticator::Parse(kTokens, "tokens");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE((*a)->Authorize("Bearer s3cr3t-r", Scope::kRead).ok());
  EXPECT_EQ((*a)->Authorize("Bearer s3cr3t-r", Scope::kWrite).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthenticatorTest, MissingMalformedOrUnknownTokenIsUnauthenticated) {
  auto a = Authenticator::Parse(kTokens, "tokens");
  ASSERT_TRUE(a.ok());
  for (const char* header : {"", "Bearer", "Basic abc", "Bearer nope", "s3cr3t-w"}) {
    EXPECT_EQ((*a)->Authorize(header, Scope::kRead).status().code(),
              absl::StatusCode::kUnauthenticated)
        << header;
  }
}

TEST(AuthenticatorTest, AllowAllLetsAnonymousWrite) {
  auto a = Authenticator::AllowAll();
  EXPECT_FALSE(a->enabled());
  absl::StatusOr<Identity> id = a->Authorize("", Scope::kWrite);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->name, "anonymous");
}

TEST(AuthenticatorTest, BadFilesAreRejectedWithFileAndLine) {
  auto fields = Authenticator::Parse("tok id\n", "t.txt");
  EXPECT_EQ(fields.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fields.status().message().find("t.txt:1"), std::string::npos);
  auto scope = Authenticator::Parse("# c\ntok id admin\n", "t.txt");
  EXPECT_NE(scope.status().message().find("t.txt:2: scope 'admin'"), std::string::npos)
      << scope.status();
  auto dup = Authenticator::Parse("tok a read\ntok b write\n", "t.txt");
  EXPECT_NE(dup.status().message().find("duplicate token"), std::string::npos);
  EXPECT_EQ(Authenticator::Parse("# only comments\n", "t.txt").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Authenticator::Load("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dtabd::server
