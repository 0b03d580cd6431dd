// What stream_reader_fuzz makes of its input, shared with the unit test that
// keeps its seed corpus valid: the first byte picks what the handshake
// agreed (codec, XOR delta) and whether the link authenticates its bytes; the
// rest is the stream as the backup reads it after the handshake. The standby
// it commits to has 64 pages and a 16 KiB disk.
#pragma once

#include <cstdint>
#include <span>

#include "checkpoint/page_codec.h"
#include "checkpoint/stream/memory_link.h"

namespace understudy::fuzz {

inline constexpr std::uint64_t kStandbyMemory = 64 * 4096;
inline constexpr std::uint64_t kStandbyDisk = 16 * 1024;

struct StreamInput {
    PageCodecSettings codec;
    MemoryLink::Authenticates authenticates = MemoryLink::Authenticates::no;
    std::span<const std::uint8_t> stream;
};

// Precondition: !bytes.empty().
inline StreamInput stream_input(std::span<const std::uint8_t> bytes)
{
    StreamInput in;
    const std::uint8_t mode = bytes[0];
    in.codec.compressor = mode % 3 == 0   ? proto::PageBatch::RAW
                          : mode % 3 == 1 ? proto::PageBatch::LZ4
                                          : proto::PageBatch::ZSTD;
    in.codec.xor_delta = (mode & 4) && in.codec.compressor != proto::PageBatch::RAW;
    in.authenticates = (mode & 8) ? MemoryLink::Authenticates::yes : MemoryLink::Authenticates::no;
    in.stream = bytes.subspan(1);
    return in;
}

} // namespace understudy::fuzz
