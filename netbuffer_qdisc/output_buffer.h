// Output commit (ARCHITECTURE.md §5): a protected guest's network output of
// epoch N leaves the host only after the backup committed epoch N, so no
// client ever sees a reply from a state the backup could lose.
//
// This is the participant the epoch loop drives; frames reach it from a
// source (the kvm backend's NIC in the VMM, or a TAP that a host interface's
// ingress is redirected to) and leave through `Transmit`. At a pause the
// frames sent so far are sealed as that epoch's; an ack releases every sealed
// batch up to its epoch, in order. Unprotected, frames go straight out.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_participant.h"

namespace understudy {

// What a full buffer does with one more frame. Either way the frame or frames
// dropped are counted and visible in status and metrics; a dropped frame is
// what a congested link does, and TCP resends it.
enum class FullBufferPolicy {
    drop_newest, // the frame that does not fit
    drop_oldest, // the oldest held frames, until it fits
};
// "drop-newest" / "drop-oldest"; throws std::invalid_argument naming the choices.
FullBufferPolicy parse_full_buffer_policy(const std::string &text);
const char *policy_name(FullBufferPolicy policy) noexcept;

struct OutputBufferSettings {
    std::uint64_t capacity_bytes = 16ull << 20;
    FullBufferPolicy policy = FullBufferPolicy::drop_newest;
};

struct OutputBufferStatus {
    bool holding = false;             // protected: output waits for acks
    std::uint64_t held_frames = 0;    // now
    std::uint64_t held_bytes = 0;     // now
    std::uint64_t released_frames = 0; // sent after their epoch was acked
    std::uint64_t passed_frames = 0;  // sent at once, unprotected
    std::uint64_t dropped_frames = 0; // full buffer (policy), counted
    std::uint64_t transmit_errors = 0; // the outgoing link refused a frame
    std::uint64_t released_epoch = 0; // the last epoch whose output was released
    std::uint64_t discarded_frames = 0; // lost in a simulated crash (drill)
    bool cut_off = false;             // after cut_off(): nothing leaves any more
};

class OutputBuffer final : public CheckpointParticipant {
  public:
    // Sends one frame out now (TAP write); false if the link refused it.
    using Transmit = std::function<bool(std::span<const std::uint8_t>)>;

    OutputBuffer(OutputBufferSettings settings, Transmit transmit);

    // A frame the guest sent: out now when not holding, else held.
    void egress(std::span<const std::uint8_t> frame);

    void on_pause(Epoch epoch) override;
    void on_commit(Epoch epoch) override;
    void on_unprotected() override;
    // A simulated power cut (understudy drill): what is held is lost, as it
    // would be with the host, and from now on nothing leaves; both counted.
    void cut_off();

    [[nodiscard]] OutputBufferStatus status() const;
    [[nodiscard]] const OutputBufferSettings &settings() const noexcept { return settings_; }

  private:
    struct Batch {
        std::uint64_t epoch = 0; // 0: still open (the epoch running now)
        std::vector<std::vector<std::uint8_t>> frames;
    };
    void send(std::span<const std::uint8_t> frame, std::uint64_t &counter);
    void drop_oldest_until(std::uint64_t room);

    const OutputBufferSettings settings_;
    Transmit transmit_;
    mutable std::mutex mutex_;
    std::deque<Batch> batches_; // oldest first; the last one may be open
    OutputBufferStatus status_;
};

} // namespace understudy
