#include "drbd/epoch_disk_log.h"

#include <algorithm>
#include <stdexcept>

namespace understudy {

void DiskWriteLog::start(std::uint64_t disk_bytes)
{
    std::lock_guard lock(mutex_);
    disk_sectors_ = disk_bytes / kDiskSectorSize;
    const std::uint64_t regions = (disk_sectors_ + kDiskRegionSectors - 1) / kDiskRegionSectors;
    marked_.assign((regions + 63) / 64, 0);
    any_marked_ = false;
    incomplete_ = false;
    pending_.clear();
    high_water_ = 0;
    mode_ = Mode::regions;
}

void DiskWriteLog::stop()
{
    std::lock_guard lock(mutex_);
    pending_.clear();
    marked_.clear();
    marked_.shrink_to_fit();
    any_marked_ = false;
    mode_ = Mode::off;
}

void DiskWriteLog::mark(std::uint64_t sector, std::uint64_t sectors)
{
    if (sectors == 0 || sector >= disk_sectors_)
        return;
    const std::uint64_t last = std::min(sector + sectors, disk_sectors_) - 1;
    for (std::uint64_t r = sector / kDiskRegionSectors; r <= last / kDiskRegionSectors; ++r)
        marked_[r / 64] |= std::uint64_t{1} << (r % 64);
    any_marked_ = true;
}

void DiskWriteLog::record(std::uint64_t sector, std::span<const std::uint8_t> data)
{
    if (data.empty() || data.size() % kDiskSectorSize)
        throw std::invalid_argument("disk write log: a write of " + std::to_string(data.size()) +
                                    " bytes is not whole sectors");
    const std::uint64_t sectors = data.size() / kDiskSectorSize;
    std::lock_guard lock(mutex_);
    switch (mode_) {
    case Mode::off:
        return;
    case Mode::regions:
        mark(sector, sectors);
        return;
    case Mode::writes:
        break;
    }
    if (pending_.data.size() + data.size() > kDiskLogLimitBytes) {
        // Too much to hold: fall back to regions, which the disk still has.
        for (const auto &w : pending_.writes)
            mark(w.sector, w.sectors);
        mark(sector, sectors);
        pending_.clear();
        incomplete_ = true;
        mode_ = Mode::regions;
        return;
    }
    pending_.writes.push_back({sector, static_cast<std::uint32_t>(sectors)});
    pending_.data.insert(pending_.data.end(), data.begin(), data.end());
    high_water_ = std::max<std::uint64_t>(high_water_, pending_.data.size());
}

void DiskWriteLog::take_regions(DiskRegions &into, bool then_log)
{
    into.clear();
    std::lock_guard lock(mutex_);
    if (any_marked_) {
        const std::uint64_t regions = (disk_sectors_ + kDiskRegionSectors - 1) / kDiskRegionSectors;
        for (std::uint64_t r = 0; r < regions; ++r) {
            if (!(marked_[r / 64] & (std::uint64_t{1} << (r % 64))))
                continue;
            const std::uint64_t sector = r * kDiskRegionSectors;
            const auto sectors =
                static_cast<std::uint32_t>(std::min<std::uint64_t>(kDiskRegionSectors, disk_sectors_ - sector));
            if (!into.ranges.empty() && into.ranges.back().sector + into.ranges.back().sectors == sector &&
                into.ranges.back().sectors <= UINT32_MAX - sectors)
                into.ranges.back().sectors += sectors;
            else
                into.ranges.push_back({sector, sectors});
        }
        std::fill(marked_.begin(), marked_.end(), 0);
        any_marked_ = false;
    }
    if (then_log && mode_ != Mode::off) {
        if (mode_ == Mode::regions)
            pending_.clear();
        mode_ = Mode::writes;
        incomplete_ = false; // what fell back is in these regions
    }
}

void DiskWriteLog::take(EpochDiskWrites &into)
{
    into.clear();
    std::lock_guard lock(mutex_);
    std::swap(into, pending_);
    into.incomplete = incomplete_;
    incomplete_ = false;
}

std::uint64_t DiskWriteLog::held_bytes_high_water() const
{
    std::lock_guard lock(mutex_);
    return high_water_;
}

} // namespace understudy
