// `understudy`: the operator's command line.
#include <iostream>
#include <string>
#include <vector>

#include "dom0d/cli/run_command.h"

namespace {

void usage(std::ostream &out)
{
    out << "Usage: understudy COMMAND [options]\n\n"
        << "Commands:\n"
        << "  run     start a guest under the built-in KVM VMM\n"
        << "  help    show this help\n\n"
        << "Run 'understudy COMMAND --help' for a command's options.\n";
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(std::cerr);
        return 2;
    }
    const std::string command = argv[1];
    std::vector<std::string> args(argv + 2, argv + argc);
    if (command == "run")
        return understudy::cli::run_command("understudy", args);
    if (command == "help" || command == "--help" || command == "-h") {
        usage(std::cout);
        return 0;
    }
    std::cerr << "understudy: unknown command '" << command << "'\n";
    usage(std::cerr);
    return 2;
}
