// The replication stream over a plain TCP socket (`--insecure` only: nothing
// authenticates the peer or protects the bytes).
#pragma once

#include <atomic>

#include "checkpoint/stream/link.h"
#include "checkpoint/unique_fd.h"

namespace understudy {

class SocketLink final : public Link {
  public:
    // `fd` is a connected, non-blocking stream socket.
    SocketLink(UniqueFd fd, std::string peer, std::chrono::milliseconds write_timeout);

    void write(std::span<const std::uint8_t> bytes) override;
    void read(std::span<std::uint8_t> into, std::chrono::milliseconds idle) override;
    void shutdown() noexcept override;
    [[nodiscard]] std::string peer() const override { return peer_; }

  private:
    UniqueFd fd_;
    std::string peer_;
    std::chrono::milliseconds write_timeout_;
    std::atomic<bool> shut_{false};
};

} // namespace understudy
