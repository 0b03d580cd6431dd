// The guest NIC: send a frame, receive a frame, wait for a frame with a
// timeout. Backed by a TAP device; without one, frames are dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "checkpoint/kvm/devices/tap_device.h"
#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/kvm/hypercall_table.h"
#include "proto/vm_state.pb.h"

namespace understudy::kvm {

struct NetCounters {
    std::atomic<std::uint64_t> frames_sent{0};
    std::atomic<std::uint64_t> frames_received{0};
    std::atomic<std::uint64_t> frames_dropped{0}; // host queue full, or frame larger than the guest's buffer
};

class NetDevice {
  public:
    // Where the guest's outgoing frames go instead of straight to the TAP
    // (output commit holds them there until their epoch is acked).
    using EgressRoute = std::function<void(std::span<const std::uint8_t>)>;

    NetDevice(std::shared_ptr<TapDevice> tap, std::array<std::uint8_t, 6> mac);

    // From any thread; an empty route sends frames straight out again.
    void set_egress_route(EgressRoute route);
    // Writes one frame to the TAP now; false if it could not (counted).
    bool transmit(std::span<const std::uint8_t> frame);
    // The VM was restored from a checkpoint: the guest's next poll says so
    // (US_POLL_RESTORED) at once, so it can resend what its peers lack.
    void note_restored() noexcept { restored_ = true; }

    // wake_fd: readable when the VMM needs the vCPU back from a wait.
    void attach(HypercallTable &table, GuestMemory &memory, int wake_fd);
    [[nodiscard]] proto::NetState save() const;
    [[nodiscard]] const NetCounters &counters() const noexcept { return counters_; }

  private:
    void write_frame(GuestMemory &memory, std::uint64_t gpa);
    void read_frame(GuestMemory &memory, std::uint64_t gpa);
    void poll(GuestMemory &memory, std::uint64_t gpa, int wake_fd);

    std::shared_ptr<TapDevice> tap_;
    std::array<std::uint8_t, 6> mac_;
    NetCounters counters_;
    std::atomic<bool> restored_{false};
    std::mutex route_mutex_;
    EgressRoute route_;
};

} // namespace understudy::kvm
