// hello: the front service of the hello-world example, after linkerd's
// buoyantio/helloworld "hello" (shared/reference/linkerd-behaviour.md
// section 3.1).
//
//   hello [--listen 127.0.0.1:7777] [--proxy 127.0.0.1:4140] [--target world]
//
// For every request it calls GET / on the proxy with `Host: world`,
// forwarding each l5d-ctx-* header it received (an app behind linkerd must
// pass the context on, so that a per-request l5d-dtab override reaches
// every hop), and answers
//
//   Hello (<its address>) <world's body without its trailing newline>!
//
// e.g. "Hello (127.0.0.1:7777) world (127.0.0.1:7778)!!". When world
// cannot be reached, or answers anything but 200, hello answers 502 and
// says why. Prints "hello: serving IP:PORT" once listening (port 0 picks a
// free port); SIGTERM or SIGINT stop it.
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "examples/hello-world/outbound_client.h"
#include "examples/hello-world/service.h"
#include "http/server.h"

namespace dtabd::examples {
namespace {

// What hello answers for the outcome of its call to the target.
http::Response Answer(absl::string_view self, absl::string_view target, absl::string_view proxy,
                      const absl::StatusOr<OutboundResponse>& call) {
  if (!call.ok()) {
    return http::Response::Text(
        502, absl::StrCat("hello (", self, "): cannot reach ", target,
                          " through the proxy: ", call.status().message(), "\n"));
  }
  absl::string_view body = call->body;
  absl::ConsumeSuffix(&body, "\n");
  if (call->status != 200) {
    return http::Response::Text(
        502, absl::StrCat("hello (", self, "): ", target, " answered ", call->status,
                          " through the proxy at ", proxy, ": ", body, "\n"));
  }
  return http::Response::Text(200, absl::StrCat("Hello (", self, ") ", body, "!\n"));
}

int Run(int argc, char** argv) {
  std::string listen = "127.0.0.1:7777";
  std::string proxy = "127.0.0.1:4140";
  std::string target = "world";
  if (std::optional<int> exit_code = ParseFlagsOrExit(
          argc, argv, "hello [--listen IP:PORT] [--proxy IP:PORT] [--target HOST]",
          {{"listen", &listen, "where to serve (port 0: any free port)"},
           {"proxy", &proxy, "the local proxy's outgoing router"},
           {"target", &target, "the Host header of the call through the proxy"}})) {
    return *exit_code;
  }
  const sigset_t signals = BlockStopSignals();

  OutboundClient::Options client_options;
  client_options.address = proxy;
  // Longer than the proxy's own request timeout (10 s by default), so that
  // a slow world is reported by the proxy's 503, which names the service.
  client_options.timeout = absl::Seconds(15);
  absl::StatusOr<std::unique_ptr<OutboundClient>> client =
      OutboundClient::Start(std::move(client_options));
  if (!client.ok()) {
    std::cerr << "hello: --proxy: " << client.status().message() << std::endl;
    return 2;
  }

  SelfAddress self(listen);
  http::Server::Options server_options;
  server_options.address = listen;
  server_options.shutdown_grace = absl::Seconds(1);
  auto handler = [&self, &target, &client](const http::Request& request,
                                           http::Responder responder) {
    http::HeaderList context;
    for (const auto& [name, value] : request.headers) {
      if (absl::StartsWith(name, "l5d-ctx-")) {  // names arrive lower-cased
        context.emplace_back(name, value);
      }
    }
    (*client)->Get(target, std::move(context),
                   [responder = std::move(responder), address = self.Get(), &target,
                    proxy = (*client)->address()](absl::StatusOr<OutboundResponse> call) {
                     responder.Send(Answer(address, target, proxy, call));
                   });
  };
  absl::StatusOr<std::unique_ptr<http::Server>> server =
      http::Server::Start(server_options, std::move(handler));
  if (!server.ok()) {
    std::cerr << "hello: " << server.status().message() << std::endl;
    return 1;
  }
  self.Set((*server)->address());
  std::cout << "hello: serving " << (*server)->address() << std::endl;

  WaitForStopSignal(signals);
  (*server)->Shutdown();
  client->reset();
  return 0;
}

}  // namespace
}  // namespace dtabd::examples

int main(int argc, char** argv) { return dtabd::examples::Run(argc, argv); }
