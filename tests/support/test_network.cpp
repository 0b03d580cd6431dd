#include "tests/support/test_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <thread>

namespace understudy::testing {

namespace {

void must(const std::string &command)
{
    auto r = run_command(command);
    if (r.status != 0)
        throw std::runtime_error("test network: '" + command + "' failed (" + std::to_string(r.status) +
                                 "): " + r.output);
}

// Runs f on a thread that has entered namespace `ns`; sockets and TAPs it
// creates stay in that namespace.
template <class F> auto in_namespace(const std::string &ns, F f)
{
    decltype(f()) result;
    std::exception_ptr error;
    std::thread t([&] {
        try {
            UniqueFd nsfd(open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
            if (!nsfd || setns(nsfd.get(), CLONE_NEWNET) != 0)
                throw std::runtime_error("test network: cannot enter namespace " + ns);
            result = f();
        } catch (...) {
            error = std::current_exception();
        }
    });
    t.join();
    if (error)
        std::rethrow_exception(error);
    return result;
}

} // namespace

CommandResult run_command(const std::string &command)
{
    CommandResult r;
    FILE *p = popen((command + " 2>&1").c_str(), "r");
    if (!p)
        return r;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
        r.output.append(buf.data(), n);
    int status = pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TestNetwork::TestNetwork(const std::string &tag)
{
    static int serial = 0;
    const std::string base = "us-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(serial++);
    host_ = base + "-h";
    client_ = base + "-c";
    must("ip netns add " + host_);
    must("ip netns add " + client_);
    const std::string h = "ip -n " + host_ + " ", c = "ip -n " + client_ + " ";
    must(h + "link set lo up");
    must(c + "link set lo up");
    must(h + "link add br0 type bridge");
    must(h + "link set br0 up");
    must(h + "link add veth-h type veth peer name veth-c netns " + client_);
    must(h + "link set veth-h master br0");
    must(h + "link set veth-h up");
    must(c + "addr add " + kClientIp + "/24 dev veth-c");
    must(c + "link set veth-c up");
}

TestNetwork::~TestNetwork()
{
    run_command("ip netns del " + client_);
    run_command("ip netns del " + host_);
}

std::shared_ptr<kvm::TapDevice> TestNetwork::make_tap(const std::string &name)
{
    auto tap = in_namespace(host_, [&] { return std::make_shared<kvm::TapDevice>(name); });
    must("ip -n " + host_ + " link set " + tap->name() + " master br0");
    return tap;
}

CommandResult TestNetwork::in_client(const std::string &command) const
{
    return run_command("ip netns exec " + client_ + " " + command);
}

UniqueFd TestNetwork::guest_udp_socket(std::uint16_t port) const
{
    return in_namespace(client_, [&] {
        UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        inet_pton(AF_INET, kGuestIp, &addr.sin_addr);
        if (!fd || connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0)
            throw std::runtime_error("test network: UDP socket to the guest");
        return fd;
    });
}

std::optional<std::string> udp_request(int fd, const std::string &request, std::chrono::milliseconds timeout,
                                       int attempts)
{
    char buf[2048];
    // Drop late replies to earlier requests.
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    for (int i = 0; i < attempts; ++i) {
        if (send(fd, request.data(), request.size(), 0) < 0)
            continue;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0)
                return std::string(buf, static_cast<std::size_t>(n));
        }
    }
    return std::nullopt;
}

} // namespace understudy::testing
