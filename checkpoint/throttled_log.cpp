#include "checkpoint/throttled_log.h"

namespace understudy {

ThrottledLog::ThrottledLog(Log log, unsigned lines_per_window, std::chrono::milliseconds window)
    : log_(std::move(log)), lines_per_window_(lines_per_window), window_(window)
{
}

void ThrottledLog::close_window_if_over(std::chrono::steady_clock::time_point now)
{
    if (now - window_start_ < window_)
        return;
    if (suppressed_ && log_)
        log_("... and " + std::to_string(suppressed_) + " more such lines in the last " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - window_start_).count()) +
             " s, not logged one by one");
    window_start_ = now;
    written_ = 0;
    suppressed_ = 0;
}

void ThrottledLog::write(const std::string &line)
{
    std::lock_guard lock(mutex_);
    close_window_if_over(std::chrono::steady_clock::now());
    if (written_ < lines_per_window_) {
        ++written_;
        if (log_)
            log_(line);
        return;
    }
    ++suppressed_;
    ++suppressed_total_;
}

void ThrottledLog::flush()
{
    std::lock_guard lock(mutex_);
    if (suppressed_)
        close_window_if_over(std::chrono::steady_clock::now());
}

std::uint64_t ThrottledLog::suppressed_total() const
{
    std::lock_guard lock(mutex_);
    return suppressed_total_;
}

} // namespace understudy
