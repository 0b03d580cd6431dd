// What every `understudy` command that talks to understudyd shares: the
// --socket option, option parsing with clear errors, and sending a request.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <vector>

#include "proto/control.pb.h"

namespace understudy::cli {

namespace po = boost::program_options;

void add_socket_option(po::options_description &o);

struct Parsed {
    po::variables_map vm;
    bool help = false;
};

// Parses; prints the error and returns false on bad options.
bool parse(const std::string &program, const std::string &command, const std::vector<std::string> &args,
           const po::options_description &options, const po::positional_options_description &positional, Parsed &out);

// Sends the request and prints the daemon's message or error (or stores the
// response in *out). Returns 0, 1 (the daemon refused) or 2 (no daemon).
int send(const std::string &program, const std::string &command, const std::string &socket,
         const proto::ControlRequest &request, proto::ControlResponse *out = nullptr);

// A command whose only argument is GUEST: parses it, prints `usage` (the
// text after the Usage line) for --help or a missing GUEST, fills the
// request with `fill` and sends it.
int guest_command(const std::string &program, const std::string &command, const std::vector<std::string> &args,
                  const std::string &usage, const std::function<void(proto::ControlRequest &, const std::string &)> &fill);

} // namespace understudy::cli
