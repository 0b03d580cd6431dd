// Guest monotonic time. It continues from the saved value when a VM is
// restored, so the guest never sees its clock go backwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/kvm/hypercall_table.h"
#include "proto/vm_state.pb.h"

namespace understudy::kvm {

class ClockDevice {
  public:
    ClockDevice();

    void attach(HypercallTable &table, GuestMemory &memory);
    [[nodiscard]] std::uint64_t now_ns() const;
    [[nodiscard]] proto::ClockState save() const;
    void restore(const proto::ClockState &state);

  private:
    using Clock = std::chrono::steady_clock;
    mutable std::mutex mutex_;
    std::uint64_t origin_guest_ns_ = 0;
    Clock::time_point origin_host_;
    mutable std::uint64_t last_ns_ = 0;
};

} // namespace understudy::kvm
