#include "drbd/drbd_tool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "drbd/drbd_state.h"

namespace understudy::drbd {

namespace {
constexpr std::size_t kMaxOutput = 16 << 20;
} // namespace

Ran run_tool(const std::vector<std::string> &argv, std::chrono::milliseconds timeout)
{
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
        throw DrbdParseError(std::string("drbd tool: pipe: ") + std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0)
        throw DrbdParseError(std::string("drbd tool: fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char *> args;
        for (const auto &a : argv)
            args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    Ran r;
    const auto until = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    bool timed_out = false;
    char buf[65536];
    while (open_fds > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
                continue;
            }
            auto &into = i == 0 ? r.out : r.err;
            if (into.size() < kMaxOutput)
                into.append(buf, static_cast<std::size_t>(n));
        }
    }
    for (auto &f : fds)
        if (f.fd >= 0)
            ::close(f.fd);
    if (timed_out)
        ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (timed_out)
        throw DrbdParseError(argv[0] + " " + argv[1] + " did not finish within " + std::to_string(timeout.count()) +
                             " ms (killed)");
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string first_line(const std::string &s)
{
    auto line = s.substr(0, s.find('\n'));
    return line.substr(0, 300);
}

Ran run_checked(const std::vector<std::string> &argv, std::chrono::milliseconds timeout)
{
    auto r = run_tool(argv, timeout);
    if (r.status == 127)
        throw DrbdParseError(argv[0] + " cannot be run (is drbd-utils installed?)");
    if (r.status != 0)
        throw DrbdParseError(argv[0] + " " + argv[1] + " " + argv.back() + " exited " + std::to_string(r.status) +
                             (r.err.empty() ? "" : ": " + first_line(r.err)));
    return r;
}


bool valid_resource_name(const std::string &name)
{
    return !name.empty() && name.size() <= 128 && name[0] != '-' &&
           name.find_first_of(" \t\n/\\'\"") == std::string::npos;
}

} // namespace understudy::drbd
