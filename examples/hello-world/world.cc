// world: the back service of the hello-world example, after linkerd's
// buoyantio/helloworld "world" (shared/reference/linkerd-behaviour.md
// section 3.1). One binary plays both versions:
//
//   world [--listen 127.0.0.1:7778] [--text world]   # world-v1
//   world --listen 127.0.0.1:7779 --text earth       # world-v2
//
// Answers every request with "<text> (<its address>)!", e.g.
// "world (127.0.0.1:7778)!". Prints "world: serving IP:PORT" once listening
// (port 0 picks a free port); SIGTERM or SIGINT stop it.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/hello-world/service.h"
#include "http/server.h"

namespace dtabd::examples {
namespace {

int Run(int argc, char** argv) {
  std::string listen = "127.0.0.1:7778";
  std::string text = "world";
  if (std::optional<int> exit_code =
          ParseFlagsOrExit(argc, argv, "world [--listen IP:PORT] [--text TEXT]",
                           {{"listen", &listen, "where to serve (port 0: any free port)"},
                            {"text", &text, "what to answer: world (v1) or earth (v2)"}})) {
    return *exit_code;
  }
  const sigset_t signals = BlockStopSignals();

  SelfAddress self(listen);
  http::Server::Options options;
  options.address = listen;
  options.shutdown_grace = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<http::Server>> server =
      http::Server::Start(options, [&self, &text](const http::Request&, http::Responder responder) {
        responder.Send(http::Response::Text(200, absl::StrCat(text, " (", self.Get(), ")!\n")));
      });
  if (!server.ok()) {
    std::cerr << "world: " << server.status().message() << std::endl;
    return 1;
  }
  self.Set((*server)->address());
  std::cout << "world: serving " << (*server)->address() << std::endl;

  WaitForStopSignal(signals);
  (*server)->Shutdown();
  return 0;
}

}  // namespace
}  // namespace dtabd::examples

int main(int argc, char** argv) { return dtabd::examples::Run(argc, argv); }
