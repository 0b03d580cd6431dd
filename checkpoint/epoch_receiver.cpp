#include "checkpoint/epoch_receiver.h"

#include <algorithm>
#include <cstring>

namespace understudy {

namespace {

std::string where(const RecordReader &reader, Epoch epoch)
{
    return "stream from " + reader.peer() + ", epoch " + std::to_string(epoch.value) + ": ";
}

} // namespace

EpochReceiver::EpochReceiver(const StandbyGuest &standby, PageCodecSettings codec)
    : standby_(standby), codec_(codec), seen_(standby.pages())
{
}

EpochReceiver::Outcome EpochReceiver::receive(RecordReader &reader, Epoch expected, ReceivedEpoch &into,
                                              proto::Goodbye *goodbye)
{
    into.clear();
    const std::uint64_t start_bytes = reader.bytes_read();
    const bool digest = reader.needs_digest();
    RecordType type;
    for (;;) {
        if (digest)
            reader.start_digest();
        type = reader.next();
        if (type != RecordType::heartbeat)
            break;
    }
    if (type == RecordType::goodbye) {
        proto::Goodbye bye;
        reader.parse(bye, "Goodbye");
        bye.mutable_reason()->resize(std::min<std::size_t>(bye.reason().size(), 200));
        if (goodbye)
            *goodbye = std::move(bye);
        return Outcome::goodbye;
    }
    if (type != RecordType::epoch_begin)
        throw StreamError(where(reader, expected) + "expected EpochBegin, got " + record_name(type));
    proto::EpochBegin begin;
    reader.parse(begin, "EpochBegin");
    if (begin.epoch() != expected.value)
        throw StreamError(where(reader, expected) + "EpochBegin says epoch " + std::to_string(begin.epoch()) +
                          (begin.epoch() < expected.value ? " (an old epoch replayed)" : " (epochs skipped)"));
    if (begin.kind() != proto::EpochBegin::PRECOPY && begin.kind() != proto::EpochBegin::CHECKPOINT)
        throw StreamError(where(reader, expected) + "unknown epoch kind " + std::to_string(begin.kind()));
    into.epoch = expected;
    into.kind = begin.kind();
    seen_.clear();

    for (;;) {
        type = reader.next();
        switch (type) {
        case RecordType::page_batch:
            read_page_batch(reader, into);
            continue;
        case RecordType::disk_writes:
            read_disk_writes(reader, into);
            continue;
        case RecordType::cpu: {
            if (into.cpu)
                throw StreamError(where(reader, expected) + "a second CpuState record");
            proto::CpuRecord record;
            reader.parse(record, "CpuState");
            if (auto problem = standby_.cpu_problem(record.cpu()); !problem.empty())
                throw StreamError(where(reader, expected) + "CpuState refused: " + problem);
            into.cpu = std::move(*record.mutable_cpu());
            continue;
        }
        case RecordType::devices: {
            if (into.devices)
                throw StreamError(where(reader, expected) + "a second DeviceState record");
            proto::DeviceRecord record;
            reader.parse(record, "DeviceState");
            if (auto problem = standby_.devices_problem(record.devices()); !problem.empty())
                throw StreamError(where(reader, expected) + "DeviceState refused: " + problem);
            into.devices = std::move(*record.mutable_devices());
            continue;
        }
        case RecordType::epoch_end:
            break;
        default:
            throw StreamError(where(reader, expected) + "unexpected " + record_name(type) + " inside an epoch");
        }
        break;
    }
    const Sha256Digest sha = digest ? reader.finish_digest() : Sha256Digest{};
    proto::EpochEnd end;
    reader.parse(end, "EpochEnd");
    if (end.epoch() != expected.value)
        throw StreamError(where(reader, expected) + "EpochEnd says epoch " + std::to_string(end.epoch()));
    if (end.pages() != into.pfns.size() || end.disk_writes() != into.disk.writes.size())
        throw StreamError(where(reader, expected) + "EpochEnd counts " + std::to_string(end.pages()) + " pages and " +
                          std::to_string(end.disk_writes()) + " disk writes, received " +
                          std::to_string(into.pfns.size()) + " and " + std::to_string(into.disk.writes.size()));
    if (!digest && !end.sha256().empty())
        throw StreamError(where(reader, expected) + "EpochEnd carries a SHA-256 on a TLS stream, which has none");
    if (digest && (end.sha256().size() != sha.size() || std::memcmp(sha.data(), end.sha256().data(), sha.size()) != 0))
        throw StreamError(where(reader, expected) + "SHA-256 of the epoch does not match EpochEnd (corrupt epoch)");
    if (into.kind == proto::EpochBegin::CHECKPOINT && (!into.cpu || !into.devices))
        throw StreamError(where(reader, expected) + "a checkpoint epoch without CPU and device state");
    into.wire_bytes = reader.bytes_read() - start_bytes;
    return Outcome::epoch;
}

void EpochReceiver::read_page_batch(RecordReader &reader, ReceivedEpoch &into)
{
    proto::PageBatch batch;
    reader.parse(batch, "PageBatch");
    const auto n = static_cast<std::uint64_t>(batch.pfns_size());
    const std::string at = where(reader, into.epoch) + "page batch: ";
    if (n == 0 || n > kMaxPagesPerBatch)
        throw StreamError(at + std::to_string(n) + " pages (1 to " + std::to_string(kMaxPagesPerBatch) + " allowed)");
    if (batch.payload_bytes() > kMaxPayloadBytes || batch.payload_bytes() > n * kPageSize)
        throw StreamError(at + "payload of " + std::to_string(batch.payload_bytes()) + " bytes for " +
                          std::to_string(n) + " pages");
    const bool compressed = batch.encoding() == proto::PageBatch::LZ4 || batch.encoding() == proto::PageBatch::ZSTD;
    if (batch.encoding() != proto::PageBatch::RAW && !(compressed && batch.encoding() == codec_.compressor))
        throw StreamError(at + "encoding " + std::to_string(batch.encoding()) + " was not agreed");
    if (batch.xor_delta() && !(codec_.xor_delta && compressed))
        throw StreamError(at + "XOR delta was not agreed");
    const std::uint64_t pages = standby_.pages();
    std::uint64_t previous = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        const std::uint64_t pfn = batch.pfns(static_cast<int>(i));
        if (pfn >= pages)
            throw StreamError(at + "page " + std::to_string(pfn) + " is past the end of the guest's " +
                              std::to_string(pages) + " pages");
        if (i > 0 && pfn <= previous)
            throw StreamError(at + "page numbers are not strictly increasing");
        if (seen_.test(Pfn{pfn}))
            throw StreamError(at + "page " + std::to_string(pfn) + " sent twice in one epoch");
        previous = pfn;
    }
    const std::size_t offset = into.pages.size();
    into.pages.resize(offset + n * kPageSize);
    std::span<std::uint8_t> out(into.pages.data() + offset, n * kPageSize);
    if (batch.encoding() == proto::PageBatch::RAW) {
        // Straight into the side buffer: no staging copy for raw pages.
        if (batch.payload_bytes() != out.size())
            throw StreamError(at + "raw payload of " + std::to_string(batch.payload_bytes()) + " bytes for " +
                              std::to_string(n) + " pages");
        reader.read_payload(out);
    } else {
        payload_.resize(batch.payload_bytes());
        reader.read_payload(payload_);
    }
    if (batch.xor_delta())
        for (std::uint64_t i = 0; i < n; ++i)
            std::copy_n(standby_.page(Pfn{batch.pfns(static_cast<int>(i))}).data(), kPageSize,
                        out.data() + i * kPageSize);
    if (batch.encoding() != proto::PageBatch::RAW) {
        try {
            decoder_.decode(batch.encoding(), batch.xor_delta(), payload_, out);
        } catch (const StreamError &e) {
            throw StreamError(at + e.what());
        }
    }
    for (std::uint64_t i = 0; i < n; ++i) {
        Pfn pfn{batch.pfns(static_cast<int>(i))};
        seen_.set(pfn);
        into.pfns.push_back(pfn);
    }
}

void EpochReceiver::read_disk_writes(RecordReader &reader, ReceivedEpoch &into)
{
    proto::DiskWrites record;
    reader.parse(record, "DiskWrites");
    const std::string at = where(reader, into.epoch) + "disk writes: ";
    const auto n = static_cast<std::uint64_t>(record.writes_size());
    if (n == 0 || n > kMaxDiskWritesPerRecord)
        throw StreamError(at + std::to_string(n) + " writes (1 to " + std::to_string(kMaxDiskWritesPerRecord) +
                          " allowed)");
    const std::uint64_t sectors = standby_.disk_bytes() / kSectorSize;
    std::uint64_t total = 0;
    for (const auto &w : record.writes()) {
        if (w.sectors() == 0 || w.sector() > sectors || w.sectors() > sectors - w.sector())
            throw StreamError(at + "sectors " + std::to_string(w.sector()) + "+" + std::to_string(w.sectors()) +
                              " are outside the " + std::to_string(sectors) + "-sector disk");
        total += std::uint64_t{w.sectors()} * kSectorSize;
        if (total > kMaxPayloadBytes)
            throw StreamError(at + "more than " + std::to_string(kMaxPayloadBytes) + " bytes in one record");
    }
    if (into.disk.data.size() + total > kMaxDiskBytesPerEpoch)
        throw StreamError(at + "more than " + std::to_string(kMaxDiskBytesPerEpoch) + " bytes of disk writes in one epoch");
    if (record.payload_bytes() != total)
        throw StreamError(at + "payload of " + std::to_string(record.payload_bytes()) + " bytes, the writes need " +
                          std::to_string(total));
    const std::size_t offset = into.disk.data.size();
    into.disk.data.resize(offset + total);
    reader.read_payload({into.disk.data.data() + offset, total});
    for (const auto &w : record.writes())
        into.disk.writes.push_back({w.sector(), w.sectors()});
}

} // namespace understudy
