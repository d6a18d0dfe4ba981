// dtabctl: the operator CLI. See `dtabctl --help`.
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return dtabd::cli::RunDtabctl(args, {std::cin, std::cout, std::cerr});
}
