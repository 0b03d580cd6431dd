// Sealing and opening heartbeat packets: version byte, protobuf, then an
// HMAC-SHA256 with the pair's key over both. A packet that is too short, too
// long, of another version, with a wrong MAC or that does not parse is
// refused with the reason.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/heartbeat.pb.h"

namespace understudy {

inline constexpr std::size_t kMaxHeartbeatBytes = 1400;

std::vector<std::uint8_t> seal_heartbeat(const proto::HeartbeatPacket &packet, std::span<const std::uint8_t> key);
// The packet, or nullopt with *why set.
std::optional<proto::HeartbeatPacket> open_heartbeat(std::span<const std::uint8_t> bytes,
                                                     std::span<const std::uint8_t> key, std::string *why);

} // namespace understudy
