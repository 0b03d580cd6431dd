#include "heartbeat/witness_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace understudy {

namespace {

using Clock = std::chrono::steady_clock;

std::uint16_t icmp_checksum(const std::uint8_t *p, std::size_t len)
{
    std::uint32_t sum = 0;
    for (; len > 1; len -= 2, p += 2)
        sum += static_cast<std::uint32_t>(p[0] | (p[1] << 8));
    if (len)
        sum += p[0];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

} // namespace

WitnessProbe::WitnessProbe(const std::string &ipv4, std::chrono::milliseconds interval,
                           std::chrono::milliseconds timeout)
    : address_(ipv4), interval_(interval), timeout_(timeout),
      id_(static_cast<std::uint16_t>(getpid() ^ reinterpret_cast<std::uintptr_t>(this)))
{
    in_addr a{};
    if (inet_pton(AF_INET, ipv4.c_str(), &a) != 1)
        throw std::runtime_error("witness '" + ipv4 + "': an IPv4 address is needed");
    ip_ = a.s_addr;
    socket_ = UniqueFd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
    if (!socket_)
        throw std::runtime_error(std::string("witness: cannot open an ICMP socket: ") + std::strerror(errno) +
                                 " (understudyd needs root or CAP_NET_RAW)");
    thread_ = std::thread([this] { run(); });
}

WitnessProbe::~WitnessProbe()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    thread_.join();
}

bool WitnessProbe::reachable() const
{
    std::lock_guard lock(mutex_);
    return last_reply_ != Clock::time_point{} && Clock::now() - last_reply_ < timeout_;
}

double WitnessProbe::silent_s() const
{
    std::lock_guard lock(mutex_);
    const auto since = last_reply_ == Clock::time_point{} ? started_ : last_reply_;
    return std::chrono::duration<double>(Clock::now() - since).count();
}

void WitnessProbe::run()
{
    std::uint16_t seq = 0;
    auto next_send = Clock::now();
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                return;
        }
        if (Clock::now() >= next_send) {
            std::uint8_t packet[16] = {};
            packet[0] = ICMP_ECHO;
            std::memcpy(packet + 4, &id_, 2);
            ++seq;
            std::memcpy(packet + 6, &seq, 2);
            const std::uint16_t sum = icmp_checksum(packet, sizeof packet);
            std::memcpy(packet + 2, &sum, 2);
            sockaddr_in to{};
            to.sin_family = AF_INET;
            to.sin_addr.s_addr = ip_;
            (void)::sendto(socket_.get(), packet, sizeof packet, MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&to),
                           sizeof to);
            next_send += interval_;
            if (next_send < Clock::now())
                next_send = Clock::now() + interval_;
        }
        pollfd p{socket_.get(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0)
            continue;
        std::uint8_t reply[256];
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n =
            ::recvfrom(socket_.get(), reply, sizeof reply, MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&from), &len);
        if (n < 28 || from.sin_addr.s_addr != ip_)
            continue;
        const std::size_t ihl = static_cast<std::size_t>(reply[0] & 0xf) * 4;
        if (static_cast<std::size_t>(n) < ihl + 8 || reply[ihl] != ICMP_ECHOREPLY)
            continue;
        std::uint16_t id;
        std::memcpy(&id, reply + ihl + 4, 2);
        if (id != id_)
            continue;
        std::lock_guard lock(mutex_);
        last_reply_ = Clock::now();
    }
}

} // namespace understudy
