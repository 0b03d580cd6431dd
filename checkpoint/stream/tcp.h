// TCP endpoints for the replication stream: parse "host:port", connect with
// a deadline, listen and accept. Sockets are non-blocking with TCP_NODELAY.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "checkpoint/unique_fd.h"

namespace understudy {

struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
    [[nodiscard]] std::string to_string() const;
};

// Parses "host:port", "[v6addr]:port", or "host" (then `default_port`).
// Throws std::invalid_argument saying what is wrong.
[[nodiscard]] Endpoint parse_endpoint(std::string_view text, std::uint16_t default_port);

// Throws LinkError naming the endpoint and the cause.
[[nodiscard]] UniqueFd connect_tcp(const Endpoint &to, std::chrono::milliseconds timeout);

class TcpListener {
  public:
    explicit TcpListener(const Endpoint &at);
    // Waits up to `timeout` for a connection; returns an empty fd if none came
    // or accept failed, then `*error` (if given) holds its errno (0: none came).
    [[nodiscard]] UniqueFd accept(std::chrono::milliseconds timeout, std::string *peer, int *error = nullptr);
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  private:
    UniqueFd fd_;
    std::uint16_t port_ = 0;
};

// Waits until fd is ready for `events` (POLLIN/POLLOUT); false on timeout.
bool wait_fd(int fd, short events, std::chrono::milliseconds timeout);

// Socket options shared by both ends: non-blocking, no Nagle, and a kernel
// limit on unacknowledged data so a vanished peer is noticed.
void tune_stream_socket(int fd, std::chrono::milliseconds user_timeout);

} // namespace understudy
