// Running DRBD's command-line tools (drbdsetup, drbdadm) the safe way: no
// shell, arguments as given, bounded time and output, the tool's own first
// line of error in what is thrown.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace understudy::drbd {

struct Ran {
    int status = -1; // exit status; 127: could not run it
    std::string out, err;
};

// Runs argv; stdout and stderr captured; killed at the timeout (then throws
// DrbdParseError).
[[nodiscard]] Ran run_tool(const std::vector<std::string> &argv, std::chrono::milliseconds timeout);
// As run_tool, and throws DrbdParseError unless it exited 0.
Ran run_checked(const std::vector<std::string> &argv, std::chrono::milliseconds timeout);
[[nodiscard]] std::string first_line(const std::string &s);
// True if `name` can be passed to drbdsetup/drbdadm as a resource name.
[[nodiscard]] bool valid_resource_name(const std::string &name);

} // namespace understudy::drbd
