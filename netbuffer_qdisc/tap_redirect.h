// The tap-redirect way of output commit (ARCHITECTURE.md §5), for a guest
// whose NIC is a host interface understudy does not own (a Xen vif, or any
// veth): `scripts/netbuf-setup` redirects everything that interface receives
// from the guest (its tc ingress, all protocols) to a TAP device; this reads
// the frames from that TAP into an OutputBuffer. A released frame is written
// back into the TAP, which is a port of the interface's bridge: it enters the
// bridge as the guest sent it (and, the two ports being isolated, never comes
// back to the guest). Works without sch_plug.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/unique_fd.h"
#include "netbuffer_qdisc/output_buffer.h"

namespace understudy {

struct TapRedirectSettings {
    std::string tap; // the TAP netbuf-setup redirects the interface's ingress to
    // Frames with another source address reached the TAP as a bridge port
    // (the bridge's own multicast) and are not the guest's: dropped, counted.
    // None: every frame read is held.
    std::optional<std::array<std::uint8_t, 6>> guest_mac;
};

class TapRedirectOutput {
  public:
    // Attaches to the TAP in the calling thread's network namespace. Throws
    // std::runtime_error naming what is missing (no such TAP: run
    // scripts/netbuf-setup first).
    TapRedirectOutput(TapRedirectSettings settings, OutputBufferSettings buffer);
    // Stops reading; what is still held is released (as when unprotected).
    ~TapRedirectOutput();
    TapRedirectOutput(const TapRedirectOutput &) = delete;
    TapRedirectOutput &operator=(const TapRedirectOutput &) = delete;

    [[nodiscard]] OutputBuffer &buffer() noexcept { return buffer_; }
    [[nodiscard]] const TapRedirectSettings &settings() const noexcept { return settings_; }
    // Frames read from the TAP that were not from guest_mac.
    [[nodiscard]] std::uint64_t foreign_frames() const noexcept { return foreign_frames_; }

  private:
    void read_loop();
    bool release(std::span<const std::uint8_t> frame);

    TapRedirectSettings settings_;
    UniqueFd tap_;
    OutputBuffer buffer_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> foreign_frames_{0};
    std::thread reader_;
};

} // namespace understudy
