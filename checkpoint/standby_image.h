// A StandbyGuest held in this process: guest RAM in anonymous memory, the
// last CPU and device state, and a replica disk image file. Backends derive
// from it to add activate(); tests use it as it is.
#pragma once

#include <filesystem>
#include <optional>

#include "checkpoint/standby_guest.h"
#include "checkpoint/unique_fd.h"

namespace understudy {

class StandbyImage : public StandbyGuest {
  public:
    // `replica`: where the committed disk copy lives; unused when disk_bytes
    // is 0. Until take_place(), this copy's disk is a file of its own beside
    // it (REPLICA.syncing.N), so a resync never touches the committed copy's
    // disk; take_place() renames it onto `replica`. A copy destroyed before
    // that removes its file.
    // Memory is committed up front (all of it is RAM the first copy fills)
    // unless `sparse`: a Xen HVM/PVH domain's frames run past its RAM to
    // Xen's special pages below 4 GiB, and only what is written is backed.
    enum class Memory { committed, sparse };
    StandbyImage(std::string name, std::uint64_t memory_size, std::uint64_t disk_bytes,
                 const std::filesystem::path &replica, Memory memory = Memory::committed);
    ~StandbyImage() override;
    StandbyImage(const StandbyImage &) = delete;
    StandbyImage &operator=(const StandbyImage &) = delete;

    std::uint64_t memory_size() const override { return memory_size_; }
    std::span<const std::uint8_t> page(Pfn pfn) const override;
    void write_pages(std::span<const Pfn> pfns, std::span<const std::uint8_t> data) override;
    void load_cpu(proto::CpuState cpu) override { cpu_ = std::move(cpu); }
    void load_devices(proto::DeviceState devices) override { devices_ = std::move(devices); }
    std::uint64_t disk_bytes() const override { return disk_bytes_; }
    void write_disk(std::uint64_t sector, std::span<const std::uint8_t> data) override;
    void read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const override;
    void sync_disk() override;
    void take_place() override;
    std::unique_ptr<Guest> activate() override;

    [[nodiscard]] const std::string &name() const noexcept { return name_; }
    [[nodiscard]] std::span<const std::uint8_t> memory() const noexcept { return {base_, memory_size_}; }
    [[nodiscard]] const std::optional<proto::CpuState> &cpu() const noexcept { return cpu_; }
    [[nodiscard]] const std::optional<proto::DeviceState> &devices() const noexcept { return devices_; }
    // Where this copy's disk is now: beside the committed one until
    // take_place(), the committed path after.
    [[nodiscard]] const std::filesystem::path &replica_path() const noexcept { return disk_path_; }

  private:
    std::string name_;
    std::uint64_t memory_size_;
    std::uint8_t *base_ = nullptr;
    std::uint64_t disk_bytes_;
    std::filesystem::path replica_;   // the committed copy's disk
    std::filesystem::path disk_path_; // this copy's: beside it until take_place()
    bool placed_ = false;
    UniqueFd disk_;
    std::optional<proto::CpuState> cpu_;
    std::optional<proto::DeviceState> devices_;
};

} // namespace understudy
