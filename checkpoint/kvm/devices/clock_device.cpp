#include "checkpoint/kvm/devices/clock_device.h"

namespace understudy::kvm {

ClockDevice::ClockDevice() : origin_host_(Clock::now()) {}

void ClockDevice::attach(HypercallTable &table, GuestMemory &memory)
{
    table.add(US_HC_CLOCK, [this, &memory](std::uint64_t gpa) {
        us_hc_clock args{now_ns()};
        memory.write_struct(gpa, args, "clock arguments");
    });
}

std::uint64_t ClockDevice::now_ns() const
{
    std::lock_guard lock(mutex_);
    auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - origin_host_).count();
    last_ns_ = std::max(last_ns_, origin_guest_ns_ + static_cast<std::uint64_t>(elapsed));
    return last_ns_;
}

proto::ClockState ClockDevice::save() const
{
    proto::ClockState s;
    s.set_guest_ns(now_ns());
    return s;
}

void ClockDevice::restore(const proto::ClockState &state)
{
    std::lock_guard lock(mutex_);
    origin_guest_ns_ = state.guest_ns();
    origin_host_ = Clock::now();
    last_ns_ = state.guest_ns();
}

} // namespace understudy::kvm
