// libFuzzer target for the heartbeat receiver: packets from a configured
// path's address. The first byte picks: the bytes as they came off the wire
// (nearly all refused by the MAC), or a packet body signed here with the
// pair's key, so that what follows the MAC (node, replay and new-run rules,
// the peer's view) is what is fuzzed. Never a crash; peer() stays sane.
#include <arpa/inet.h>

#include <cstdint>
#include <vector>

#include "heartbeat/heartbeat_codec.h"
#include "heartbeat/heartbeat_service.h"

using namespace understudy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static const std::vector<std::uint8_t> key(32, 0x42);
    static HeartbeatService service(
        [] {
            HeartbeatSettings s;
            s.node = "hosta";
            s.peer_node = "hostb";
            s.listen = {"127.0.0.1", 0};
            s.paths = {{"127.0.0.2", 7301}, {"127.0.0.3", 7301}};
            s.key = key;
            return s;
        }(),
        nullptr, nullptr);
    if (size < 1)
        return 0;
    const std::uint32_t from = htonl(data[0] & 2 ? 0x7f000003u : 0x7f000002u);
    std::span<const std::uint8_t> rest(data + 1, size - 1);
    if (data[0] & 1) {
        service.receive(rest, from);
    } else {
        // A signed packet whose body is the input (a version byte first).
        std::vector<std::uint8_t> packet(rest.begin(), rest.end());
        proto::HeartbeatPacket parsed;
        if (!packet.empty() && parsed.ParseFromArray(packet.data(), static_cast<int>(packet.size()))) {
            try {
                auto sealed = seal_heartbeat(parsed, key);
                service.receive(sealed, from);
            } catch (const std::exception &) { // too large to send
            }
        }
    }
    const auto view = service.peer();
    if (view.paths.size() != 2)
        __builtin_trap();
    return 0;
}
