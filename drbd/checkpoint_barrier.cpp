#include "drbd/checkpoint_barrier.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace understudy::drbd {

std::string drbd_device(int minor)
{
    return "/dev/drbd" + std::to_string(minor);
}

CheckpointBarrier::CheckpointBarrier(std::string device, Ioctl ioctl)
    : device_(std::move(device)), ioctl_(std::move(ioctl))
{
    if (!ioctl_)
        ioctl_ = [](int fd, unsigned long request) { return ::ioctl(fd, request, 0); };
    fd_ = UniqueFd(::open(device_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_)
        throw std::runtime_error("DRBD checkpoint barrier: cannot open " + device_ + ": " + std::strerror(errno));
}

void CheckpointBarrier::on_pause(Epoch epoch)
{
    // As the Remus DRBD build answers (and libxl_remus_disk_drbd reads it): a
    // positive result means the checkpoint needs no ack; otherwise the ack is
    // awaited before the guest may resume.
    if (ioctl_(fd_.get(), kDrbdSendCheckpoint) > 0)
        return;
    if (ioctl_(fd_.get(), kDrbdWaitCheckpointAck) < 0)
        throw std::runtime_error("DRBD checkpoint barrier on " + device_ + " for epoch " +
                                 std::to_string(epoch.value) + ": no ack from the peer: " + std::strerror(errno) +
                                 " (is this the Remus DRBD build with protocol D?)");
}

} // namespace understudy::drbd
