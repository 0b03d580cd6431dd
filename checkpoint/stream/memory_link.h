// A Link over bytes in memory: reads come from a given buffer, writes are
// collected. For the stream parser's tests and its fuzz target.
#pragma once

#include <cstring>
#include <vector>

#include "checkpoint/stream/link.h"

namespace understudy {

class MemoryLink final : public Link {
  public:
    explicit MemoryLink(std::vector<std::uint8_t> incoming = {}) : incoming_(std::move(incoming)) {}

    void write(std::span<const std::uint8_t> bytes) override
    {
        if (closed_)
            throw LinkError("memory link: write after shutdown");
        written_.insert(written_.end(), bytes.begin(), bytes.end());
    }
    void read(std::span<std::uint8_t> into, std::chrono::milliseconds) override
    {
        if (closed_ || incoming_.size() - offset_ < into.size())
            throw LinkClosed("memory link: end of input");
        if (!into.empty())
            std::memcpy(into.data(), incoming_.data() + offset_, into.size());
        offset_ += into.size();
    }
    void shutdown() noexcept override { closed_ = true; }
    [[nodiscard]] std::string peer() const override { return "memory"; }

    [[nodiscard]] const std::vector<std::uint8_t> &written() const noexcept { return written_; }
    void feed(std::span<const std::uint8_t> bytes) { incoming_.insert(incoming_.end(), bytes.begin(), bytes.end()); }

  private:
    std::vector<std::uint8_t> incoming_;
    std::size_t offset_ = 0;
    std::vector<std::uint8_t> written_;
    bool closed_ = false;
};

} // namespace understudy
