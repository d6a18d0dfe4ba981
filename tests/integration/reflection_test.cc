// Server reflection and health through a client that knows nothing but
// reflection, as grpcurl does: this test links no dtabd or health protos.
// It lists services, fetches file descriptors by symbol (and their imports
// by file name), builds a DescriptorPool from them alone, and calls
// dtabd.v1.DtabService/ValidateDtab and grpc.health.v1.Health/Check with
// grpc::GenericStub and DynamicMessage, serializing the bytes itself.
//
// grpc 1.51 serves reflection as grpc.reflection.v1alpha.ServerReflection
// (grpcurl falls back to it on servers without v1).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/dtabd_process.h"

namespace dtabd::integration {
namespace {

namespace pb = ::google::protobuf;
namespace refl = ::grpc::reflection::v1alpha;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;

constexpr auto kRpcDeadline = std::chrono::seconds(10);

// One ServerReflectionInfo stream, asked one question at a time.
class ReflectionClient {
 public:
  explicit ReflectionClient(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(refl::ServerReflection::NewStub(channel)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    stream_ = stub_->ServerReflectionInfo(&ctx_);
  }
  ReflectionClient(const ReflectionClient&) = delete;
  ReflectionClient& operator=(const ReflectionClient&) = delete;
  ~ReflectionClient() { (void)Finish(); }

  absl::StatusOr<std::vector<std::string>> ListServices() {
    refl::ServerReflectionRequest req;
    req.set_list_services("*");
    absl::StatusOr<refl::ServerReflectionResponse> resp = Ask(req);
    if (!resp.ok()) {
      return resp.status();
    }
    if (!resp->has_list_services_response()) {
      return absl::InternalError("no list_services_response");
    }
    std::vector<std::string> names;
    for (const refl::ServiceResponse& s : resp->list_services_response().service()) {
      names.push_back(s.name());
    }
    return names;
  }

  // The file defining `symbol` and, as the server chooses, its imports.
  absl::StatusOr<std::vector<pb::FileDescriptorProto>> FileContainingSymbol(
      const std::string& symbol) {
    refl::ServerReflectionRequest req;
    req.set_file_containing_symbol(symbol);
    return Files(req);
  }

  absl::StatusOr<std::vector<pb::FileDescriptorProto>> FileByFilename(const std::string& name) {
    refl::ServerReflectionRequest req;
    req.set_file_by_filename(name);
    return Files(req);
  }

  grpc::Status Finish() {
    if (finished_) {
      return status_;
    }
    finished_ = true;
    stream_->WritesDone();
    refl::ServerReflectionResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    status_ = stream_->Finish();
    return status_;
  }

 private:
  absl::StatusOr<refl::ServerReflectionResponse> Ask(const refl::ServerReflectionRequest& req) {
    refl::ServerReflectionResponse resp;
    if (finished_ || !stream_->Write(req) || !stream_->Read(&resp)) {
      const grpc::Status s = Finish();
      return absl::UnavailableError(
          absl::StrCat("reflection stream ended: ", s.error_code(), " ", s.error_message()));
    }
    if (resp.has_error_response()) {
      return absl::Status(static_cast<absl::StatusCode>(resp.error_response().error_code()),
                          resp.error_response().error_message());
    }
    return resp;
  }

  absl::StatusOr<std::vector<pb::FileDescriptorProto>> Files(
      const refl::ServerReflectionRequest& req) {
    absl::StatusOr<refl::ServerReflectionResponse> resp = Ask(req);
    if (!resp.ok()) {
      return resp.status();
    }
    if (!resp->has_file_descriptor_response()) {
      return absl::InternalError("no file_descriptor_response");
    }
    std::vector<pb::FileDescriptorProto> files;
    for (const std::string& bytes : resp->file_descriptor_response().file_descriptor_proto()) {
      pb::FileDescriptorProto f;
      if (!f.ParseFromString(bytes)) {
        return absl::DataLossError("unparsable FileDescriptorProto");
      }
      files.push_back(std::move(f));
    }
    return files;
  }

  std::unique_ptr<refl::ServerReflection::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<refl::ServerReflectionRequest,
                                           refl::ServerReflectionResponse>>
      stream_;
  bool finished_ = false;
  grpc::Status status_;
};

// A DescriptorPool filled only from what the server describes.
class ReflectedPool {
 public:
  explicit ReflectedPool(ReflectionClient* client) : client_(client) {}

  // Adds the file defining `symbol` and everything it imports.
  absl::Status AddSymbol(const std::string& symbol) {
    absl::StatusOr<std::vector<pb::FileDescriptorProto>> files =
        client_->FileContainingSymbol(symbol);
    if (!files.ok()) {
      return files.status();
    }
    if (files->empty()) {
      return absl::NotFoundError(absl::StrCat("no file for ", symbol));
    }
    const std::string name = (*files)[0].name();  // the defining file comes first
    Remember(*std::move(files));
    return Build(name);
  }

  const pb::DescriptorPool& pool() const { return pool_; }

 private:
  void Remember(std::vector<pb::FileDescriptorProto> files) {
    for (pb::FileDescriptorProto& f : files) {
      std::string name = f.name();
      known_.emplace(std::move(name), std::move(f));
    }
  }

  // Builds `name` after its imports, asking the server for any it has not
  // sent yet.
  absl::Status Build(const std::string& name) {
    if (pool_.FindFileByName(name) != nullptr) {
      return absl::OkStatus();
    }
    if (!known_.contains(name)) {
      absl::StatusOr<std::vector<pb::FileDescriptorProto>> files = client_->FileByFilename(name);
      if (!files.ok()) {
        return absl::Status(files.status().code(),
                            absl::StrCat("file '", name, "': ", files.status().message()));
      }
      Remember(*std::move(files));
      if (!known_.contains(name)) {
        return absl::NotFoundError(absl::StrCat("server did not send '", name, "'"));
      }
    }
    const pb::FileDescriptorProto file = known_.at(name);
    for (const std::string& dep : file.dependency()) {
      if (absl::Status s = Build(dep); !s.ok()) {
        return s;
      }
    }
    if (pool_.BuildFile(file) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot build '", name, "'"));
    }
    return absl::OkStatus();
  }

  ReflectionClient* const client_;
  pb::DescriptorPool pool_;
  std::map<std::string, pb::FileDescriptorProto> known_;
};

struct DynamicResult {
  grpc::Status status;
  std::unique_ptr<pb::Message> response;  // set when status is OK
};

class ReflectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DtabdProcess>> p = DtabdProcess::Start();
    ASSERT_TRUE(p.ok()) << p.status();
    dtabd_ = *std::move(p);
    channel_ = grpc::CreateChannel(dtabd_->grpc_address(), grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (HasFailure() && dtabd_ != nullptr) {
      std::cerr << "dtabd's stderr:\n" << dtabd_->stderr_output();
    }
  }

  // Calls `service`/`method` with `request` as raw bytes through the
  // generic stub; parses the answer as the method's output type.
  DynamicResult CallDynamic(const pb::MethodDescriptor* method, const pb::Message& request) {
    DynamicResult result;
    std::string bytes;
    if (!request.SerializeToString(&bytes)) {
      result.status = grpc::Status(grpc::StatusCode::INTERNAL, "cannot serialize request");
      return result;
    }
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request_buf(&slice, 1);
    grpc::ByteBuffer response_buf;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    grpc::GenericStub stub(channel_);
    absl::Notification done;
    stub.UnaryCall(&ctx, absl::StrCat("/", method->service()->full_name(), "/", method->name()),
                   grpc::StubOptions(), &request_buf, &response_buf,
                   [&](grpc::Status s) {
                     result.status = std::move(s);
                     done.Notify();
                   });
    // The call has a deadline, so the callback comes; the wait is bounded
    // anyway so that a bug cannot hang the test.
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(30))) {
      ctx.TryCancel();
      done.WaitForNotification();
      ADD_FAILURE() << "no answer from " << method->full_name();
      return result;
    }
    if (!result.status.ok()) {
      return result;
    }
    grpc::Slice answer;
    if (!response_buf.DumpToSingleSlice(&answer).ok()) {
      result.status = grpc::Status(grpc::StatusCode::INTERNAL, "cannot read response");
      return result;
    }
    result.response.reset(factory_.GetPrototype(method->output_type())->New());
    if (!result.response->ParseFromArray(answer.begin(), static_cast<int>(answer.size()))) {
      result.status = grpc::Status(grpc::StatusCode::INTERNAL, "cannot parse response");
    }
    return result;
  }

  std::unique_ptr<DtabdProcess> dtabd_;
  std::shared_ptr<grpc::Channel> channel_;
  pb::DynamicMessageFactory factory_;
};

TEST_F(ReflectionTest, ListServicesNamesDtabHealthAndReflection) {
  ReflectionClient client(channel_);
  absl::StatusOr<std::vector<std::string>> services = client.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, IsSupersetOf({"dtabd.v1.DtabService", "grpc.health.v1.Health",
                                       "grpc.reflection.v1alpha.ServerReflection"}));
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(ReflectionTest, DescribesDtabServiceWithImports) {
  ReflectionClient client(channel_);
  ReflectedPool reflected(&client);
  ASSERT_TRUE(reflected.AddSymbol("dtabd.v1.DtabService").ok());

  const pb::ServiceDescriptor* service =
      reflected.pool().FindServiceByName("dtabd.v1.DtabService");
  ASSERT_NE(service, nullptr);
  std::vector<std::string> methods;
  for (int i = 0; i < service->method_count(); ++i) {
    methods.push_back(service->method(i)->name());
  }
  EXPECT_THAT(methods, IsSupersetOf({"ListDtabs", "GetDtab", "CreateDtab", "UpdateDtab",
                                     "PutDtab", "DeleteDtab", "ListVersions", "RollbackDtab",
                                     "ValidateDtab", "Explain", "WatchDtab"}));
  EXPECT_TRUE(service->FindMethodByName("WatchDtab")->server_streaming());
  // The import came along (or was fetched by name): created_at is a Timestamp.
  const pb::Descriptor* versioned =
      reflected.pool().FindMessageTypeByName("dtabd.v1.VersionedDtab");
  ASSERT_NE(versioned, nullptr);
  ASSERT_NE(versioned->FindFieldByName("created_at"), nullptr);
  EXPECT_EQ(versioned->FindFieldByName("created_at")->message_type()->full_name(),
            "google.protobuf.Timestamp");
  // Message types are describable on their own too (grpcurl describe TYPE).
  EXPECT_TRUE(client.FileContainingSymbol("dtabd.v1.ExplainRequest").ok());
  EXPECT_EQ(client.FileContainingSymbol("dtabd.v1.NoSuchThing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ReflectionTest, CallsValidateDtabFromReflectedDescriptorsOnly) {
  ReflectionClient client(channel_);
  ReflectedPool reflected(&client);
  ASSERT_TRUE(reflected.AddSymbol("dtabd.v1.DtabService").ok());
  const pb::MethodDescriptor* method =
      reflected.pool().FindMethodByName("dtabd.v1.DtabService.ValidateDtab");
  ASSERT_NE(method, nullptr);

  std::unique_ptr<pb::Message> request(factory_.GetPrototype(method->input_type())->New());
  const pb::FieldDescriptor* dtab_field = method->input_type()->FindFieldByName("dtab");
  ASSERT_NE(dtab_field, nullptr);
  request->GetReflection()->SetString(request.get(), dtab_field,
                                      " /srv => /#/io.l5d.fs ; /host=>/srv;/svc=>/host ");

  DynamicResult r = CallDynamic(method, *request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_code() << " " << r.status.error_message();
  const pb::Descriptor* out = method->output_type();
  const pb::Reflection* refl = r.response->GetReflection();
  EXPECT_EQ(refl->GetString(*r.response, out->FindFieldByName("canonical")),
            "/srv=>/#/io.l5d.fs;/host=>/srv;/svc=>/host");
  EXPECT_EQ(refl->GetInt32(*r.response, out->FindFieldByName("dentries")), 3);

  // And the error, with the parser's marked position.
  request->GetReflection()->SetString(request.get(), dtab_field, "/a=>/b;/c=/d");
  r = CallDynamic(method, *request);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("'/a=>/b;/c=[/]d'"));
}

TEST_F(ReflectionTest, CallsHealthCheckFromReflectedDescriptorsOnly) {
  ReflectionClient client(channel_);
  ReflectedPool reflected(&client);
  ASSERT_TRUE(reflected.AddSymbol("grpc.health.v1.Health").ok());
  const pb::MethodDescriptor* method =
      reflected.pool().FindMethodByName("grpc.health.v1.Health.Check");
  ASSERT_NE(method, nullptr);
  const pb::FieldDescriptor* service_field = method->input_type()->FindFieldByName("service");
  ASSERT_NE(service_field, nullptr);
  const pb::FieldDescriptor* status_field = method->output_type()->FindFieldByName("status");
  ASSERT_NE(status_field, nullptr);

  for (const std::string service : {"", "dtabd.v1.DtabService"}) {
    std::unique_ptr<pb::Message> request(factory_.GetPrototype(method->input_type())->New());
    request->GetReflection()->SetString(request.get(), service_field, service);
    DynamicResult r = CallDynamic(method, *request);
    ASSERT_TRUE(r.status.ok()) << "service '" << service << "': " << r.status.error_message();
    EXPECT_EQ(r.response->GetReflection()->GetEnum(*r.response, status_field)->name(), "SERVING")
        << "service '" << service << "'";
  }

  std::unique_ptr<pb::Message> request(factory_.GetPrototype(method->input_type())->New());
  request->GetReflection()->SetString(request.get(), service_field, "no.such.Service");
  EXPECT_EQ(CallDynamic(method, *request).status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ReflectionTest, DescribesReflectionItself) {
  ReflectionClient client(channel_);
  ReflectedPool reflected(&client);
  ASSERT_TRUE(reflected.AddSymbol("grpc.reflection.v1alpha.ServerReflection").ok());
  const pb::MethodDescriptor* method = reflected.pool().FindMethodByName(
      "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo");
  ASSERT_NE(method, nullptr);
  EXPECT_TRUE(method->client_streaming());
  EXPECT_TRUE(method->server_streaming());
}

}  // namespace
}  // namespace dtabd::integration
