#include <catch2/catch.hpp>

#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/kvm/kvm_error.h"

using namespace understudy;
using namespace understudy::kvm;

TEST_CASE("guest memory hands out only ranges inside RAM", "[guest_memory]")
{
    GuestMemory mem(1 << 20, "unit");
    CHECK(mem.read_view(0, 1 << 20, "all").size() == (1u << 20));
    CHECK(mem.read_view(1 << 20, 0, "empty at the end").empty());
    CHECK_THROWS_WITH(mem.read_view((1 << 20) - 8, 16, "tail"),
                      Catch::Contains("tail") && Catch::Contains("outside guest RAM"));
    CHECK_THROWS_AS(mem.read_view(~std::uint64_t{0}, 2, "wrap"), GuestFault);
    CHECK_THROWS_AS(mem.read_view(16, ~std::uint64_t{0} - 8, "huge"), GuestFault);
    CHECK_THROWS_AS(mem.write_view((1 << 20) + 1, 0, "past"), GuestFault);
}

TEST_CASE("writes through the accessor land in RAM and in the VMM's dirty bitmap", "[guest_memory]")
{
    GuestMemory mem(1 << 20, "unit");
    mem.write_struct<std::uint64_t>(3 * kPageSize + 4, 0x1122334455667788ull, "value");
    CHECK(mem.read_struct<std::uint64_t>(3 * kPageSize + 4, "value") == 0x1122334455667788ull);
    CHECK(mem.vmm_dirty().test(Pfn{3}));
    CHECK(mem.vmm_dirty().count() == 1);
    (void)mem.read_view(5 * kPageSize, kPageSize, "read only");
    CHECK(mem.vmm_dirty().count() == 1);
}

TEST_CASE("guest memory refuses sizes that are not whole pages", "[guest_memory]")
{
    CHECK_THROWS_WITH(GuestMemory(0, "zero"), Catch::Contains("not a positive multiple"));
    CHECK_THROWS_AS(GuestMemory(4097, "odd"), KvmError);
}
