// A byte stream to the peer host: plain TCP, TLS over TCP, or memory in tests.
// The replication stream is written and read through this interface only.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

namespace understudy {

// The link failed; the message says what was being done and why.
class LinkError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};
// The peer closed the stream (end of file where more bytes were expected).
class LinkClosed : public LinkError {
  public:
    using LinkError::LinkError;
};
// Nothing arrived (or could be sent) within the allowed time.
class LinkTimeout : public LinkError {
  public:
    using LinkError::LinkError;
};

class Link {
  public:
    virtual ~Link() = default;

    // Sends all of `bytes` or throws LinkError.
    virtual void write(std::span<const std::uint8_t> bytes) = 0;
    // Fills all of `into` or throws: LinkClosed at end of stream, LinkTimeout
    // when no byte arrives for `idle` (the clock restarts with every byte).
    virtual void read(std::span<std::uint8_t> into, std::chrono::milliseconds idle) = 0;
    // From any thread: makes blocked and later reads and writes fail.
    virtual void shutdown() noexcept = 0;
    // Who is at the other end, for log lines ("10.0.0.2:7300").
    [[nodiscard]] virtual std::string peer() const = 0;
    // True when the link itself authenticates every byte in order (TLS 1.3's
    // AEAD): a changed, dropped or reordered byte fails the read. The stream
    // then leaves out its own per-epoch SHA-256, a redundant pass over the data.
    [[nodiscard]] virtual bool authenticates_bytes() const noexcept { return false; }
};

} // namespace understudy
