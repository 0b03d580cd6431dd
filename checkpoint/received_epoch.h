// The backup's side buffer: one epoch as received and verified, not yet
// applied to the standby copy. Reused from epoch to epoch, so the backup
// needs guest RAM plus one epoch of memory.
#pragma once

#include <optional>
#include <vector>

#include "checkpoint/byte_buffer.h"
#include "checkpoint/epoch.h"
#include "checkpoint/pfn.h"
#include "drbd/epoch_disk_log.h"
#include "proto/stream.pb.h"

namespace understudy {

struct ReceivedEpoch {
    Epoch epoch;
    proto::EpochBegin::Kind kind = proto::EpochBegin::KIND_UNSPECIFIED;
    std::vector<Pfn> pfns;
    ByteBuffer pages; // pfns.size() whole pages, decoded
    std::optional<proto::CpuState> cpu;
    std::optional<proto::DeviceState> devices;
    EpochDiskWrites disk;
    std::uint64_t wire_bytes = 0;

    void clear() noexcept
    {
        pfns.clear();
        pages.clear();
        cpu.reset();
        devices.reset();
        disk.clear();
        wire_bytes = 0;
    }
};

} // namespace understudy
