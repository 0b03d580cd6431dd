// When a long-lived loop last went round (the stream listener, the heartbeat
// threads, the failover controller): understudyd feeds systemd's watchdog
// only while every one of them keeps going round.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace understudy {

class ProgressMark {
  public:
    void mark() noexcept { ns_.store(now_ns(), std::memory_order_relaxed); }
    // Seconds since the last mark (or since construction).
    [[nodiscard]] double age_s() const noexcept
    {
        return static_cast<double>(now_ns() - ns_.load(std::memory_order_relaxed)) / 1e9;
    }

  private:
    static std::int64_t now_ns() noexcept
    {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }
    std::atomic<std::int64_t> ns_{now_ns()};
};

} // namespace understudy
