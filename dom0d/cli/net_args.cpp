#include "dom0d/cli/net_args.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace understudy::cli {

Ipv4Interface parse_ipv4_interface(const std::string &text)
{
    Ipv4Interface out;
    auto slash = text.find('/');
    std::string addr = text.substr(0, slash);
    out.prefix = 24;
    if (slash != std::string::npos) {
        const std::string p = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), out.prefix);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || out.prefix < 1 || out.prefix > 32)
            throw ArgumentError("IPv4 address '" + text + "': prefix length must be 1 to 32");
    }
    in_addr a{};
    if (inet_pton(AF_INET, addr.c_str(), &a) != 1)
        throw ArgumentError("IPv4 address '" + text + "': not a dotted-quad address such as 10.0.0.2/24");
    out.address = a.s_addr;
    out.netmask = htonl(out.prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> out.prefix));
    const std::uint32_t host = ntohl(out.address);
    if (host == 0 || (host >> 24) == 127 || (host >> 28) >= 14)
        throw ArgumentError("IPv4 address '" + text + "': not a unicast host address");
    return out;
}

std::array<std::uint8_t, 6> parse_mac(const std::string &text)
{
    std::array<std::uint8_t, 6> mac{};
    unsigned b[6];
    char extra;
    if (text.size() != 17 ||
        std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &extra) != 6)
        throw ArgumentError("MAC address '" + text + "': expected six hex bytes such as 52:54:00:12:34:56");
    for (int i = 0; i < 6; ++i)
        mac[i] = static_cast<std::uint8_t>(b[i]);
    if (mac[0] & 1)
        throw ArgumentError("MAC address '" + text + "': a multicast address cannot be a NIC's address");
    return mac;
}

std::string format_mac(const std::array<std::uint8_t, 6> &mac)
{
    char buf[18];
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return buf;
}

std::string format_ipv4(std::uint32_t address)
{
    char buf[INET_ADDRSTRLEN];
    in_addr a{address};
    return inet_ntop(AF_INET, &a, buf, sizeof(buf)) ? buf : "?";
}

} // namespace understudy::cli
