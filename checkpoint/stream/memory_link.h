// A Link over bytes in memory: reads come from a given buffer, writes are
// collected. For the stream parser's tests and its fuzz target. Made to say
// it authenticates its bytes (as TLS does), the stream then carries no
// SHA-256 per epoch, so a fuzzer's mutations are not all refused by the
// digest and reach the commit.
#pragma once

#include <cstring>
#include <vector>

#include "checkpoint/stream/link.h"

namespace understudy {

class MemoryLink final : public Link {
  public:
    enum class Authenticates { no, yes };
    explicit MemoryLink(std::vector<std::uint8_t> incoming = {}, Authenticates authenticates = Authenticates::no)
        : incoming_(std::move(incoming)), authenticates_(authenticates == Authenticates::yes)
    {
    }

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
    [[nodiscard]] bool authenticates_bytes() const noexcept override { return authenticates_; }

    [[nodiscard]] const std::vector<std::uint8_t> &written() const noexcept { return written_; }
    void feed(std::span<const std::uint8_t> bytes) { incoming_.insert(incoming_.end(), bytes.begin(), bytes.end()); }

  private:
    std::vector<std::uint8_t> incoming_;
    std::size_t offset_ = 0;
    std::vector<std::uint8_t> written_;
    bool closed_ = false;
    bool authenticates_ = false;
};

} // namespace understudy
