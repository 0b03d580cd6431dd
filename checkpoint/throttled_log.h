// Log lines about refused peers, throttled: a flood of bad connections must
// not flood the log or the disk under it. The first few lines of each window
// are written as they come; the rest are counted and summed up in one line
// once the window is over.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace understudy {

class ThrottledLog {
  public:
    using Log = std::function<void(const std::string &)>;
    explicit ThrottledLog(Log log, unsigned lines_per_window = 5,
                          std::chrono::milliseconds window = std::chrono::seconds(10));

    // Thread-safe.
    void write(const std::string &line);
    // Writes the summary of a window that is over (call it now and then).
    void flush();
    // Lines held back since the start.
    [[nodiscard]] std::uint64_t suppressed_total() const;

  private:
    void close_window_if_over(std::chrono::steady_clock::time_point now); // with mutex_ held

    Log log_;
    unsigned lines_per_window_;
    std::chrono::milliseconds window_;
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point window_start_{};
    unsigned written_ = 0;
    std::uint64_t suppressed_ = 0, suppressed_total_ = 0;
};

} // namespace understudy
