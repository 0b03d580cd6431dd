#include "drbd/epoch_disk_log.h"

#include <stdexcept>

namespace understudy {

void DiskWriteLog::start()
{
    std::lock_guard lock(mutex_);
    pending_.clear();
    logging_ = true;
}

void DiskWriteLog::stop()
{
    std::lock_guard lock(mutex_);
    pending_.clear();
    logging_ = false;
}

void DiskWriteLog::record(std::uint64_t sector, std::span<const std::uint8_t> data)
{
    if (data.empty() || data.size() % kDiskSectorSize)
        throw std::invalid_argument("disk write log: a write of " + std::to_string(data.size()) +
                                    " bytes is not whole sectors");
    std::lock_guard lock(mutex_);
    if (!logging_)
        return;
    pending_.writes.push_back({sector, static_cast<std::uint32_t>(data.size() / kDiskSectorSize)});
    pending_.data.insert(pending_.data.end(), data.begin(), data.end());
}

void DiskWriteLog::take(EpochDiskWrites &into)
{
    into.clear();
    std::lock_guard lock(mutex_);
    std::swap(into, pending_);
}

} // namespace understudy
