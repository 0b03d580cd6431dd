// A 64-bit PV guest's page tables hold machine frame numbers of the host it
// runs on. Before such a page leaves the primary its entries are rewritten
// to the guest's own frames (pfns), as Xen's save does
// (xg_sr_save_x86_pv.c, normalise_pagetable); Xen's restore on the backup
// rewrites them to its own machine frames.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>

#include "checkpoint/xen/pv_p2m.h"

namespace understudy::xen {

// A PV domain's page tables: pfn -> type (XEN_DOMCTL_PFINFO_L1TAB..L4TAB,
// with XEN_DOMCTL_PFINFO_LPINTAB for pinned ones).
using PageTableMap = std::unordered_map<std::uint64_t, std::uint32_t>;

// The machine (or, normalised, guest) frame bits of a page-table entry: 12-51.
inline constexpr std::uint64_t kPteFrameMask = 0x000ffffffffff000ULL;

// How XenPvState.page_tables lists a page table: its pfn, and its type
// (XEN_DOMCTL_PFINFO_*, bits 28-31) in bits 60-63, as PAGE_DATA lists pages.
[[nodiscard]] inline std::uint64_t page_table_entry(std::uint64_t pfn, std::uint32_t type)
{
    return pfn | std::uint64_t{type >> 28} << 60;
}
[[nodiscard]] inline std::uint64_t page_table_pfn(std::uint64_t entry)
{
    return entry & 0x000fffffffffffffULL;
}
[[nodiscard]] inline std::uint32_t page_table_type(std::uint64_t entry)
{
    return static_cast<std::uint32_t>(entry >> 60) << 28;
}

// A page's type as XEN_DOMCTL_getpageframeinfo3 reports it
// (XEN_DOMCTL_PFINFO_*): 0 for data, L1..L4 page tables (pinned or not).
// Its level, 1 to 4, or 0 when it is not a page table.
[[nodiscard]] unsigned page_table_level(std::uint32_t type);

// Rewrites the present entries of a level-`level` page table in place from
// machine frames to pfns, and clears the L4 slots Xen keeps for itself
// (256..271; Xen's restore fills them). Returns "" or what is wrong: an
// entry that maps a frame that is not the domain's (a grant or foreign
// mapping), or a superpage, which Xen's migration refuses too.
[[nodiscard]] std::string normalise_page_table(std::span<std::uint8_t> page, unsigned level, const PvP2m &p2m);

} // namespace understudy::xen
