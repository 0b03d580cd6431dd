// Reads framed records from a Link, treating every length as hostile: a
// header over the limit, an unknown type or a header that does not parse is
// a StreamError before anything is allocated for it or applied.
#pragma once

#include <google/protobuf/message_lite.h>

#include <chrono>
#include <vector>

#include "checkpoint/stream/link.h"
#include "checkpoint/stream/record.h"
#include "checkpoint/stream/sha256.h"

namespace understudy {

class RecordReader {
  public:
    // `idle`: how long a read may wait for the next byte.
    RecordReader(Link &link, std::chrono::milliseconds idle);

    // Reads the next record's frame and header.
    RecordType next();
    // Parses the current header into `into`; throws StreamError naming `what`.
    void parse(google::protobuf::MessageLite &into, const char *what) const;
    // Reads `into.size()` bytes of the current record's payload.
    void read_payload(std::span<std::uint8_t> into);

    void start_digest();
    [[nodiscard]] Sha256Digest finish_digest();
    void set_idle(std::chrono::milliseconds idle) noexcept { idle_ = idle; }

    [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_; }
    // Whether epochs carry their own digest (the link does not authenticate).
    [[nodiscard]] bool needs_digest() const noexcept { return !link_.authenticates_bytes(); }
    [[nodiscard]] const std::string &peer() const noexcept { return peer_; }

  private:
    void fill(std::span<std::uint8_t> into);

    Link &link_;
    std::string peer_;
    std::chrono::milliseconds idle_;
    RecordType type_{};
    std::vector<std::uint8_t> header_;
    Sha256 digest_;
    bool hashing_ = false;
    std::uint64_t bytes_ = 0;
};

} // namespace understudy
