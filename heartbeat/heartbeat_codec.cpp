#include "heartbeat/heartbeat_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <stdexcept>

namespace understudy {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kMacBytes = 32;

std::array<std::uint8_t, kMacBytes> mac_of(std::span<const std::uint8_t> data, std::span<const std::uint8_t> key)
{
    std::array<std::uint8_t, kMacBytes> mac{};
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), mac.data(), &len) ||
        len != kMacBytes)
        throw std::runtime_error("heartbeat: HMAC-SHA256 failed");
    return mac;
}

} // namespace

std::vector<std::uint8_t> seal_heartbeat(const proto::HeartbeatPacket &packet, std::span<const std::uint8_t> key)
{
    std::vector<std::uint8_t> out(1 + packet.ByteSizeLong());
    out[0] = kVersion;
    if (!packet.SerializeToArray(out.data() + 1, static_cast<int>(out.size() - 1)))
        throw std::runtime_error("heartbeat: cannot serialise the packet");
    const auto mac = mac_of(out, key);
    out.insert(out.end(), mac.begin(), mac.end());
    if (out.size() > kMaxHeartbeatBytes)
        throw std::runtime_error("heartbeat: packet of " + std::to_string(out.size()) + " bytes (too many guests?)");
    return out;
}

std::optional<proto::HeartbeatPacket> open_heartbeat(std::span<const std::uint8_t> bytes,
                                                     std::span<const std::uint8_t> key, std::string *why)
{
    auto refuse = [&](const std::string &reason) {
        if (why)
            *why = reason;
        return std::nullopt;
    };
    if (bytes.size() < 1 + kMacBytes || bytes.size() > kMaxHeartbeatBytes)
        return refuse("a packet of " + std::to_string(bytes.size()) + " bytes");
    const auto body = bytes.first(bytes.size() - kMacBytes);
    const auto mac = mac_of(body, key);
    if (CRYPTO_memcmp(mac.data(), bytes.data() + body.size(), kMacBytes) != 0)
        return refuse("wrong MAC (not signed with this pair's key)");
    if (body[0] != kVersion)
        return refuse("version " + std::to_string(body[0]));
    proto::HeartbeatPacket packet;
    if (!packet.ParseFromArray(body.data() + 1, static_cast<int>(body.size() - 1)))
        return refuse("does not parse");
    return packet;
}

} // namespace understudy
