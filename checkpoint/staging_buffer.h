// Where a checkpoint's dirty pages, CPU and device state and disk writes are
// copied while the guest is paused, to be shipped after it resumes. Its page
// area is reserved for all of guest RAM up front, so filling it during the
// pause never allocates.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "checkpoint/epoch.h"
#include "checkpoint/pfn.h"
#include "drbd/epoch_disk_log.h"
#include "proto/stream.pb.h"

namespace understudy {

class StagingBuffer {
  public:
    explicit StagingBuffer(std::uint64_t memory_size);
    ~StagingBuffer();
    StagingBuffer(const StagingBuffer &) = delete;
    StagingBuffer &operator=(const StagingBuffer &) = delete;

    void reset(Epoch epoch, proto::EpochBegin::Kind kind);

    // Room for `count` more pages, appended after those already staged.
    [[nodiscard]] std::span<std::uint8_t> page_room(std::size_t count);
    [[nodiscard]] std::span<const std::uint8_t> pages() const noexcept { return {area_, pfns.size() * kPageSize}; }

    Epoch epoch;
    proto::EpochBegin::Kind kind = proto::EpochBegin::PRECOPY;
    std::vector<Pfn> pfns;
    bool has_state = false;
    proto::CpuState cpu;
    proto::DeviceState devices;
    EpochDiskWrites disk;
    std::chrono::nanoseconds pause_time{0};
    std::uint64_t paused_unix_ns = 0; // when the pause began (wall clock)

  private:
    std::uint64_t capacity_;
    std::uint8_t *area_ = nullptr;
};

} // namespace understudy
