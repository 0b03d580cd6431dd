// A TCP relay for tests that stands between primary and backup on the
// replication link and, when armed, flips one bit of the primary's stream:
// what a faulty NIC, switch or an attacker on the path would do. It relays
// one connection at a time and accepts the next when that one ends.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "checkpoint/stream/tcp.h"

namespace understudy::testing {

class BitFlipProxy {
  public:
    explicit BitFlipProxy(std::uint16_t backup_port)
        : listener_({"127.0.0.1", 0}), backup_port_(backup_port), thread_([this] { run(); })
    {
    }
    ~BitFlipProxy()
    {
        stop_ = true;
        thread_.join();
    }
    BitFlipProxy(const BitFlipProxy &) = delete;
    BitFlipProxy &operator=(const BitFlipProxy &) = delete;

    [[nodiscard]] std::uint16_t port() const noexcept { return listener_.port(); }
    // Flips the lowest bit of the byte `after` bytes further on in the
    // primary-to-backup direction (once).
    void arm(std::uint64_t after) { flip_at_ = forwarded_.load() + after; }
    [[nodiscard]] bool flipped() const noexcept { return flipped_; }

  private:
    static void blocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); }

    void run()
    {
        using namespace std::chrono_literals;
        while (!stop_) {
            std::string peer;
            UniqueFd primary = listener_.accept(100ms, &peer);
            if (!primary)
                continue;
            UniqueFd backup;
            try {
                backup = connect_tcp({"127.0.0.1", backup_port_}, 2s);
            } catch (const std::exception &) {
                continue;
            }
            blocking(primary.get());
            blocking(backup.get());
            relay(primary.get(), backup.get());
        }
    }

    void relay(int primary, int backup)
    {
        std::uint8_t buf[65536];
        while (!stop_) {
            pollfd fds[2] = {{primary, POLLIN, 0}, {backup, POLLIN, 0}};
            if (poll(fds, 2, 100) <= 0)
                continue;
            for (int i = 0; i < 2; ++i) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                const ssize_t n = read(fds[i].fd, buf, sizeof buf);
                if (n <= 0)
                    return;
                if (i == 0) {
                    const std::uint64_t start = forwarded_, at = flip_at_;
                    if (!flipped_ && at >= start && at < start + static_cast<std::uint64_t>(n)) {
                        buf[at - start] ^= 1;
                        flipped_ = true;
                    }
                    forwarded_ += static_cast<std::uint64_t>(n);
                }
                for (ssize_t sent = 0; sent < n;) {
                    const ssize_t w = write(fds[1 - i].fd, buf + sent, static_cast<std::size_t>(n - sent));
                    if (w <= 0)
                        return;
                    sent += w;
                }
            }
        }
    }

    TcpListener listener_;
    std::uint16_t backup_port_;
    std::atomic<bool> stop_{false}, flipped_{false};
    std::atomic<std::uint64_t> forwarded_{0}, flip_at_{~0ull};
    std::thread thread_;
};

} // namespace understudy::testing
