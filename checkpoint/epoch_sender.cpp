#include "checkpoint/epoch_sender.h"

#include <sys/mman.h>

#include <cstring>
#include <system_error>

namespace understudy {

EpochSender::EpochSender(PageCodecSettings codec, std::uint64_t memory_size)
    : encoder_(codec), xor_delta_(codec.xor_delta), memory_size_(memory_size)
{
    if (!xor_delta_)
        return;
    // Starts as zeros, like the backup's fresh standby copy.
    void *p = mmap(nullptr, memory_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        throw std::system_error(errno, std::generic_category(), "reserve the XOR delta copy of guest memory");
    sent_ = static_cast<std::uint8_t *>(p);
}

EpochSender::~EpochSender()
{
    if (sent_)
        munmap(sent_, memory_size_);
}

void EpochSender::send(const StagingBuffer &epoch, RecordWriter &writer, SendCounters &counters)
{
    const bool digest = writer.needs_digest();
    if (digest)
        writer.start_digest();
    proto::EpochBegin begin;
    begin.set_epoch(epoch.epoch.value);
    begin.set_kind(epoch.kind);
    writer.write(RecordType::epoch_begin, begin);

    proto::PageBatch batch;
    const auto pages = epoch.pages();
    for (std::size_t first = 0; first < epoch.pfns.size(); first += kMaxPagesPerBatch) {
        const std::size_t n = std::min<std::size_t>(kMaxPagesPerBatch, epoch.pfns.size() - first);
        auto data = pages.subspan(first * kPageSize, n * kPageSize);
        std::span<const std::uint8_t> previous;
        if (xor_delta_) {
            previous_.resize(n * kPageSize);
            for (std::size_t i = 0; i < n; ++i)
                std::memcpy(previous_.data() + i * kPageSize, sent_ + epoch.pfns[first + i].address(), kPageSize);
            previous = previous_;
        }
        auto encoded = encoder_.encode(data, previous);
        batch.Clear();
        for (std::size_t i = 0; i < n; ++i)
            batch.add_pfns(epoch.pfns[first + i].value);
        batch.set_encoding(encoded.encoding);
        batch.set_xor_delta(encoded.xor_delta);
        batch.set_payload_bytes(static_cast<std::uint32_t>(encoded.payload.size()));
        writer.write(RecordType::page_batch, batch, encoded.payload);
        counters.page_bytes += data.size();
        counters.payload_bytes += encoded.payload.size();
        if (xor_delta_)
            for (std::size_t i = 0; i < n; ++i)
                std::memcpy(sent_ + epoch.pfns[first + i].address(), data.data() + i * kPageSize, kPageSize);
    }
    if (epoch.has_state) {
        proto::CpuRecord cpu;
        *cpu.mutable_cpu() = epoch.cpu;
        writer.write(RecordType::cpu, cpu);
        proto::DeviceRecord devices;
        *devices.mutable_devices() = epoch.devices;
        writer.write(RecordType::devices, devices);
    }
    // Disk writes in order, cut into records within the limits.
    proto::DiskWrites disk;
    std::size_t offset = 0, record_start = 0;
    std::uint64_t record_bytes = 0;
    auto flush_disk = [&] {
        if (disk.writes_size() == 0)
            return;
        disk.set_payload_bytes(static_cast<std::uint32_t>(record_bytes));
        writer.write(RecordType::disk_writes, disk, {epoch.disk.data.data() + record_start, record_bytes});
        disk.Clear();
        record_start = offset;
        record_bytes = 0;
    };
    for (const auto &w : epoch.disk.writes) {
        const std::uint64_t bytes = std::uint64_t{w.sectors} * kSectorSize;
        if (record_bytes + bytes > kMaxPayloadBytes || disk.writes_size() == static_cast<int>(kMaxDiskWritesPerRecord))
            flush_disk();
        auto *entry = disk.add_writes();
        entry->set_sector(w.sector);
        entry->set_sectors(w.sectors);
        record_bytes += bytes;
        offset += bytes;
    }
    flush_disk();

    proto::EpochEnd end;
    end.set_epoch(epoch.epoch.value);
    end.set_pages(epoch.pfns.size());
    end.set_disk_writes(epoch.disk.writes.size());
    if (digest) {
        const auto sha = writer.finish_digest();
        end.set_sha256(sha.data(), sha.size());
    }
    writer.write(RecordType::epoch_end, end);
    writer.flush();
}

} // namespace understudy
