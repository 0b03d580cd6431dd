#include "checkpoint/stream/tcp.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "checkpoint/stream/link.h"

namespace understudy {

namespace {

std::string errno_text(int err)
{
    return std::strerror(err);
}

} // namespace

std::string Endpoint::to_string() const
{
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view text, std::uint16_t default_port)
{
    Endpoint e;
    std::string_view port_text;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("address '" + std::string(text) + "': '[' without ']'");
        e.host = std::string(text.substr(1, close - 1));
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':')
                throw std::invalid_argument("address '" + std::string(text) + "': expected ':' after ']'");
            port_text = rest.substr(1);
        }
    } else {
        auto colon = text.rfind(':');
        if (colon != std::string_view::npos && text.find(':') != colon)
            throw std::invalid_argument("address '" + std::string(text) + "': write IPv6 addresses as [addr]:port");
        e.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos)
            port_text = text.substr(colon + 1);
        else
            port_text = {};
    }
    if (e.host.empty())
        throw std::invalid_argument("address '" + std::string(text) + "': no host");
    if (port_text.empty() && text.find(':') == std::string_view::npos) {
        e.port = default_port;
        return e;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535)
        throw std::invalid_argument("address '" + std::string(text) + "': port '" + std::string(port_text) +
                                    "' is not a number from 1 to 65535");
    e.port = static_cast<std::uint16_t>(value);
    return e;
}

bool wait_fd(int fd, short events, std::chrono::milliseconds timeout)
{
    pollfd p{fd, events, 0};
    for (;;) {
        int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (n > 0)
            return true;
        if (n == 0)
            return false;
        if (errno != EINTR)
            throw LinkError(std::string("poll: ") + errno_text(errno));
    }
}

void tune_stream_socket(int fd, std::chrono::milliseconds user_timeout)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        throw LinkError(std::string("set socket non-blocking: ") + errno_text(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned ms = static_cast<unsigned>(user_timeout.count());
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    // Room for a few epochs in flight without blocking the sender.
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
}

namespace {

struct AddrInfo {
    addrinfo *list = nullptr;
    ~AddrInfo()
    {
        if (list)
            freeaddrinfo(list);
    }
};

AddrInfo resolve(const Endpoint &e, bool passive)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    AddrInfo result;
    auto port = std::to_string(e.port);
    int rc = getaddrinfo(e.host.c_str(), port.c_str(), &hints, &result.list);
    if (rc != 0)
        throw LinkError("resolve " + e.to_string() + ": " + gai_strerror(rc));
    return result;
}

} // namespace

UniqueFd connect_tcp(const Endpoint &to, std::chrono::milliseconds timeout)
{
    auto addrs = resolve(to, false);
    std::string last = "no address";
    for (auto *a = addrs.list; a; a = a->ai_next) {
        UniqueFd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        if (!fd) {
            last = errno_text(errno);
            continue;
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0)
            return fd;
        if (errno != EINPROGRESS) {
            last = errno_text(errno);
            continue;
        }
        if (!wait_fd(fd.get(), POLLOUT, timeout)) {
            last = "no answer within " + std::to_string(timeout.count()) + " ms";
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0)
            return fd;
        last = errno_text(err);
    }
    throw LinkError("connect to " + to.to_string() + ": " + last);
}

TcpListener::TcpListener(const Endpoint &at)
{
    auto addrs = resolve(at, true);
    std::string last = "no address";
    for (auto *a = addrs.list; a; a = a->ai_next) {
        UniqueFd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        if (!fd) {
            last = errno_text(errno);
            continue;
        }
        int one = 1;
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
            last = errno_text(errno);
            continue;
        }
        sockaddr_storage bound{};
        socklen_t len = sizeof bound;
        getsockname(fd.get(), reinterpret_cast<sockaddr *>(&bound), &len);
        port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6 *>(&bound)->sin6_port
                                                  : reinterpret_cast<sockaddr_in *>(&bound)->sin_port);
        fd_ = std::move(fd);
        return;
    }
    throw LinkError("listen on " + at.to_string() + ": " + last);
}

UniqueFd TcpListener::accept(std::chrono::milliseconds timeout, std::string *peer, int *error)
{
    if (error)
        *error = 0;
    if (!wait_fd(fd_.get(), POLLIN, timeout))
        return {};
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    UniqueFd fd(::accept4(fd_.get(), reinterpret_cast<sockaddr *>(&from), &len, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
        if (error && errno != EAGAIN && errno != EWOULDBLOCK)
            *error = errno;
        return {};
    }
    if (peer) {
        char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
        getnameinfo(reinterpret_cast<sockaddr *>(&from), len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        *peer = std::string(host) + ":" + port;
    }
    return fd;
}

} // namespace understudy
