#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/integration/demo_guest.h"

using namespace understudy;
using namespace understudy::testing;

TEST_CASE("a guest restored into a new VM carries on: counter, clock, disk", "[kvm][snapshot]")
{
    TestNetwork net("snap");
    auto tap = net.make_tap();
    auto disk_path = std::filesystem::temp_directory_path() / ("understudy-snap-" + std::to_string(getpid()) + ".img");
    std::filesystem::remove(disk_path);
    auto config = demo_config(tap);
    config.disk = std::make_shared<kvm::BlockImage>(disk_path, 1 << 20);
    config.dirty_pages_per_second = 2000; // the guest is busy writing memory when we snapshot

    auto guest = kvm::KvmGuest::boot(config);
    REQUIRE(wait_for_console(*guest, "demo guest: ready"));
    auto udp = net.guest_udp_socket();
    std::uint64_t counter = 0;
    for (int i = 0; i < 5; ++i) {
        auto r = udp_request(udp.get(), "next");
        REQUIRE(r);
        counter = number_in(*r);
    }
    auto time_before = udp_request(udp.get(), "time");
    REQUIRE(time_before);

    guest->pause();
    auto snapshot = guest->snapshot();
    guest.reset(); // the old VM is gone for good

    auto restored = kvm::KvmGuest::restore(config, snapshot);
    CHECK(restored->paused());
    CHECK(std::memcmp(restored->memory().host_base(), snapshot.memory.data(), snapshot.memory.size()) == 0);
    restored->resume();

    auto time_after = udp_request(udp.get(), "time");
    REQUIRE(time_after);
    CHECK(number_in(*time_after) >= number_in(*time_before));
    for (int i = 1; i <= 5; ++i) {
        auto r = udp_request(udp.get(), "next", std::chrono::milliseconds(2000), 1);
        REQUIRE(r);
        CHECK(number_in(*r) == counter + i); // no reset, no repeat
    }
    CHECK_FALSE(restored->stopped());
    restored.reset();

    // The disk kept the counter too: a fresh boot from the same disk resumes it.
    config.dirty_pages_per_second = 0;
    auto rebooted = kvm::KvmGuest::boot(config);
    REQUIRE(wait_for_console(*rebooted, "demo guest: ready"));
    CHECK(rebooted->console_output().find("counter: starting at " + std::to_string(counter + 5)) != std::string::npos);
    rebooted.reset();
    std::filesystem::remove(disk_path);
}
