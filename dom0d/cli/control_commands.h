// The `understudy` commands that talk to understudyd over its control socket:
// protect, unprotect, status, events, failover, drill, and the debug commands used
// by tests and drills.
#pragma once

#include <string>
#include <vector>

#include "proto/control.pb.h"

namespace understudy::cli {

// What `understudy status` prints: a row per guest (with its checkpoint way,
// disks and held output underneath), the pair's state, a row per standby.
[[nodiscard]] std::string status_table(const proto::StatusReply &status);

// Each returns the process exit status: 0 done, 1 the daemon refused or
// failed (its reason printed), 2 bad options or no daemon to ask.
int protect_command(const std::string &program, const std::vector<std::string> &args);
int unprotect_command(const std::string &program, const std::vector<std::string> &args);
int status_command(const std::string &program, const std::vector<std::string> &args);
int debug_command(const std::string &program, const std::vector<std::string> &args);
int events_command(const std::string &program, const std::vector<std::string> &args);
int failover_command(const std::string &program, const std::vector<std::string> &args);
int drill_command(const std::string &program, const std::vector<std::string> &args);
int takeover_command(const std::string &program, const std::vector<std::string> &args);
int discard_command(const std::string &program, const std::vector<std::string> &args);

} // namespace understudy::cli
