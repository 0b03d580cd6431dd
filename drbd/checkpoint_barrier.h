// DRBD protocol D (the Remus DRBD build): the disk writes of an epoch are
// committed on the peer with the checkpoint. While the guest is paused, a
// checkpoint is sent down the resource's device (ioctl DRBD_SEND_CHECKPOINT,
// 20) and its ack awaited (ioctl DRBD_WAIT_CHECKPOINT_ACK, 30) before the
// guest resumes, as Xen's libxl_remus_disk_drbd does. Only for resources whose
// protocol is D (drbd_probe tells); the wait lengthens the pause by one DRBD
// round trip.
#pragma once

#include <functional>
#include <string>

#include "checkpoint/checkpoint_participant.h"
#include "checkpoint/unique_fd.h"

namespace understudy::drbd {

inline constexpr unsigned long kDrbdSendCheckpoint = 20;
inline constexpr unsigned long kDrbdWaitCheckpointAck = 30;

class CheckpointBarrier final : public CheckpointParticipant {
  public:
    // ioctl(fd, request) -> result, errno set on failure (a seam for tests).
    using Ioctl = std::function<int(int fd, unsigned long request)>;
    // Opens `device` (e.g. /dev/drbd0) read-only; throws naming it if it cannot.
    explicit CheckpointBarrier(std::string device, Ioctl ioctl = {});

    // Sends the checkpoint and waits for the peer's ack; throws (the
    // checkpoint fails, with the device and errno) if DRBD refuses.
    void on_pause(Epoch epoch) override;

    [[nodiscard]] const std::string &device() const noexcept { return device_; }

  private:
    std::string device_;
    UniqueFd fd_;
    Ioctl ioctl_;
};

// The block device of volume 0 of a resource with this minor: /dev/drbdMINOR.
[[nodiscard]] std::string drbd_device(int minor);

} // namespace understudy::drbd
