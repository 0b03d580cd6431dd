// A guest that misbehaves on purpose: the VMM stops it with a clear error and
// the host process lives on to run the next one.
#include <catch2/catch.hpp>

#include "tests/integration/demo_guest.h"

using namespace understudy;
using namespace understudy::testing;

namespace {

kvm::VmStop run_hostile(const std::string &mode)
{
    auto config = demo_config(nullptr, UNDERSTUDY_HOSTILE_GUEST);
    config.cmdline = mode;
    auto guest = kvm::KvmGuest::boot(config);
    auto stop = guest->wait_for(std::chrono::seconds(30));
    REQUIRE(stop);
    INFO("console: " << guest->console_output());
    CHECK(guest->console_output().find("the VMM let me continue") == std::string::npos);
    return *stop;
}

} // namespace

TEST_CASE("a hostile guest is stopped with an error naming what it did", "[kvm][hostile]")
{
    const std::vector<std::pair<std::string, std::string>> cases{
        {"console-past-ram", "outside guest RAM"}, {"console-huge-length", "console write of"},
        {"args-past-ram", "clock arguments"},      {"unknown-hypercall", "no known hypercall"},
        {"net-read-huge", "net read buffer"},      {"triple-fault", "triple fault"},
    };
    for (const auto &[mode, expected] : cases) {
        INFO("hostile mode " << mode);
        auto stop = run_hostile(mode);
        CHECK(stop.kind == kvm::VmStop::Kind::guest_error);
        CHECK_THAT(stop.message, Catch::Contains(expected));
    }
}

TEST_CASE("a block request past the end of the disk is an I/O error for the guest", "[kvm][hostile]")
{
    auto stop = run_hostile("block-wrap");
    CHECK(stop.kind == kvm::VmStop::Kind::halted);
    CHECK(stop.status == 0);
}
