#include "tests/support/backup_kill_trials.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <random>
#include <sstream>
#include <thread>

#include "checkpoint/replicator.h"
#include "checkpoint/stream/sha256.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/stream/tcp.h"
#include "tests/support/memory_guest.h"

extern char **environ;

namespace understudy::testing {

namespace {

using namespace std::chrono_literals;

std::string hex(const Sha256Digest &d)
{
    std::ostringstream out;
    for (auto b : d)
        out << std::hex << std::setw(2) << std::setfill('0') << static_cast<unsigned>(b);
    return out.str();
}

// One test_backup process and the pipes to talk to it.
class BackupProcess {
  public:
    BackupProcess(const std::filesystem::path &program, std::uint16_t port, const std::filesystem::path &dir)
    {
        int in[2], out[2];
        if (pipe(in) != 0 || pipe(out) != 0)
            throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_addclose(&actions, in[1]);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        const std::string port_text = std::to_string(port), dir_text = dir.string(), program_text = program.string();
        char *argv[] = {const_cast<char *>(program_text.c_str()), const_cast<char *>(port_text.c_str()),
                        const_cast<char *>(dir_text.c_str()), nullptr};
        const int rc = posix_spawn(&pid_, program_text.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(in[0]);
        close(out[1]);
        if (rc != 0)
            throw std::runtime_error("cannot start " + program_text);
        to_ = fdopen(in[1], "w");
        from_ = fdopen(out[0], "r");
        const auto ready = line();
        if (ready.rfind("ready ", 0) != 0)
            throw std::runtime_error("test_backup did not start: '" + ready + "'");
        port_ = static_cast<std::uint16_t>(std::stoul(ready.substr(6)));
    }
    ~BackupProcess() { kill_now(); }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    std::string ask(const std::string &command)
    {
        std::fprintf(to_, "%s\n", command.c_str());
        std::fflush(to_);
        return line();
    }
    void kill_now()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        if (to_)
            std::fclose(to_);
        if (from_)
            std::fclose(from_);
        to_ = from_ = nullptr;
    }

  private:
    std::string line()
    {
        char buf[512];
        if (!from_ || !std::fgets(buf, sizeof buf, from_))
            return "";
        std::string s(buf);
        if (!s.empty() && s.back() == '\n')
            s.pop_back();
        return s;
    }
    pid_t pid_ = -1;
    FILE *to_ = nullptr, *from_ = nullptr;
    std::uint16_t port_ = 0;
};

} // namespace

KillTrials run_backup_kill_trials(const std::filesystem::path &backup, const std::filesystem::path &dir,
                                  unsigned trials, std::uint64_t seed)
{
    KillTrials result;
    const auto started = std::chrono::steady_clock::now();
    std::mt19937_64 rng(seed);
    std::filesystem::create_directories(dir);
    auto process = std::make_unique<BackupProcess>(backup, 0, dir);
    const auto port = process->port();

    MemoryGuest guest("killed", 4 << 20, 256 << 10);
    guest.set_disk_workload(16 << 10, 128 << 10);
    guest.start_workload(16, 300us);
    ReplicationSettings settings;
    settings.interval = 5ms;
    settings.retry_interval = 50ms;
    settings.ack_timeout = 1000ms;
    Replicator replicator(
        guest,
        [port]() -> std::unique_ptr<Link> {
            Endpoint to{"127.0.0.1", port};
            auto fd = connect_tcp(to, 1s);
            tune_stream_socket(fd.get(), 1s);
            return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 1s);
        },
        settings, nullptr);
    replicator.start();
    for (unsigned trial = 0; trial < trials; ++trial) {
        ++result.trials;
        if (!replicator.wait_protected(60s)) {
            ++result.not_protected;
            if (result.first_failure.empty())
                result.first_failure = "trial " + std::to_string(trial) + ": not protected within 60 s";
            process = std::make_unique<BackupProcess>(backup, port, dir);
            continue;
        }
        // A few more checkpoints, then a kill anywhere in the next ones.
        const auto acked = replicator.status().acked_epoch;
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (replicator.status().acked_epoch < acked + 1 + rng() % 20 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 8000));
        process->kill_now();
        process = std::make_unique<BackupProcess>(backup, port, dir);
        if (!replicator.wait_protected(60s)) {
            ++result.not_protected;
            if (result.first_failure.empty())
                result.first_failure = "trial " + std::to_string(trial) + ": no resync within 60 s";
            continue;
        }
        const auto epoch = replicator.freeze(20s);
        Sha256 memory, disk;
        memory.update(guest.memory());
        disk.update(guest.disk());
        const std::string want = std::to_string(epoch.value) + " " + hex(memory.finish()) + " " + hex(disk.finish());
        const std::string got = process->ask("digest killed");
        replicator.thaw();
        if (got == want) {
            ++result.exact;
        } else {
            ++result.mismatched;
            if (result.first_failure.empty())
                result.first_failure = "trial " + std::to_string(trial) + ": standby '" + got + "', guest '" + want + "'";
        }
    }
    replicator.stop("trials over");
    process->ask("quit");
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

} // namespace understudy::testing
