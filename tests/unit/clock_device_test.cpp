#include <catch2/catch.hpp>
#include <thread>

#include "checkpoint/kvm/devices/clock_device.h"

using understudy::kvm::ClockDevice;

TEST_CASE("guest time continues from the saved value after restore", "[clock]")
{
    ClockDevice before;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto saved = before.save();
    CHECK(saved.guest_ns() >= 20'000'000);

    ClockDevice after; // a new VM, whose own clock would start at 0
    after.restore(saved);
    auto t1 = after.now_ns();
    CHECK(t1 >= saved.guest_ns());
    CHECK(t1 < saved.guest_ns() + 1'000'000'000); // no jump forward either
    auto t2 = after.now_ns();
    CHECK(t2 >= t1);
}
