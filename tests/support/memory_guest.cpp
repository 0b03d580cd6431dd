#include "tests/support/memory_guest.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace understudy::testing {

MemoryGuest::MemoryGuest(std::string name, std::uint64_t memory_bytes, std::uint64_t disk_bytes)
    : name_(std::move(name)), ram_(memory_bytes), disk_(disk_bytes), dirty_(memory_bytes / kPageSize)
{
    // Recognisable content, different on every page.
    for (std::uint64_t p = 0; p < memory_bytes / kPageSize; ++p)
        for (std::uint64_t i = 0; i < kPageSize; i += 512)
            std::memcpy(ram_.data() + p * kPageSize + i, &p, sizeof p);
}

MemoryGuest::~MemoryGuest()
{
    stop_workload();
}

void MemoryGuest::start_workload(std::uint32_t pages_per_step, std::chrono::microseconds period)
{
    workload_ = std::thread([this, pages_per_step, period] {
        std::mt19937_64 rng(42);
        for (;;) {
            {
                std::unique_lock lock(run_mutex_);
                run_cv_.wait(lock, [&] { return !paused_ || stopping_; });
                if (stopping_)
                    return;
                step(rng, pages_per_step);
            }
            std::this_thread::sleep_for(period);
        }
    });
}

void MemoryGuest::stop_workload()
{
    {
        std::lock_guard lock(run_mutex_);
        stopping_ = true;
    }
    run_cv_.notify_all();
    if (workload_.joinable())
        workload_.join();
}

void MemoryGuest::step(std::mt19937_64 &rng, std::uint32_t pages)
{
    const std::uint64_t value = ++counter_;
    std::uint8_t bytes[8];
    std::memcpy(bytes, &value, sizeof bytes);
    write(0, bytes);
    const std::uint64_t n = ram_.size() / kPageSize;
    for (std::uint32_t i = 0; i < pages; ++i) {
        const std::uint64_t page = 1 + rng() % (n - 1);
        write(page * kPageSize + (rng() % (kPageSize / 8)) * 8, bytes);
    }
    if (!disk_.empty()) {
        std::uint8_t sector[512] = {};
        std::memcpy(sector, &value, sizeof value);
        std::memcpy(disk_.data(), sector, sizeof sector);
        log_.record(0, sector);
    }
    constexpr std::uint64_t kPiece = 64 << 10;
    const std::uint64_t pieces = disk_hot_bytes_ / kPiece;
    for (std::uint64_t done = 0; pieces > 1 && done < disk_bytes_per_step_; done += kPiece) {
        const std::uint64_t at = (1 + rng() % (pieces - 1)) * kPiece;
        std::uint8_t *p = disk_.data() + at;
        std::memset(p, static_cast<int>(value & 0xff), kPiece);
        std::memcpy(p, &value, sizeof value);
        log_.record(at / 512, {p, kPiece});
    }
}

void MemoryGuest::set_disk_workload(std::uint64_t bytes_per_step, std::uint64_t hot_bytes)
{
    disk_bytes_per_step_ = bytes_per_step;
    disk_hot_bytes_ = std::min<std::uint64_t>(hot_bytes, disk_.size());
}

void MemoryGuest::write(std::uint64_t gpa, std::span<const std::uint8_t> bytes)
{
    std::memcpy(ram_.data() + gpa, bytes.data(), bytes.size());
    dirty_.set_range(gpa, bytes.size());
}

void MemoryGuest::pause()
{
    run_mutex_.lock();
    paused_ = true;
    run_mutex_.unlock();
}

void MemoryGuest::resume()
{
    {
        std::lock_guard lock(run_mutex_);
        paused_ = false;
    }
    run_cv_.notify_all();
}

void MemoryGuest::enable_dirty_log()
{
    dirty_.clear();
}

void MemoryGuest::harvest_dirty(DirtyBitmap &into)
{
    dirty_.drain_into(into);
}

void MemoryGuest::read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const
{
    // Never in the middle of a workload step: this RAM is plain C++ memory,
    // where a read racing a write is undefined (ThreadSanitizer says so).
    std::lock_guard lock(run_mutex_);
    for (std::size_t i = 0; i < pfns.size(); ++i) {
        if (pfns[i].value >= ram_.size() / kPageSize)
            throw std::out_of_range("memory guest: page past the end");
        std::memcpy(dst.data() + i * kPageSize, ram_.data() + pfns[i].address(), kPageSize);
    }
}

proto::CpuState MemoryGuest::save_cpu() const
{
    proto::CpuState s;
    s.set_format(999); // not a real backend's format
    const std::uint64_t value = counter_.load();
    s.mutable_kvm()->add_vcpus()->set_regs(&value, sizeof value);
    return s;
}

proto::DeviceState MemoryGuest::save_devices() const
{
    proto::DeviceState s;
    s.set_format(999);
    s.mutable_block()->set_sectors(disk_.size() / 512);
    return s;
}

void MemoryGuest::read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const
{
    if (sector * 512 + into.size() > disk_.size())
        throw std::out_of_range("memory guest: disk read past the end");
    std::lock_guard lock(run_mutex_); // as read_pages
    std::memcpy(into.data(), disk_.data() + sector * 512, into.size());
}

std::uint64_t stored_counter(std::span<const std::uint8_t> bytes)
{
    std::uint64_t v = 0;
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
}

std::uint64_t cpu_counter(const proto::CpuState &cpu)
{
    const auto &regs = cpu.kvm().vcpus(0).regs();
    std::uint64_t v = 0;
    std::memcpy(&v, regs.data(), std::min(regs.size(), sizeof v));
    return v;
}

} // namespace understudy::testing
