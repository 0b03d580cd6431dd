#include <catch2/catch.hpp>

#include "checkpoint/dirty_bitmap.h"

using understudy::DirtyBitmap;
using understudy::Pfn;

namespace {
std::vector<std::pair<std::uint64_t, std::uint64_t>> runs(const DirtyBitmap &b)
{
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    b.for_each_run([&](Pfn first, std::uint64_t n) { out.emplace_back(first.value, n); });
    return out;
}
} // namespace

TEST_CASE("a dirty bitmap records set pages and nothing else", "[dirty_bitmap]")
{
    DirtyBitmap b(200);
    b.set(Pfn{0});
    b.set(Pfn{63});
    b.set(Pfn{64});
    b.set(Pfn{199});
    b.set(Pfn{200}); // past the end: ignored
    CHECK(b.count() == 4);
    CHECK(b.test(Pfn{63}));
    CHECK_FALSE(b.test(Pfn{62}));
    CHECK_FALSE(b.test(Pfn{200}));
    CHECK(runs(b) == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 1}, {63, 2}, {199, 1}});
    b.clear();
    CHECK(b.count() == 0);
    CHECK(runs(b).empty());
}

TEST_CASE("set_range marks every page a byte range touches", "[dirty_bitmap]")
{
    DirtyBitmap b(16);
    b.set_range(4095, 2); // straddles pages 0 and 1
    b.set_range(3 * 4096, 4096);
    b.set_range(5 * 4096, 0);
    CHECK(runs(b) == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 2}, {3, 1}});
    b.set_range(15 * 4096, 10 * 4096); // runs past the end: clipped
    CHECK(b.test(Pfn{15}));
    CHECK(b.count() == 4);
}

TEST_CASE("or_words takes the kernel's layout and ignores bits past the end", "[dirty_bitmap]")
{
    DirtyBitmap b(70);
    std::vector<std::uint64_t> kernel{0x5, ~std::uint64_t{0}};
    b.or_words(kernel);
    CHECK(b.test(Pfn{0}));
    CHECK(b.test(Pfn{2}));
    CHECK_FALSE(b.test(Pfn{1}));
    CHECK(b.test(Pfn{69}));
    CHECK(b.count() == 2 + 6); // pages 64..69 only
    CHECK(runs(b).back() == std::pair<std::uint64_t, std::uint64_t>{64, 6});
}

TEST_CASE("or_with and drain_into combine two logs; drain leaves the source empty", "[dirty_bitmap]")
{
    DirtyBitmap kvm_log(128), vmm_log(128), harvest(128);
    kvm_log.set(Pfn{1});
    vmm_log.set(Pfn{100});
    vmm_log.set(Pfn{1});
    harvest.or_with(kvm_log);
    vmm_log.drain_into(harvest);
    CHECK(harvest.count() == 2);
    CHECK(harvest.test(Pfn{100}));
    CHECK(vmm_log.count() == 0);
    CHECK(kvm_log.count() == 1);
    auto pfns = harvest.to_vector();
    REQUIRE(pfns.size() == 2);
    CHECK(pfns[0] == Pfn{1});
    CHECK(pfns[1] == Pfn{100});
}
