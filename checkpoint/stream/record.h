// Framing of the replication stream (ARCHITECTURE.md §4, docs/protocol.md):
// `u32 length | u8 type | header` with the header a protobuf message of
// `length` bytes, then, for page batches and disk writes, raw payload bytes.
// The limits here bound what a reader accepts from a peer.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace understudy {

inline constexpr std::uint32_t kProtocolVersion = 1;

enum class RecordType : std::uint8_t {
    hello = 1,
    hello_reply = 2,
    epoch_begin = 3,
    page_batch = 4,
    cpu = 5,
    devices = 6,
    disk_writes = 7,
    epoch_end = 8,
    ack = 9,
    heartbeat = 10,
    goodbye = 11,
};

[[nodiscard]] bool known_record_type(std::uint8_t type) noexcept;
[[nodiscard]] std::string record_name(RecordType type);

inline constexpr std::uint32_t kFrameBytes = 5;               // u32 length + u8 type
inline constexpr std::uint32_t kMaxHeaderBytes = 1u << 20;    // CPU state of many vCPUs fits
inline constexpr std::uint32_t kMaxPagesPerBatch = 1024;      // 4 MiB of pages
inline constexpr std::uint32_t kMaxPayloadBytes = 4u << 20;   // any one record's raw bytes
inline constexpr std::uint32_t kMaxDiskWritesPerRecord = 4096;
inline constexpr std::uint64_t kMaxDiskBytesPerEpoch = 256ull << 20; // what a backup buffers for one epoch
inline constexpr std::uint32_t kSectorSize = 512;

// The peer sent something that is not a valid stream: refused, never applied.
class StreamError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

} // namespace understudy
