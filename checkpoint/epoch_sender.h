// Turns a staged epoch into stream records (primary side): EpochBegin, page
// batches (compressed when agreed and worth it), CPU and device state, disk
// writes, and EpochEnd with the counts and the SHA-256 of the epoch.
#pragma once

#include <memory>

#include "checkpoint/page_codec.h"
#include "checkpoint/staging_buffer.h"
#include "checkpoint/stream/record_writer.h"

namespace understudy {

struct SendCounters {
    std::uint64_t page_bytes = 0;    // pages as they are in memory
    std::uint64_t payload_bytes = 0; // what they became on the wire
};

class EpochSender {
  public:
    // `memory_size`: guest RAM, for the copy of what the backup holds that
    // XOR delta needs (only allocated with XOR delta).
    EpochSender(PageCodecSettings codec, std::uint64_t memory_size);
    ~EpochSender();

    void send(const StagingBuffer &epoch, RecordWriter &writer, SendCounters &counters);

  private:
    PageEncoder encoder_;
    bool xor_delta_;
    std::uint64_t memory_size_;
    std::uint8_t *sent_ = nullptr; // every page as last sent (XOR delta only)
    std::vector<std::uint8_t> previous_;
};

} // namespace understudy
