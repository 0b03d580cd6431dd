#include "checkpoint/staging_buffer.h"

#include <sys/mman.h>

#include <stdexcept>
#include <system_error>

namespace understudy {

StagingBuffer::StagingBuffer(std::uint64_t memory_size) : capacity_(memory_size)
{
    void *p = mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        throw std::system_error(errno, std::generic_category(),
                                "reserve a staging buffer of " + std::to_string(capacity_) + " bytes");
    area_ = static_cast<std::uint8_t *>(p);
    pfns.reserve(capacity_ / kPageSize);
}

StagingBuffer::~StagingBuffer()
{
    munmap(area_, capacity_);
}

void StagingBuffer::reset(Epoch e, proto::EpochBegin::Kind k)
{
    epoch = e;
    kind = k;
    pfns.clear();
    has_state = false;
    disk.clear();
    pause_time = {};
}

std::span<std::uint8_t> StagingBuffer::page_room(std::size_t count)
{
    const std::uint64_t used = pfns.size() * kPageSize;
    if (count * kPageSize > capacity_ - used)
        throw std::length_error("staging buffer: " + std::to_string(count) + " more pages do not fit");
    return {area_ + used, count * kPageSize};
}

} // namespace understudy
