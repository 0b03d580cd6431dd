#include "drbd/events2_follower.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "drbd/drbd_tool.h"

namespace understudy::drbd {

namespace {
constexpr std::size_t kMaxLine = 64 << 10;
}

Events2Follower::Events2Follower(std::string resource, std::string drbdsetup, OnChange on_change, OnEnd on_end)
    : resource_(std::move(resource)), drbdsetup_(std::move(drbdsetup)), on_change_(std::move(on_change)),
      on_end_(std::move(on_end))
{
    if (!valid_resource_name(resource_))
        throw DrbdParseError("'" + resource_ + "' is not a DRBD resource name");
    verdict_.reason = "no state from drbdsetup events2 yet";
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0)
        throw DrbdParseError(std::string("events2: pipe: ") + std::strerror(errno));
    thread_ = std::thread([this] { run(); });
}

Events2Follower::~Events2Follower()
{
    if (stop_pipe_[1] >= 0) {
        [[maybe_unused]] auto n = ::write(stop_pipe_[1], "x", 1);
    }
    if (thread_.joinable())
        thread_.join();
    for (int fd : stop_pipe_)
        if (fd >= 0)
            ::close(fd);
}

ReplicationVerdict Events2Follower::verdict() const
{
    std::lock_guard lock(mutex_);
    return verdict_;
}

void Events2Follower::run()
{
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        on_end_(std::string("events2: pipe: ") + std::strerror(errno));
        return;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], 1);
        const int devnull = ::open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            ::dup2(devnull, 2);
        ::execlp(drbdsetup_.c_str(), drbdsetup_.c_str(), "events2", resource_.c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    ::close(out[1]);
    if (pid < 0) {
        ::close(out[0]);
        on_end_(std::string("events2: fork: ") + std::strerror(errno));
        return;
    }
    Events2Tracker tracker;
    std::string pending;
    bool stopped = false, reported = false;
    ReplicationVerdict last;
    char buf[8192];
    for (;;) {
        pollfd fds[2] = {{out[0], POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents) {
            stopped = true;
            break;
        }
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0)
            break;
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
            const auto line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            tracker.apply(line); // a line it does not understand changes nothing
            if (!tracker.initial_state_complete())
                continue;
            ReplicationVerdict now;
            auto it = tracker.resources().find(resource_);
            if (it == tracker.resources().end())
                now.reason = "resource " + resource_ + " does not exist (any more)";
            else
                now = judge_replication(it->second);
            if (!reported || now.replicated != last.replicated || now.reason != last.reason) {
                {
                    std::lock_guard lock(mutex_);
                    verdict_ = now;
                }
                on_change_(now);
                last = now;
                reported = true;
            }
        }
        if (pending.size() > kMaxLine)
            pending.clear(); // not DRBD's output: drop it rather than grow
    }
    ::close(out[0]);
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!stopped) {
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        on_end_("drbdsetup events2 " + resource_ + " ended (exit " + std::to_string(code) +
                (code == 127 ? ": drbdsetup cannot be run, is drbd-utils installed?" : "") +
                "); the resource's state is no longer followed");
    }
}

} // namespace understudy::drbd
