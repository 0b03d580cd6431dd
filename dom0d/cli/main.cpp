// `understudy`: the operator's command line.
#include <iostream>
#include <string>
#include <vector>

#include "dom0d/cli/control_commands.h"
#include "dom0d/cli/run_command.h"

namespace {

void usage(std::ostream &out)
{
    out << "Usage: understudy COMMAND [options]\n\n"
        << "Commands:\n"
        << "  run        start a guest under the built-in KVM VMM, in the foreground\n"
        << "  protect    replicate a guest run by understudyd to a backup host\n"
        << "  unprotect  stop replicating a guest (it keeps running)\n"
        << "  status     show guests, their protection and standby copies (--json, --watch)\n"
        << "  events     show the pair's transitions and their reasons (--follow)\n"
        << "  failover   hand a protected guest over to its backup (planned switch)\n"
        << "  takeover   on the backup: run the standby here now (--force: also an outdated one)\n"
        << "  discard    stop this host's copy of a guest for good (ends a split brain)\n"
        << "  drill      failover exercise: this primary plays a crash, the report says how it went\n"
        << "  debug      freeze, thaw, checksum or activate a guest (tests and drills)\n"
        << "  help       show this help\n\n"
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
    if (command == "protect")
        return understudy::cli::protect_command("understudy", args);
    if (command == "unprotect")
        return understudy::cli::unprotect_command("understudy", args);
    if (command == "status")
        return understudy::cli::status_command("understudy", args);
    if (command == "events")
        return understudy::cli::events_command("understudy", args);
    if (command == "failover")
        return understudy::cli::failover_command("understudy", args);
    if (command == "takeover")
        return understudy::cli::takeover_command("understudy", args);
    if (command == "discard")
        return understudy::cli::discard_command("understudy", args);
    if (command == "drill")
        return understudy::cli::drill_command("understudy", args);
    if (command == "debug")
        return understudy::cli::debug_command("understudy", args);
    if (command == "help" || command == "--help" || command == "-h") {
        usage(std::cout);
        return 0;
    }
    std::cerr << "understudy: unknown command '" << command << "'\n";
    usage(std::cerr);
    return 2;
}
