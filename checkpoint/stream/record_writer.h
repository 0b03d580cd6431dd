// Writes framed records to a Link. Small records are gathered in a buffer;
// raw payloads (pages, disk data) go to the link straight from where they
// lie. While a digest is open, every byte written is hashed.
#pragma once

#include <google/protobuf/message_lite.h>

#include <vector>

#include "checkpoint/stream/link.h"
#include "checkpoint/stream/record.h"
#include "checkpoint/stream/sha256.h"

namespace understudy {

class RecordWriter {
  public:
    explicit RecordWriter(Link &link);

    void write(RecordType type, const google::protobuf::MessageLite &header,
               std::span<const std::uint8_t> payload = {});
    // Sends whatever is buffered.
    void flush();

    void start_digest();
    [[nodiscard]] Sha256Digest finish_digest();

    [[nodiscard]] std::uint64_t bytes_written() const noexcept { return bytes_; }
    // Whether epochs need their own digest (the link does not authenticate).
    [[nodiscard]] bool needs_digest() const noexcept { return !link_.authenticates_bytes(); }

  private:
    void emit(std::span<const std::uint8_t> bytes);

    Link &link_;
    std::vector<std::uint8_t> buffer_;
    Sha256 digest_;
    bool hashing_ = false;
    std::uint64_t bytes_ = 0;
};

} // namespace understudy
