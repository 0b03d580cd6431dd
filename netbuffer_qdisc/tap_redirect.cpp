#include "netbuffer_qdisc/tap_redirect.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace understudy {

namespace {

constexpr std::size_t kMaxFrame = 65536 + 14;

std::runtime_error sys_error(const std::string &what)
{
    return std::runtime_error(what + ": " + std::strerror(errno));
}

UniqueFd attach_tap(const std::string &name)
{
    if (name.empty() || name.size() >= IFNAMSIZ)
        throw std::runtime_error("tap redirect: '" + name + "' is not an interface name");
    if (if_nametoindex(name.c_str()) == 0)
        throw std::runtime_error("tap redirect: no interface " + name + " (run scripts/netbuf-setup add first)");
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd)
        throw sys_error("tap redirect: open /dev/net/tun");
    ifreq req{};
    std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
    req.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (::ioctl(fd.get(), TUNSETIFF, &req) != 0)
        throw sys_error("tap redirect: attach to TAP " + name + " (is it a TAP, and not in use by another process?)");
    return fd;
}

} // namespace

TapRedirectOutput::TapRedirectOutput(TapRedirectSettings settings, OutputBufferSettings buffer)
    : settings_(std::move(settings)), tap_(attach_tap(settings_.tap)),
      buffer_(buffer, [this](std::span<const std::uint8_t> f) { return release(f); })
{
    reader_ = std::thread([this] { read_loop(); });
}

TapRedirectOutput::~TapRedirectOutput()
{
    stopping_ = true;
    if (reader_.joinable())
        reader_.join();
    buffer_.on_unprotected();
}

bool TapRedirectOutput::release(std::span<const std::uint8_t> frame)
{
    // Written into the TAP, the frame is received on that bridge port.
    return ::write(tap_.get(), frame.data(), frame.size()) == static_cast<ssize_t>(frame.size());
}

void TapRedirectOutput::read_loop()
{
    std::vector<std::uint8_t> frame(kMaxFrame);
    while (!stopping_) {
        pollfd p{tap_.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        for (;;) {
            const ssize_t n = ::read(tap_.get(), frame.data(), frame.size());
            if (n <= 0)
                break;
            if (settings_.guest_mac && (n < 12 || !std::equal(settings_.guest_mac->begin(),
                                                               settings_.guest_mac->end(), frame.begin() + 6))) {
                ++foreign_frames_;
                continue;
            }
            buffer_.egress({frame.data(), static_cast<std::size_t>(n)});
        }
    }
}

} // namespace understudy
