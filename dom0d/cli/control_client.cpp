#include "dom0d/cli/control_client.h"

#include <cstdlib>
#include <iostream>

#include "dom0d/daemon/control_socket.h"

namespace understudy::cli {

namespace {

constexpr auto kTimeout = std::chrono::seconds(40);

std::string default_socket()
{
    const char *env = std::getenv("UNDERSTUDY_SOCKET");
    return env && *env ? env : "/run/understudy/understudyd.sock";
}

} // namespace

void add_socket_option(po::options_description &o)
{
    o.add_options()("socket", po::value<std::string>()->default_value(default_socket()),
                    "understudyd's control socket (or set UNDERSTUDY_SOCKET)");
}

bool parse(const std::string &program, const std::string &command, const std::vector<std::string> &args,
           const po::options_description &options, const po::positional_options_description &positional, Parsed &out)
{
    try {
        po::store(po::command_line_parser(args).options(options).positional(positional).run(), out.vm);
        po::notify(out.vm);
        out.help = out.vm.count("help") > 0;
        return true;
    } catch (const std::exception &e) {
        std::cerr << program << " " << command << ": " << e.what() << "\n(see " << program << " " << command
                  << " --help)\n";
        return false;
    }
}

int send(const std::string &program, const std::string &command, const std::string &socket,
         const proto::ControlRequest &request, proto::ControlResponse *out)
{
    proto::ControlResponse response;
    try {
        response = daemon::ask_daemon(socket, request, kTimeout);
    } catch (const std::exception &e) {
        std::cerr << program << " " << command << ": " << e.what() << "\n";
        return 2;
    }
    if (!response.ok()) {
        std::cerr << program << " " << command << ": " << response.error() << "\n";
        return 1;
    }
    if (out)
        *out = response;
    else if (!response.message().empty())
        std::cout << response.message() << "\n";
    return 0;
}

int guest_command(const std::string &program, const std::string &command, const std::vector<std::string> &args,
                  const std::string &usage, const std::function<void(proto::ControlRequest &, const std::string &)> &fill)
{
    po::options_description o("Options");
    o.add_options()("help,h", "show this help and exit")("guest", po::value<std::string>(), "the guest");
    add_socket_option(o);
    po::positional_options_description p;
    p.add("guest", 1);
    Parsed parsed;
    if (!parse(program, command, args, o, p, parsed))
        return 2;
    if (parsed.help || !parsed.vm.count("guest")) {
        (parsed.help ? std::cout : std::cerr)
            << "Usage: " << program << " " << command << " GUEST\n\n" << usage << "\n\n" << o;
        return parsed.help ? 0 : 2;
    }
    proto::ControlRequest r;
    fill(r, parsed.vm["guest"].as<std::string>());
    return send(program, command, parsed.vm["socket"].as<std::string>(), r);
}

} // namespace understudy::cli
