#include "server/namerd_codec.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "dtab/explain.h"
#include "dtab/parser.h"

namespace dtabd::server {

std::string VersionToEtag(int64_t version) {
  std::string bytes(8, '\0');
  for (int i = 7; i >= 0; --i) {
    bytes[i] = static_cast<char>(version & 0xff);
    version >>= 8;
  }
  return absl::Base64Escape(bytes);
}

absl::StatusOr<int64_t> EtagToVersion(absl::string_view etag) {
  etag = absl::StripAsciiWhitespace(etag);
  // The weak marker only when a quoted tag follows: an unquoted ETag may
  // itself start with "W/" (base64 of a version whose top 12 bits are 0x5bf).
  if (absl::StartsWith(etag, "W/\"")) {
    etag.remove_prefix(2);
  }
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::string bytes;
  if (!absl::Base64Unescape(etag, &bytes) || bytes.size() != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", etag, "' is not a version of this server (expected an ETag)"));
  }
  int64_t v = 0;
  for (char c : bytes) {
    v = (v << 8) | static_cast<unsigned char>(c);
  }
  return v;
}

std::string DtabToJson(const dtab::Dtab& dtab) {
  std::string out = "[";
  for (size_t i = 0; i < dtab.dentries().size(); ++i) {
    const dtab::Dentry& d = dtab.dentries()[i];
    if (i > 0) {
      out.push_back(',');
    }
    out.append("{\"prefix\":");
    dtab::AppendJsonString(d.prefix.Show(), &out);
    out.append(",\"dst\":");
    dtab::AppendJsonString(dtab::Show(d.dst), &out);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

absl::StatusOr<std::string> JsonToDtabText(absl::string_view json) {
  google::protobuf::Value value;
  google::protobuf::util::JsonParseOptions options;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &value, options).ok()) {
    return absl::InvalidArgumentError("the body is not valid JSON");
  }
  const google::protobuf::Value* list = &value;
  if (value.has_struct_value()) {
    auto it = value.struct_value().fields().find("dtab");
    if (it == value.struct_value().fields().end()) {
      return absl::InvalidArgumentError(
          "expected a JSON array of {\"prefix\",\"dst\"} or an object with a \"dtab\" array");
    }
    list = &it->second;
  }
  if (!list->has_list_value()) {
    return absl::InvalidArgumentError("expected a JSON array of {\"prefix\",\"dst\"} objects");
  }
  std::string text;
  int index = 0;
  for (const google::protobuf::Value& entry : list->list_value().values()) {
    ++index;
    const auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("The dtab contains invalid dentries: entry ", index, " ", why));
    };
    if (!entry.has_struct_value()) {
      return bad("is not an object");
    }
    const auto& fields = entry.struct_value().fields();
    auto prefix = fields.find("prefix");
    auto dst = fields.find("dst");
    if (prefix == fields.end() || !prefix->second.has_string_value() || dst == fields.end() ||
        !dst->second.has_string_value()) {
      return bad("needs string fields \"prefix\" and \"dst\"");
    }
    absl::StatusOr<dtab::Prefix> p = dtab::ParsePrefix(prefix->second.string_value());
    if (!p.ok()) {
      return bad(absl::StrCat("has an invalid prefix: ", p.status().message()));
    }
    absl::StatusOr<dtab::NameTree<dtab::Path>> t = dtab::ParseTree(dst->second.string_value());
    if (!t.ok()) {
      return bad(absl::StrCat("has an invalid dst: ", t.status().message()));
    }
    if (!text.empty()) {
      text.push_back(';');
    }
    text.append(dtab::Dentry{*std::move(p), *std::move(t)}.Show());
  }
  return text;
}

}  // namespace dtabd::server
