#include "checkpoint/kvm/devices/tap_device.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

TapDevice::TapDevice(const std::string &name)
{
    if (name.size() >= IFNAMSIZ)
        throw KvmError("TAP " + name + ": name longer than " + std::to_string(IFNAMSIZ - 1) + " characters");
    fd_ = UniqueFd(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd_)
        throw system_error("TAP " + name + ": open /dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_.get(), TUNSETIFF, &ifr) < 0)
        throw system_error("TAP " + name +
                           ": TUNSETIFF (does it exist as another kind of device, or are we not root?)");
    name_ = ifr.ifr_name;

    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock)
        throw system_error("TAP " + name_ + ": socket for SIOCSIFFLAGS");
    ifreq flags{};
    std::strncpy(flags.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFFLAGS, &flags) < 0)
        throw system_error("TAP " + name_ + ": SIOCGIFFLAGS");
    flags.ifr_flags |= IFF_UP;
    if (ioctl(sock.get(), SIOCSIFFLAGS, &flags) < 0)
        throw system_error("TAP " + name_ + ": bring the interface up");
}

} // namespace understudy::kvm
