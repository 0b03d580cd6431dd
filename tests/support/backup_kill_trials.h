// Trials that kill the backup's process (SIGKILL: no goodbye, no clean-up)
// at random moments while it commits epochs, restart it on the same port and
// replica directory, let the primary resync, freeze the guest and compare
// the new standby's memory and disk (SHA-256) with the guest's. A unit test
// runs a handful, bench/backup_kill_bench.cpp a hundred and more.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace understudy::testing {

struct KillTrials {
    unsigned trials = 0;
    unsigned exact = 0;           // the standby equalled the frozen guest, memory and disk
    unsigned mismatched = 0;      // it did not
    unsigned not_protected = 0;   // no resync within the deadline
    double seconds = 0;
    std::string first_failure;
};

// `backup`: the test_backup helper; `dir`: a scratch directory for replicas.
[[nodiscard]] KillTrials run_backup_kill_trials(const std::filesystem::path &backup, const std::filesystem::path &dir,
                                                unsigned trials, std::uint64_t seed);

} // namespace understudy::testing
