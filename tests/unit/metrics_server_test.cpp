// The metrics endpoint keeps serving after accepting a connection failed
// (here: the process out of file descriptors, a real EMFILE).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "dom0d/daemon/metrics_server.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

// GET /metrics on an already created socket; the reply, "" if none in time.
std::string get_metrics(int fd, std::uint16_t port)
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(0x7f000001u);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof to) != 0)
        return "";
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string reply;
    char buf[512];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 3000) <= 0)
            break;
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        reply.append(buf, static_cast<std::size_t>(n));
    }
    return reply;
}

} // namespace

TEST_CASE("the metrics endpoint keeps serving after an accept failed (out of file descriptors)", "[metrics]")
{
    daemon::MetricsServer server({"127.0.0.1", 0}, [] { return std::string("understudy_test 1\n"); });
    server.start();
    const int first = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(first >= 0);
    // Every descriptor this process may have, taken: the server's accept
    // of `first` fails with EMFILE.
    rlimit old{};
    getrlimit(RLIMIT_NOFILE, &old);
    rlimit low = old;
    low.rlim_cur = std::min<rlim_t>(old.rlim_cur, 4096);
    setrlimit(RLIMIT_NOFILE, &low);
    std::vector<int> filler;
    for (int fd; (fd = ::dup(first)) >= 0;)
        filler.push_back(fd);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server.port());
    to.sin_addr.s_addr = htonl(0x7f000001u);
    REQUIRE(::connect(first, reinterpret_cast<sockaddr *>(&to), sizeof to) == 0);
    std::this_thread::sleep_for(300ms); // the server tries, and fails, to accept it
    for (int fd : filler)
        ::close(fd);
    setrlimit(RLIMIT_NOFILE, &old);
    ::close(first);

    const int second = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto reply = get_metrics(second, server.port());
    ::close(second);
    CHECK(reply.find("200 OK") != std::string::npos);
    CHECK(reply.find("understudy_test 1") != std::string::npos);
    server.stop();
}
