#include "checkpoint/kvm/devices/net_device.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

namespace {
constexpr std::uint64_t kMinFrame = 14; // an Ethernet header
constexpr std::uint64_t kMaxPollNs = 1'000'000'000;
} // namespace

NetDevice::NetDevice(std::shared_ptr<TapDevice> tap, std::array<std::uint8_t, 6> mac) : tap_(std::move(tap)), mac_(mac)
{
}

void NetDevice::attach(HypercallTable &table, GuestMemory &memory, int wake_fd)
{
    table.add(US_HC_NET_WRITE, [this, &memory](std::uint64_t gpa) { write_frame(memory, gpa); });
    table.add(US_HC_NET_READ, [this, &memory](std::uint64_t gpa) { read_frame(memory, gpa); });
    table.add(US_HC_POLL, [this, &memory, wake_fd](std::uint64_t gpa) { poll(memory, gpa, wake_fd); });
}

void NetDevice::set_egress_route(EgressRoute route)
{
    std::lock_guard lock(route_mutex_);
    route_ = std::move(route);
}

bool NetDevice::transmit(std::span<const std::uint8_t> frame)
{
    if (!tap_)
        return true; // no NIC backend: frames are dropped by design
    if (::write(tap_->fd(), frame.data(), frame.size()) == static_cast<ssize_t>(frame.size())) {
        counters_.frames_sent++;
        return true;
    }
    counters_.frames_dropped++;
    return false;
}

void NetDevice::write_frame(GuestMemory &memory, std::uint64_t gpa)
{
    auto args = memory.read_struct<us_hc_net_io>(gpa, "net write arguments");
    if (args.len < kMinFrame || args.len > US_MAX_FRAME)
        throw GuestFault("net write of a " + std::to_string(args.len) + "-byte frame (must be " +
                         std::to_string(kMinFrame) + " to " + std::to_string(US_MAX_FRAME) + ")");
    auto frame = memory.read_view(args.data, args.len, "net write frame");
    args.ret = US_OK;
    {
        std::lock_guard lock(route_mutex_);
        if (route_)
            route_(frame);
        else if (!transmit(frame))
            args.ret = US_EIO;
    }
    memory.write_struct(gpa, args, "net write arguments");
}

void NetDevice::read_frame(GuestMemory &memory, std::uint64_t gpa)
{
    auto args = memory.read_struct<us_hc_net_io>(gpa, "net read arguments");
    // The whole buffer the guest offers must be its own RAM, used or not.
    (void)memory.read_view(args.data, args.len, "net read buffer");
    args.ret = US_EAGAIN;
    std::uint8_t frame[65536];
    while (tap_) {
        ssize_t n = ::read(tap_->fd(), frame, sizeof(frame));
        if (n < 0)
            break; // EAGAIN: nothing queued; other errors look the same to the guest
        if (static_cast<std::uint64_t>(n) > args.len) {
            counters_.frames_dropped++;
            continue;
        }
        auto dst = memory.write_view(args.data, static_cast<std::uint64_t>(n), "net read buffer");
        std::copy_n(frame, n, dst.begin());
        args.len = static_cast<std::uint64_t>(n);
        args.ret = US_OK;
        counters_.frames_received++;
        break;
    }
    memory.write_struct(gpa, args, "net read arguments");
}

void NetDevice::poll(GuestMemory &memory, std::uint64_t gpa, int wake_fd)
{
    auto args = memory.read_struct<us_hc_poll>(gpa, "poll arguments");
    if (restored_.exchange(false)) {
        args.ready = US_POLL_RESTORED;
        memory.write_struct(gpa, args, "poll arguments");
        return;
    }
    const std::uint64_t timeout_ns = std::min(args.timeout_ns, kMaxPollNs);
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {tap_ ? tap_->fd() : -1, POLLIN, 0}};
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
    int n = ::ppoll(fds, 2, &ts, nullptr);
    if (n > 0 && (fds[0].revents & POLLIN)) {
        std::uint64_t drained;
        [[maybe_unused]] auto r = ::read(wake_fd, &drained, sizeof(drained));
    }
    args.ready = (n > 0 && (fds[1].revents & POLLIN)) ? US_POLL_NET : 0;
    memory.write_struct(gpa, args, "poll arguments");
}

proto::NetState NetDevice::save() const
{
    proto::NetState s;
    s.set_mac(std::string(mac_.begin(), mac_.end()));
    return s;
}

} // namespace understudy::kvm
