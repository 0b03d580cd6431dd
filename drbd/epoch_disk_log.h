// The built-in disk replication of the kvm backend (ARCHITECTURE.md §7): the
// guest's disk writes are recorded per epoch on the primary, shipped with the
// epoch, and applied to the backup's replica image only when the epoch
// commits, so disk and memory always agree on the backup.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace understudy {

inline constexpr std::uint32_t kDiskSectorSize = 512;

struct DiskWriteEntry {
    std::uint64_t sector = 0;
    std::uint32_t sectors = 0;
};

// The writes of one epoch, in the order the guest made them; `data` holds
// their contents back to back.
struct EpochDiskWrites {
    std::vector<DiskWriteEntry> writes;
    std::vector<std::uint8_t> data;

    void clear() noexcept
    {
        writes.clear();
        data.clear();
    }
    [[nodiscard]] bool empty() const noexcept { return writes.empty(); }
};

// Thread-safe: the device records from the vCPU thread, the epoch loop takes.
class DiskWriteLog {
  public:
    // Starts (or restarts) logging with an empty log.
    void start();
    void stop();
    // Records a completed write of whole sectors; ignored while not logging.
    void record(std::uint64_t sector, std::span<const std::uint8_t> data);
    // Moves everything logged so far into `into` (which is cleared first).
    void take(EpochDiskWrites &into);

  private:
    std::mutex mutex_;
    bool logging_ = false;
    EpochDiskWrites pending_;
};

} // namespace understudy
