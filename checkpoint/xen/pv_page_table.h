// A 64-bit PV guest's page tables hold machine frame numbers of the host it
// runs on. Before such a page leaves the primary its entries are rewritten
// to the guest's own frames (pfns), as Xen's save does
// (xg_sr_save_x86_pv.c, normalise_pagetable); Xen's restore on the backup
// rewrites them to its own machine frames.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/xen/pv_p2m.h"

namespace understudy::xen {

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
