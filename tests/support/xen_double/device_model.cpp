#include "tests/support/xen_double/device_model.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "checkpoint/xen/qmp_client.h"

namespace understudy::testing::xen_double {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kStartTimeout = 20s;

int connect_unix(const std::string &path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw std::runtime_error("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
        return fd;
    if (fd >= 0)
        ::close(fd);
    return -1;
}

} // namespace

std::string real_device_model_binary()
{
    const std::string path = "/usr/libexec/xen-qemu-system-i386";
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

RealDeviceModel::RealDeviceModel(const std::string &binary, const std::string &run_dir, std::uint32_t domid,
                                 const std::string &incoming)
    : qmp_socket_(run_dir + "/qmp-libxl-" + std::to_string(domid)),
      qtest_socket_(run_dir + "/qtest-" + std::to_string(domid)),
      log_(run_dir + "/qemu-dm-" + std::to_string(domid) + ".log")
{
    if (qtest_socket_.size() >= sizeof(sockaddr_un::sun_path)) // before anything is started
        throw std::runtime_error("device model: socket path too long: " + qtest_socket_);
    ::unlink(qmp_socket_.c_str());
    ::unlink(qtest_socket_.c_str());
    std::vector<std::string> args = {binary,       "-machine",
                                     "pc",         "-accel",
                                     "qtest",      "-nodefaults",
                                     "-display",   "none",
                                     "-m",         "16",
                                     "-global",    "migration.send-configuration=off",
                                     "-global",    "migration.send-section-footer=off",
                                     "-global",    "migration.store-global-state=off",
                                     "-qmp",       "unix:" + qmp_socket_ + ",server=on,wait=off",
                                     "-qtest",     "unix:" + qtest_socket_ + ",server=on,wait=off",
                                     "-qtest-log", "/dev/null"};
    int state_fd = -1;
    if (!incoming.empty()) {
        state_fd = ::open(incoming.c_str(), O_RDONLY | O_CLOEXEC);
        if (state_fd < 0)
            throw std::runtime_error("device model: cannot open " + incoming + ": " + std::strerror(errno));
        if (state_fd == 3) { // it must become fd 3 in the child without being closed there first
            const int moved = ::fcntl(state_fd, F_DUPFD_CLOEXEC, 10);
            ::close(state_fd);
            state_fd = moved;
        }
        args.insert(args.end(), {"-incoming", "fd:3"});
    }
    const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    // Killed with the test if it dies, where that is the process: the
    // signal comes when the forking thread ends, and other threads (a
    // daemon's request handler) end before the domain does.
    const bool main_thread = ::gettid() == ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) { // only async-signal-safe calls from here
        if (main_thread)
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (log_fd >= 0) {
            ::dup2(log_fd, 1);
            ::dup2(log_fd, 2);
        }
        if (state_fd >= 0)
            ::dup2(state_fd, 3);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    if (log_fd >= 0)
        ::close(log_fd);
    if (state_fd >= 0)
        ::close(state_fd);
    if (pid_ < 0)
        throw std::runtime_error(std::string("device model: fork failed: ") + std::strerror(errno));

    // Up when both sockets answer; loaded when it has left "inmigrate".
    const auto deadline = Clock::now() + kStartTimeout;
    auto fail = [&](const std::string &why) {
        const auto tail = log_tail();
        if (!exited()) { // no destructor runs after a constructor throws
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (qtest_fd_ >= 0)
            ::close(qtest_fd_);
        throw std::runtime_error("device model " + binary + " for domain " + std::to_string(domid) + " " + why +
                                 (tail.empty() ? std::string() : ": " + tail));
    };
    for (;;) {
        if (exited())
            fail("exited");
        if (qtest_fd_ < 0)
            qtest_fd_ = connect_unix(qtest_socket_);
        if (qtest_fd_ >= 0) {
            try {
                if (status() != "inmigrate")
                    break;
            } catch (const understudy::xen::QmpError &) {
                // not listening yet
            }
        }
        if (Clock::now() > deadline)
            fail("did not come up in 20 s");
        std::this_thread::sleep_for(20ms);
    }
}

RealDeviceModel::~RealDeviceModel()
{
    if (qtest_fd_ >= 0)
        ::close(qtest_fd_);
    if (pid_ > 0 && !exited()) {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 250 && !exited(); ++i)
            std::this_thread::sleep_for(20ms);
        if (!exited()) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    ::unlink(qmp_socket_.c_str());
    ::unlink(qtest_socket_.c_str());
}

bool RealDeviceModel::exited()
{
    if (pid_ <= 0)
        return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return true;
    }
    return false;
}

std::string RealDeviceModel::log_tail() const
{
    std::ifstream in(log_);
    std::stringstream all;
    all << in.rdbuf();
    auto text = all.str();
    while (!text.empty() && text.back() == '\n')
        text.pop_back();
    return text.size() > 600 ? text.substr(text.size() - 600) : text;
}

std::string RealDeviceModel::status() const
{
    understudy::xen::QmpMonitor monitor(qmp_socket_, 5s);
    const auto reply = monitor.execute("query-status");
    const auto &fields = reply.struct_value().fields();
    const auto it = fields.find("status");
    return it == fields.end() ? std::string() : it->second.string_value();
}

std::string RealDeviceModel::qtest(const std::string &command)
{
    const std::string line = command + "\n";
    if (::send(qtest_fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw std::runtime_error("qtest: sending " + command + " failed: " + std::strerror(errno));
    for (;;) {
        if (auto nl = qtest_buffer_.find('\n'); nl != std::string::npos) {
            auto answer = qtest_buffer_.substr(0, nl);
            qtest_buffer_.erase(0, nl + 1);
            if (answer.rfind("OK", 0) != 0)
                throw std::runtime_error("qtest: " + command + ": " + answer);
            return answer;
        }
        char chunk[256];
        const auto n = ::recv(qtest_fd_, chunk, sizeof chunk, 0);
        if (n <= 0)
            throw std::runtime_error("qtest: QEMU closed the connection during " + command);
        qtest_buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

void RealDeviceModel::write_cmos(unsigned index, std::uint8_t value)
{
    qtest("outb 0x70 " + std::to_string(index & 0x7f));
    qtest("outb 0x71 " + std::to_string(value));
}

std::uint8_t RealDeviceModel::read_cmos(unsigned index)
{
    qtest("outb 0x70 " + std::to_string(index & 0x7f));
    const auto answer = qtest("inb 0x71"); // "OK 0x00ab"
    return static_cast<std::uint8_t>(std::stoul(answer.substr(3), nullptr, 16));
}

} // namespace understudy::testing::xen_double
