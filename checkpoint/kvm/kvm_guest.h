// A guest run by the built-in VMM: KVM VM + guest RAM + vCPU thread + the
// paravirtual devices. Implements the engine's Guest interface, and can be
// saved to a Snapshot and restored from one into a new VM.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "checkpoint/guest.h"
#include "checkpoint/kvm/devices/block_device.h"
#include "checkpoint/kvm/devices/clock_device.h"
#include "checkpoint/kvm/devices/console_device.h"
#include "checkpoint/kvm/devices/net_device.h"
#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/kvm/hypercall_table.h"
#include "checkpoint/kvm/kvm_guest_config.h"
#include "checkpoint/kvm/kvm_vm.h"
#include "checkpoint/kvm/vcpu_runner.h"

namespace understudy::kvm {

// Everything needed to rebuild a paused guest in a new VM.
struct Snapshot {
    std::vector<std::uint8_t> memory;
    proto::CpuState cpu;
    proto::DeviceState devices;
};

// Version of what DeviceState holds for this backend.
inline constexpr std::uint32_t kKvmDeviceStateFormat = 1;

class KvmGuest final : public Guest {
  public:
    // Loads the kernel, builds the boot environment and starts the vCPU.
    [[nodiscard]] static std::unique_ptr<KvmGuest> boot(KvmGuestConfig config);
    // Builds a new VM from `snapshot`, held paused until resume().
    [[nodiscard]] static std::unique_ptr<KvmGuest> restore(KvmGuestConfig config, const Snapshot &snapshot);
    [[nodiscard]] static std::unique_ptr<KvmGuest> restore(KvmGuestConfig config, std::span<const std::uint8_t> memory,
                                                           const proto::CpuState &cpu,
                                                           const proto::DeviceState &devices);
    ~KvmGuest() override;

    // Precondition: paused.
    [[nodiscard]] Snapshot snapshot() const;

    const std::string &name() const override { return config_.name; }
    std::uint64_t memory_size() const override { return memory_.size(); }
    void pause() override;
    void resume() override;
    void enable_dirty_log() override;
    void harvest_dirty(DirtyBitmap &into) override;
    void read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const override;
    proto::CpuState save_cpu() const override;
    proto::DeviceState save_devices() const override;
    std::uint64_t disk_bytes() const override { return block_.sectors() * US_SECTOR_SIZE; }
    void start_disk_log() override { block_.write_log().start(disk_bytes()); }
    void stop_disk_log() override { block_.write_log().stop(); }
    void take_disk_regions(DiskRegions &into, bool then_log) override { block_.write_log().take_regions(into, then_log); }
    void take_disk_writes(EpochDiskWrites &into) override;
    void read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const override { block_.read(sector, into); }

    [[nodiscard]] bool paused() const { return runner_.paused(); }
    // Stops the vCPU for good (the memory stays readable).
    void stop() { runner_.stop(); }
    void stop_for_good() override { stop(); }
    [[nodiscard]] std::optional<VmStop> stopped() const { return runner_.stopped(); }
    std::optional<VmStop> wait_for(std::chrono::milliseconds timeout) const { return runner_.wait_for(timeout); }
    [[nodiscard]] std::string console_output() const { return console_.recent_output(); }
    [[nodiscard]] const NetCounters &net_counters() const { return net_.counters(); }
    // Output commit: the NIC's outgoing frames go to `route` (empty: to the
    // TAP); `transmit` sends one frame to the TAP now.
    void set_egress_route(NetDevice::EgressRoute route) { net_.set_egress_route(std::move(route)); }
    bool transmit(std::span<const std::uint8_t> frame) { return net_.transmit(frame); }
    [[nodiscard]] const GuestMemory &memory() const { return memory_; }

  private:
    explicit KvmGuest(KvmGuestConfig config);
    void require_paused(const char *what) const;

    KvmGuestConfig config_;
    // Declaration order is teardown order in reverse: the vCPU thread stops
    // before the devices, the VM and the memory it uses go away.
    GuestMemory memory_;
    KvmVm vm_;
    HypercallTable hypercalls_;
    ConsoleDevice console_;
    ClockDevice clock_;
    NetDevice net_;
    BlockDevice block_;
    VcpuRunner runner_;
};

} // namespace understudy::kvm
