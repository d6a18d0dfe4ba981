#include "server/namerd_codec.h"

#include "dtab/parser.h"
#include "gtest/gtest.h"

namespace dtabd::server {
namespace {

TEST(NamerdCodecTest, EtagOfVersionOneMatchesNamerdInMemoryStore) {
  EXPECT_EQ(VersionToEtag(1), "AAAAAAAAAAE=");
}

TEST(NamerdCodecTest, EtagRoundTripsAndToleratesQuotes) {
  for (int64_t v : {int64_t{1}, int64_t{255}, int64_t{256}, int64_t{1} << 40}) {
    absl::StatusOr<int64_t> back = EtagToVersion(VersionToEtag(v));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, v);
  }
  absl::StatusOr<int64_t> quoted = EtagToVersion("W/\"AAAAAAAAAAI=\"");
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(*quoted, 2);
}

TEST(NamerdCodecTest, UnquotedEtagStartingWithWSlashRoundTrips) {
  // Found by tests/fuzz/namerd_codec_fuzz: "W/" was stripped as a weak
  // marker even without a quoted tag after it.
  const int64_t v = 0x5bfffffffffffff7;
  const std::string etag = VersionToEtag(v);
  ASSERT_EQ(etag.substr(0, 2), "W/");
  absl::StatusOr<int64_t> back = EtagToVersion(etag);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, v);
  absl::StatusOr<int64_t> weak = EtagToVersion("W/\"" + etag + "\"");
  ASSERT_TRUE(weak.ok()) << weak.status();
  EXPECT_EQ(*weak, v);
}

TEST(NamerdCodecTest, ForeignEtagIsInvalidArgument) {
  EXPECT_EQ(EtagToVersion("not-base64!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EtagToVersion("AAE=").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NamerdCodecTest, DtabToJsonIsNamerdsArrayOfPrefixAndDst) {
  absl::StatusOr<dtab::Dtab> d = dtab::ParseDtab("/svc => /#/io.l5d.fs; /host=>/a | /b");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(DtabToJson(*d),
            R"([{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/host","dst":"/a | /b"}])");
  EXPECT_EQ(DtabToJson(dtab::Dtab()), "[]");
}

TEST(NamerdCodecTest, JsonArrayAndNamerctlObjectFormsParse) {
  absl::StatusOr<std::string> a =
      JsonToDtabText(R"([{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/a","dst":"/b&/c"}])");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, "/svc=>/#/io.l5d.fs;/a=>/b & /c");
  absl::StatusOr<std::string> o =
      JsonToDtabText(R"({"version":"AAAAAAAAAAE=","dtab":[{"prefix":"/x","dst":"/y"}]})");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, "/x=>/y");
}

TEST(NamerdCodecTest, NullOrMalformedEntriesAreNamed) {
  absl::StatusOr<std::string> null_entry = JsonToDtabText(R"([{"prefix":"/a","dst":"/b"},null])");
  EXPECT_EQ(null_entry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(null_entry.status().message().find("The dtab contains invalid dentries: entry 2"),
            std::string::npos)
      << null_entry.status();
  absl::StatusOr<std::string> bad_dst = JsonToDtabText(R"([{"prefix":"/a","dst":"b"}])");
  EXPECT_NE(bad_dst.status().message().find("entry 1 has an invalid dst: simple expected but 'b' found at '[b]'"),
            std::string::npos)
      << bad_dst.status();
  EXPECT_EQ(JsonToDtabText("{not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(JsonToDtabText(R"({"other":1})").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dtabd::server
