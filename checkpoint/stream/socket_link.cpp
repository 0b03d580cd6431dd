#include "checkpoint/stream/socket_link.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "checkpoint/stream/tcp.h"

namespace understudy {

SocketLink::SocketLink(UniqueFd fd, std::string peer, std::chrono::milliseconds write_timeout)
    : fd_(std::move(fd)), peer_(std::move(peer)), write_timeout_(write_timeout)
{
}

void SocketLink::write(std::span<const std::uint8_t> bytes)
{
    while (!bytes.empty()) {
        if (shut_)
            throw LinkError("send to " + peer_ + ": link shut down");
        ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes = bytes.subspan(static_cast<std::size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (errno == EAGAIN && !wait_fd(fd_.get(), POLLOUT, write_timeout_))
                throw LinkTimeout("send to " + peer_ + ": peer took no data for " +
                                  std::to_string(write_timeout_.count()) + " ms");
        } else {
            throw LinkError("send to " + peer_ + ": " + std::strerror(errno));
        }
    }
}

void SocketLink::read(std::span<std::uint8_t> into, std::chrono::milliseconds idle)
{
    while (!into.empty()) {
        if (shut_)
            throw LinkError("receive from " + peer_ + ": link shut down");
        ssize_t n = ::recv(fd_.get(), into.data(), into.size(), 0);
        if (n > 0) {
            into = into.subspan(static_cast<std::size_t>(n));
        } else if (n == 0) {
            throw LinkClosed("receive from " + peer_ + ": connection closed by peer");
        } else if (errno == EAGAIN || errno == EINTR) {
            if (errno == EAGAIN && !wait_fd(fd_.get(), POLLIN, idle))
                throw LinkTimeout("receive from " + peer_ + ": nothing for " + std::to_string(idle.count()) + " ms");
        } else if (errno == ECONNRESET) {
            throw LinkClosed("receive from " + peer_ + ": connection reset by peer");
        } else {
            throw LinkError("receive from " + peer_ + ": " + std::strerror(errno));
        }
    }
}

void SocketLink::shutdown() noexcept
{
    shut_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
}

} // namespace understudy
