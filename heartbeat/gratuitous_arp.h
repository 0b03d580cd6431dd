// The frame a host sends to tell its network "this IP is at this MAC now":
// an ARP request for its own address, to everyone (RFC 5227 announcement).
// Switches learn the MAC's new port from it; neighbours update their caches.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace understudy {

// `ipv4` in network byte order.
std::vector<std::uint8_t> gratuitous_arp(const std::array<std::uint8_t, 6> &mac, std::uint32_t ipv4);

} // namespace understudy
