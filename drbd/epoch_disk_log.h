// The built-in disk replication of the kvm backend (ARCHITECTURE.md §7): the
// guest's disk writes are recorded per epoch on the primary, shipped with the
// epoch, and applied to the backup's replica image only when the epoch
// commits, so disk and memory always agree on the backup.
//
// During the initial sync the log only marks the regions writes touch (one
// bit per 64 KiB, like a resync bitmap): memory stays bounded whatever the
// guest writes, and the sync ships those regions again, read from the disk,
// round after round. Then it switches to recording every write with its
// data, for the checkpoints; more than 64 MiB waiting there and it falls back
// to marking regions, losing nothing (the sync ships them; a checkpoint that
// finds its writes incomplete ends the stream, and the resync copies them).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace understudy {

inline constexpr std::uint32_t kDiskSectorSize = 512;
inline constexpr std::uint32_t kDiskRegionSectors = 128;        // 64 KiB per bit while syncing
inline constexpr std::uint64_t kDiskLogLimitBytes = 64ull << 20; // writes waiting for one epoch, at most

struct DiskWriteEntry {
    std::uint64_t sector = 0;
    std::uint32_t sectors = 0;
};

// The writes of one epoch, in the order the guest made them; `data` holds
// their contents back to back.
struct EpochDiskWrites {
    std::vector<DiskWriteEntry> writes;
    std::vector<std::uint8_t> data;
    // Writes of this epoch were too many to hold: they are missing here.
    bool incomplete = false;

    void clear() noexcept
    {
        writes.clear();
        data.clear();
        incomplete = false;
    }
    [[nodiscard]] bool empty() const noexcept { return writes.empty(); }
};

// Ranges of sectors written since they were last copied, in disk order.
struct DiskRegions {
    std::vector<DiskWriteEntry> ranges;

    void clear() noexcept { ranges.clear(); }
    [[nodiscard]] bool empty() const noexcept { return ranges.empty(); }
    [[nodiscard]] std::uint64_t sectors() const noexcept
    {
        std::uint64_t n = 0;
        for (const auto &r : ranges)
            n += r.sectors;
        return n;
    }
};

// Thread-safe: the device records from the vCPU thread, the epoch loop takes.
class DiskWriteLog {
  public:
    // Starts (or restarts) marking the regions written, for the initial
    // sync of a disk of `disk_bytes`.
    void start(std::uint64_t disk_bytes);
    void stop();
    // Records a completed write of whole sectors; ignored while stopped.
    void record(std::uint64_t sector, std::span<const std::uint8_t> data);
    // Moves the regions marked so far into `into` (cleared first). With
    // `then_log`, every write from now on is recorded with its data (the
    // switch and the taking happen at one moment: no write falls between).
    void take_regions(DiskRegions &into, bool then_log);
    // Moves the writes recorded so far into `into` (which is cleared first);
    // `into.incomplete` if some fell back to regions since the last take.
    void take(EpochDiskWrites &into);
    // The most write data held at once since start().
    [[nodiscard]] std::uint64_t held_bytes_high_water() const;

  private:
    enum class Mode { off, regions, writes };
    void mark(std::uint64_t sector, std::uint64_t sectors); // with mutex_ held

    mutable std::mutex mutex_;
    Mode mode_ = Mode::off;
    std::uint64_t disk_sectors_ = 0;
    std::vector<std::uint64_t> marked_; // a bit per region
    bool any_marked_ = false;
    bool incomplete_ = false;
    EpochDiskWrites pending_;
    std::uint64_t high_water_ = 0;
};

} // namespace understudy
