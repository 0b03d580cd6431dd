// TEST DOUBLE (see xen_double.h): how the double lays out a 64-bit PV
// guest, as a Linux PV guest would: machine frames that differ from its
// frames, a p2m in its own memory published through the shared info page
// (frame list list -> frame list -> p2m pages), a small page-table tree
// whose L4s carry Xen's own slots, a start info page, a GDT page.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

struct shared_info_x86_64;

namespace understudy::testing::xen_double::pv {

inline constexpr std::uint64_t kNone = ~std::uint64_t{0};
inline constexpr std::uint64_t kXenMfn = 0x42;   // a frame of Xen's own, in the L4s' Xen slots
inline constexpr std::uint64_t kPteFlags = 0x67; // present, writable, user, accessed, dirty

// A domain's machine frames: frame `pfn` is machine frame base + (pages - 1 - pfn),
// none where the guest has no RAM.
struct Frames {
    std::uint64_t base = 0, pages = 0;
    const std::set<std::uint64_t> *holes = nullptr;
    [[nodiscard]] std::uint64_t mfn_of(std::uint64_t pfn) const;
    [[nodiscard]] std::optional<std::uint64_t> pfn_of(std::uint64_t mfn) const;
    [[nodiscard]] std::uint64_t shared_info_mfn() const { return base + 0xfffff; }
};

struct Layout {
    std::uint64_t fll = 0, mid = 0;
    std::vector<std::uint64_t> leaves; // the p2m's pages
    std::uint64_t kernel_l4 = 0, user_l4 = 0, l3 = 0, l2 = 0, l1 = 0;
    std::uint64_t start_info = 0, gdt = 0, store = 0, console = 0;
    [[nodiscard]] std::set<std::uint64_t> reserved() const; // frames a workload leaves alone
};

[[nodiscard]] Layout layout_for(std::uint64_t pages);

// Writes the p2m (its pages, frame list and frame list list) into `memory`.
void write_p2m(std::uint8_t *memory, const Layout &layout, const Frames &frames);

// Where the p2m's pages are mapped in the guest's page tables (through L4
// slot 272, the L3, L2 and L1, from L1 entry 128 on).
inline constexpr std::uint64_t kP2mVaddr = 0xffff880000000000ULL + 128 * 4096;

// Builds the whole guest in `memory`: p2m, page tables (types set in
// `types`, by pfn), start info; and fills the shared info page, publishing
// the p2m as `p2m_form` says (DomainSpec::pv_p2m).
void build(std::uint8_t *memory, shared_info_x86_64 &shared_info, const Layout &layout, const Frames &frames,
           std::vector<std::uint32_t> &types, const std::string &p2m_form);

// Memory as Xen's save sends it: page tables' machine frames made pfns, the
// L4s' Xen slots cleared.
[[nodiscard]] std::vector<std::uint8_t> normalised(const std::uint8_t *memory, std::uint64_t pages,
                                                   const std::vector<std::uint32_t> &types, const Frames &frames);

} // namespace understudy::testing::xen_double::pv
