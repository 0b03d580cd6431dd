// The backup's standby copy of a kvm-backend guest: StandbyImage plus what
// it takes to run it here at failover (the local TAP, console, replica disk).
#pragma once

#include "checkpoint/kvm/kvm_guest_config.h"
#include "checkpoint/standby_image.h"

namespace understudy::kvm {

class KvmStandby final : public StandbyImage {
  public:
    // `local`: how to run the guest on this host (name, TAP, console); its
    // memory size and disk come from the stream.
    // `tap`: the TAP to attach at activation ("" for none); not opened before.
    KvmStandby(KvmGuestConfig local, std::string tap, std::uint64_t memory_size, std::uint64_t disk_bytes,
               const std::filesystem::path &replica);

    std::string cpu_problem(const proto::CpuState &cpu) const override
    {
        return cpu.has_kvm() ? "" : "not the state of a kvm guest";
    }

    // Builds a VM from the committed state and starts it.
    std::unique_ptr<Guest> activate() override;

  private:
    KvmGuestConfig local_;
    std::string tap_;
};

} // namespace understudy::kvm
