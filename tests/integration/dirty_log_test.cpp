#include <catch2/catch.hpp>
#include <sstream>

#include "tests/integration/demo_guest.h"

using namespace understudy;
using namespace understudy::testing;

TEST_CASE("harvest_dirty reports the pages the guest wrote and those the VMM wrote for it", "[kvm][dirty]")
{
    TestNetwork net("dirty");
    auto guest = boot_ready_demo(net);
    auto udp = net.guest_udp_socket();
    REQUIRE(udp_request(udp.get(), "get"));

    guest->enable_dirty_log();
    // The guest writes 40 workload pages starting at its workload page 100 and
    // says which guest pages those are, and where its receive buffer is. That
    // buffer is only ever written by the VMM (received frames).
    auto reply = udp_request(udp.get(), "dirty 100 40", std::chrono::milliseconds(3000), 1);
    REQUIRE(reply);
    std::istringstream in(*reply);
    std::string word, rx_word;
    std::uint64_t first_pfn = 0, count = 0, rx_pfn = 0;
    in >> word >> first_pfn >> count >> rx_word >> rx_pfn;
    REQUIRE(word == "dirtied");
    REQUIRE(count == 40);
    REQUIRE(rx_word == "rx");

    guest->pause();
    DirtyBitmap harvest(guest->memory().pages());
    guest->harvest_dirty(harvest);
    for (std::uint64_t p = first_pfn; p < first_pfn + count; ++p) {
        INFO("workload page " << p);
        CHECK(harvest.test(Pfn{p}));
    }
    INFO("receive buffer page " << rx_pfn);
    CHECK(harvest.test(Pfn{rx_pfn}));
    CHECK(harvest.count() < guest->memory().pages() / 4); // not just "everything"

    DirtyBitmap again(guest->memory().pages());
    guest->harvest_dirty(again);
    CHECK(again.count() == 0);
    for (std::uint64_t p = first_pfn; p < first_pfn + count; ++p)
        CHECK_FALSE(again.test(Pfn{p}));
    CHECK_FALSE(again.test(Pfn{rx_pfn}));

    guest->resume();
    CHECK(udp_request(udp.get(), "get"));
}
