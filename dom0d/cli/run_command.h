// `understudy run`: start a guest under the built-in VMM and keep it running
// until SIGINT/SIGTERM or until the guest stops.
#pragma once

#include <string>
#include <vector>

namespace understudy::cli {

// Returns the process exit status.
int run_command(const std::string &program, const std::vector<std::string> &args);

} // namespace understudy::cli
