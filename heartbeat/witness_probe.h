// Whether this host reaches the client-side witness: an ICMP echo to it every
// interval; reachable while a reply came within the timeout. The witness is
// an address on the client-facing network (a router, a switch's management
// address), so a host that reaches it is a host clients can reach.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "checkpoint/unique_fd.h"

namespace understudy {

class WitnessProbe {
  public:
    // Throws std::runtime_error if `ipv4` is not an IPv4 address or no ICMP
    // socket can be opened (needs root or CAP_NET_RAW).
    WitnessProbe(const std::string &ipv4, std::chrono::milliseconds interval, std::chrono::milliseconds timeout);
    ~WitnessProbe();
    WitnessProbe(const WitnessProbe &) = delete;
    WitnessProbe &operator=(const WitnessProbe &) = delete;

    [[nodiscard]] bool reachable() const;
    // Seconds since the last reply, or since probing began if none came.
    [[nodiscard]] double silent_s() const;
    [[nodiscard]] const std::string &address() const noexcept { return address_; }

  private:
    void run();

    std::string address_;
    std::uint32_t ip_;
    std::chrono::milliseconds interval_, timeout_;
    UniqueFd socket_;
    std::uint16_t id_;
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_reply_{};
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace understudy
