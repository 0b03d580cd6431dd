// Kills the backup's process (SIGKILL) at random moments of its commits, N
// times (default 100): after each restart and resync, the standby must equal
// the frozen guest in memory and disk (tests/support/backup_kill_trials.h).
// Prints JSON: trials, outcomes, seconds per trial. Exit 1 on any mismatch.
//   backup_kill_bench [TRIALS] [OUT-DIR]
#include <unistd.h>

#include <random>
#include <sstream>

#include "bench/bench_output.h"
#include "tests/support/backup_kill_trials.h"

int main(int argc, char **argv)
{
    const unsigned trials = argc > 1 ? static_cast<unsigned>(std::stoul(argv[1])) : 100;
    const auto dir = std::filesystem::temp_directory_path() / ("understudy-kill-bench-" + std::to_string(getpid()));
    const auto seed = std::random_device{}();
    const auto r = understudy::testing::run_backup_kill_trials(UNDERSTUDY_TEST_BACKUP, dir, trials, seed);
    std::filesystem::remove_all(dir);
    std::ostringstream json;
    json << "{\"bench\":\"backup_kill\",\"seed\":" << seed << ",\"trials\":" << r.trials << ",\"exact\":" << r.exact
         << ",\"mismatched\":" << r.mismatched << ",\"not_protected\":" << r.not_protected
         << ",\"seconds_per_trial\":" << (r.trials ? r.seconds / r.trials : 0) << ",\"first_failure\":\""
         << r.first_failure << "\"}\n";
    understudy::bench::emit("backup_kill", json.str(), "", argc > 2 ? argv[2] : nullptr);
    return r.exact == r.trials ? 0 : 1;
}
