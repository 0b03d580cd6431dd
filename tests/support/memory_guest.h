// TEST DOUBLE of a Guest, for unit tests and benchmarks of the engine where
// no hypervisor is needed: RAM is host memory, "CPU state" is a counter, and
// a workload thread keeps writing while the guest is not paused. Every step of
// the workload bumps one counter and writes it to page 0, to the CPU state and
// to disk sector 0, so a consistent copy has the same value in all three.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "checkpoint/guest.h"

namespace understudy::testing {

class MemoryGuest final : public Guest {
  public:
    MemoryGuest(std::string name, std::uint64_t memory_bytes, std::uint64_t disk_bytes);
    ~MemoryGuest() override;

    // Starts writing `pages_per_step` random pages every `period`.
    void start_workload(std::uint32_t pages_per_step, std::chrono::microseconds period);
    // Before start_workload(): each step also writes `bytes_per_step` of the
    // disk, in 64 KiB writes at random places in its first `hot_bytes` (a
    // busy database's hot set), after sector 0.
    void set_disk_workload(std::uint64_t bytes_per_step, std::uint64_t hot_bytes);
    // The most disk write data its log held at once since it started.
    [[nodiscard]] std::uint64_t disk_log_high_water() const { return log_.held_bytes_high_water(); }
    void stop_workload();
    void stop_for_good() override { stop_workload(); }
    [[nodiscard]] std::uint64_t counter() const { return counter_.load(); }
    [[nodiscard]] std::span<const std::uint8_t> memory() const { return ram_; }
    [[nodiscard]] std::span<const std::uint8_t> disk() const { return disk_; }
    // Writes into RAM as the guest would (marks the pages dirty).
    void write(std::uint64_t gpa, std::span<const std::uint8_t> bytes);

    const std::string &name() const override { return name_; }
    std::uint64_t memory_size() const override { return ram_.size(); }
    void pause() override;
    void resume() override;
    void enable_dirty_log() override;
    void harvest_dirty(DirtyBitmap &into) override;
    void read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const override;
    proto::CpuState save_cpu() const override;
    proto::DeviceState save_devices() const override;
    std::uint64_t disk_bytes() const override { return disk_.size(); }
    void start_disk_log() override { log_.start(disk_.size()); }
    void stop_disk_log() override { log_.stop(); }
    void take_disk_regions(DiskRegions &into, bool then_log) override { log_.take_regions(into, then_log); }
    void take_disk_writes(EpochDiskWrites &into) override { log_.take(into); }
    void read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const override;

  private:
    void step(std::mt19937_64 &rng, std::uint32_t pages);

    std::string name_;
    std::vector<std::uint8_t> ram_;
    std::vector<std::uint8_t> disk_;
    DirtyBitmap dirty_;
    DiskWriteLog log_;
    std::atomic<std::uint64_t> counter_{0};
    std::uint64_t disk_bytes_per_step_ = 0, disk_hot_bytes_ = 0;
    mutable std::mutex run_mutex_; // held by the workload for each step
    std::condition_variable run_cv_;
    bool paused_ = false, stopping_ = false;
    std::thread workload_;
};

// Reads the counter stored in the first 8 bytes of `bytes`.
[[nodiscard]] std::uint64_t stored_counter(std::span<const std::uint8_t> bytes);
// The counter inside a CpuState saved by MemoryGuest.
[[nodiscard]] std::uint64_t cpu_counter(const proto::CpuState &cpu);

} // namespace understudy::testing
