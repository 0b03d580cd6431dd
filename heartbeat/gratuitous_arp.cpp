#include "heartbeat/gratuitous_arp.h"

#include <cstring>

namespace understudy {

std::vector<std::uint8_t> gratuitous_arp(const std::array<std::uint8_t, 6> &mac, std::uint32_t ipv4)
{
    std::vector<std::uint8_t> f(60, 0); // the minimum Ethernet frame, padded
    std::memset(f.data(), 0xff, 6);     // to everyone
    std::memcpy(f.data() + 6, mac.data(), 6);
    f[12] = 0x08, f[13] = 0x06;         // ARP
    std::uint8_t *a = f.data() + 14;
    a[0] = 0, a[1] = 1;                 // Ethernet
    a[2] = 0x08, a[3] = 0x00;           // IPv4
    a[4] = 6, a[5] = 4;
    a[6] = 0, a[7] = 1;                 // request
    std::memcpy(a + 8, mac.data(), 6);  // sender: us
    std::memcpy(a + 14, &ipv4, 4);
    std::memcpy(a + 24, &ipv4, 4);      // target: our own address; target MAC zero
    return f;
}

} // namespace understudy
