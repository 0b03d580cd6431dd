#include <catch2/catch.hpp>

#include "tests/integration/demo_guest.h"

using namespace understudy;
using namespace understudy::testing;

TEST_CASE("a client in another namespace reaches the demo guest with ping, arping and UDP", "[kvm][net]")
{
    TestNetwork net("net");
    auto guest = boot_ready_demo(net);

    auto ping = net.in_client(std::string("ping -c 3 -i 0.3 -W 3 ") + kGuestIp);
    INFO(ping.output);
    CHECK(ping.status == 0);
    CHECK(ping.output.find("bytes from 10.99.0.2") != std::string::npos);

    auto arping = net.in_client(std::string("arping -c 2 -w 5 -I veth-c ") + kGuestIp);
    INFO(arping.output);
    CHECK(arping.status == 0);
    CHECK(arping.output.find("52:54:00:12:34:56") != std::string::npos);

    auto udp = net.guest_udp_socket();
    std::uint64_t last = 0;
    for (int i = 0; i < 10; ++i) {
        auto reply = udp_request(udp.get(), "next");
        REQUIRE(reply);
        auto value = number_in(*reply);
        CHECK(value > last);
        last = value;
    }
    CHECK(last >= 10);
    CHECK(guest->net_counters().frames_received.load() > 0);
    CHECK_FALSE(guest->stopped());
}
