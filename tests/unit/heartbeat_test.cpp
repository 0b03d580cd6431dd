// Heartbeats over real UDP on loopback: life is seen, silence is noticed
// after the timeout, and packets without the pair's key, from another node,
// replayed or mangled never count as life.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include "heartbeat/heartbeat_codec.h"
#include "heartbeat/heartbeat_service.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

std::vector<std::uint8_t> key(std::uint8_t fill)
{
    return std::vector<std::uint8_t>(32, fill);
}

HeartbeatSettings settings(const std::string &node, const std::string &peer, std::uint16_t peer_port,
                           std::uint8_t key_fill = 7)
{
    HeartbeatSettings s;
    s.node = node;
    s.peer_node = peer;
    s.listen = {"127.0.0.1", 0};
    s.paths = {{"127.0.0.1", peer_port}};
    s.interval = 20ms;
    s.timeout = 200ms;
    s.key = key(key_fill);
    return s;
}

template <class F> bool eventually(F f, std::chrono::milliseconds limit = 3s)
{
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (f())
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return f();
}

void send_raw(std::uint16_t port, const std::vector<std::uint8_t> &bytes)
{
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
    ::close(fd);
}

} // namespace

TEST_CASE("heartbeats show the peer alive with its state, and its silence after the timeout", "[heartbeat]")
{
    // Ports first: each side must know the other's.
    HeartbeatService b(settings("hostb", "hosta", 1), nullptr, nullptr);
    auto sa = settings("hosta", "hostb", b.port());
    HeartbeatService a(
        sa,
        [](proto::HeartbeatPacket &p) {
            p.set_witness_reachable(true);
            auto *g = p.add_guests();
            g->set_name("web");
            g->set_role("primary");
            g->set_acked_epoch(42);
        },
        nullptr);
    a.start();
    b.start();
    REQUIRE(eventually([&] { return !b.peer().all_silent; }));
    auto v = b.peer();
    CHECK(v.ever_heard);
    REQUIRE(v.last);
    CHECK(v.last->node() == "hosta");
    CHECK(v.last->witness_reachable());
    REQUIRE(v.last->guests_size() == 1);
    CHECK(v.last->guests(0).role() == "primary");
    CHECK(v.last->guests(0).acked_epoch() == 42);
    CHECK(v.paths.at(0).received >= 1);

    a.stop(); // the peer dies
    const auto stopped = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return b.peer().all_silent; }));
    const auto noticed = std::chrono::steady_clock::now() - stopped;
    CHECK(noticed >= 150ms); // not before the timeout (200 ms after the last packet)
    CHECK(noticed < 1s);
    CHECK(b.peer().silent_s >= 0.2);
}

TEST_CASE("heartbeats without the key, from another node, replayed or mangled never count as life", "[heartbeat]")
{
    HeartbeatService b(settings("hostb", "hosta", 9), nullptr, nullptr);
    b.start();

    proto::HeartbeatPacket p;
    p.set_node("hosta");
    p.set_boot_id(77);
    p.set_seq(5);
    p.set_sent_unix_ns(1000);

    send_raw(b.port(), seal_heartbeat(p, key(8))); // another pair's key
    auto other = p;
    other.set_node("hostc");
    send_raw(b.port(), seal_heartbeat(other, key(7))); // right key, wrong node
    auto garbage = seal_heartbeat(p, key(7));
    garbage[3] ^= 0x10; // one bit flipped
    send_raw(b.port(), garbage);
    send_raw(b.port(), std::vector<std::uint8_t>(20, 0xff)); // too short
    REQUIRE(eventually([&] { return b.peer().paths.at(0).refused == 4; }));
    CHECK_FALSE(b.peer().ever_heard);

    // A run of the peer's is believed once it echoes one of b's recent packets.
    REQUIRE(eventually([&] { return b.sequence() > 50; }));
    p.set_echo_boot_id(b.boot_id());
    p.set_echo_seq(b.sequence());
    const auto good = seal_heartbeat(p, key(7));
    send_raw(b.port(), good);
    REQUIRE(eventually([&] { return b.peer().ever_heard; }));
    CHECK(b.peer().paths.at(0).received == 1);
    send_raw(b.port(), good); // replayed
    REQUIRE(eventually([&] { return b.peer().paths.at(0).refused == 5; }));
    auto older_boot = p;
    older_boot.set_boot_id(76);
    older_boot.set_seq(900);
    older_boot.set_echo_seq(1); // an old run's packet, recorded and sent again: it echoes b long ago
    send_raw(b.port(), seal_heartbeat(older_boot, key(7)));
    REQUIRE(eventually([&] { return b.peer().paths.at(0).refused == 6; }));
    CHECK(b.peer().paths.at(0).received == 1);
    CHECK(b.peer().last->boot_id() == 77);
}

TEST_CASE("a new run of the peer whose clock was set back is believed once it echoes us; no clock decides",
          "[heartbeat]")
{
    HeartbeatService b(settings("hostb", "hosta", 9), nullptr, nullptr);
    b.start();
    REQUIRE(eventually([&] { return b.sequence() > 3; }));
    proto::HeartbeatPacket first;
    first.set_node("hosta");
    first.set_boot_id(100);
    first.set_seq(1);
    first.set_sent_unix_ns(4'000'000'000'000'000'000ull); // its clock far ahead
    first.set_echo_boot_id(b.boot_id());
    first.set_echo_seq(b.sequence());
    send_raw(b.port(), seal_heartbeat(first, key(7)));
    REQUIRE(eventually([&] { return b.peer().paths.at(0).received == 1; }));

    // The peer restarts with its clock set back: believed, since it echoes b.
    auto restarted = first;
    restarted.set_boot_id(200);
    restarted.set_sent_unix_ns(1000);
    restarted.set_echo_seq(b.sequence());
    send_raw(b.port(), seal_heartbeat(restarted, key(7)));
    REQUIRE(eventually([&] { return b.peer().paths.at(0).received == 2; }));
    CHECK(b.peer().last->boot_id() == 200);
    CHECK(b.peer().paths.at(0).refused == 0);

    // A packet of a run that echoes nothing of b's yet is not life (it is
    // believed with its next packet, which echoes b).
    auto unconfirmed = restarted;
    unconfirmed.set_boot_id(300);
    unconfirmed.set_echo_boot_id(0);
    send_raw(b.port(), seal_heartbeat(unconfirmed, key(7)));
    std::this_thread::sleep_for(100ms);
    CHECK(b.peer().paths.at(0).received == 2);
    CHECK(b.peer().last->boot_id() == 200);
}

TEST_CASE("a heartbeat packet is opened only with the key it was sealed with", "[heartbeat]")
{
    proto::HeartbeatPacket p;
    p.set_node("n");
    p.set_seq(1);
    auto sealed = seal_heartbeat(p, key(1));
    std::string why;
    CHECK(open_heartbeat(sealed, key(1), &why));
    CHECK_FALSE(open_heartbeat(sealed, key(2), &why));
    CHECK(why == "wrong MAC (not signed with this pair's key)");
    CHECK_FALSE(open_heartbeat(std::span(sealed).first(sealed.size() - 1), key(1), &why));
    CHECK_FALSE(open_heartbeat(std::vector<std::uint8_t>(2000, 0), key(1), &why));
    CHECK(why == "a packet of 2000 bytes");
    HeartbeatSettings s = settings("a", "b", 1);
    s.paths = {{"peer.example", 7301}};
    CHECK_THROWS_WITH(HeartbeatService(s, nullptr, nullptr), Catch::Contains("an IPv4 address is needed"));
    s = settings("a", "b", 1);
    s.key.resize(8);
    CHECK_THROWS_WITH(HeartbeatService(s, nullptr, nullptr), Catch::Contains("at least 32 bytes"));
}
