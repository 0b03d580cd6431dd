#include <catch2/catch.hpp>

#include "checkpoint/kvm/kvm_error.h"
#include "checkpoint/kvm/page_tables.h"
#include "guest/abi.h"

using namespace understudy;
using namespace understudy::kvm;

TEST_CASE("long-mode tables identity-map all of RAM with 2 MiB pages", "[page_tables]")
{
    GuestMemory mem(64 << 20, "unit");
    auto t = build_long_mode_tables(mem);
    CHECK(t.cr3 == US_PML4_GPA);
    CHECK(t.gdt_base == US_GDT_GPA);
    CHECK(t.gdt_limit == 23);
    CHECK(mem.read_struct<std::uint64_t>(US_PML4_GPA, "") == (US_PDPT_GPA | kPtePresent | kPteWritable));
    CHECK(mem.read_struct<std::uint64_t>(US_PML4_GPA + 8, "") == 0);
    CHECK(mem.read_struct<std::uint64_t>(US_PDPT_GPA, "") == (US_PD_GPA | kPtePresent | kPteWritable));
    CHECK(mem.read_struct<std::uint64_t>(US_PDPT_GPA + 8, "") == 0);
    for (std::uint64_t e = 0; e < 32; ++e) {
        INFO("entry " << e);
        CHECK(mem.read_struct<std::uint64_t>(US_PD_GPA + e * 8, "") ==
              ((e << 21) | kPtePresent | kPteWritable | kPteLargePage));
    }
    CHECK(mem.read_struct<std::uint64_t>(US_PD_GPA + 32 * 8, "") == 0); // nothing past RAM
    // The code segment is 64-bit (L bit) and present.
    auto code = mem.read_struct<std::uint64_t>(US_GDT_GPA + kCodeSelector, "");
    CHECK((code >> 53 & 1) == 1);
    CHECK((code >> 47 & 1) == 1);
}

TEST_CASE("RAM above 1 GiB gets one page directory per GiB", "[page_tables]")
{
    GuestMemory mem((1ull << 30) + (4 << 20), "unit");
    build_long_mode_tables(mem);
    CHECK(mem.read_struct<std::uint64_t>(US_PDPT_GPA + 8, "") == ((US_PD_GPA + 4096) | kPtePresent | kPteWritable));
    CHECK(mem.read_struct<std::uint64_t>(US_PD_GPA + 4096 + 8, "") ==
          (((1ull << 30) + (2 << 20)) | kPtePresent | kPteWritable | kPteLargePage));
    CHECK(mem.read_struct<std::uint64_t>(US_PD_GPA + 4096 + 16, "") == 0);
}

TEST_CASE("page tables refuse RAM too small for the layout", "[page_tables]")
{
    GuestMemory mem(1 << 20, "unit");
    CHECK_THROWS_WITH(build_long_mode_tables(mem), Catch::Contains("below the 2 MiB minimum"));
}
