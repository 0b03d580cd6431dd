#include "checkpoint/xen/pv_page_table.h"

#include <cstring>

extern "C" {
#include <xenctrl.h>
}

namespace understudy::xen {

namespace {

constexpr std::uint64_t kPresent = 0x1;
constexpr std::uint64_t kSuperpage = 0x80;                  // _PAGE_PSE
constexpr unsigned kXenFirstSlot = 256, kXenLastSlot = 271; // 0xffff800000000000 - 0xffff87ffffffffff

} // namespace

unsigned page_table_level(std::uint32_t type)
{
    const std::uint32_t t = type & XEN_DOMCTL_PFINFO_LTABTYPE_MASK;
    if (t < XEN_DOMCTL_PFINFO_L1TAB || t > XEN_DOMCTL_PFINFO_L4TAB)
        return 0;
    return t >> XEN_DOMCTL_PFINFO_LTAB_SHIFT;
}

std::string normalise_page_table(std::span<std::uint8_t> page, unsigned level, const PvP2m &p2m)
{
    constexpr unsigned kEntries = 512;
    for (unsigned i = 0; i < kEntries; ++i) {
        std::uint64_t pte;
        std::memcpy(&pte, page.data() + i * 8, 8);
        if (level == 4 && i >= kXenFirstSlot && i <= kXenLastSlot) {
            pte = 0;
        } else if (pte & kPresent) {
            const std::uint64_t mfn = (pte & kPteFrameMask) >> 12;
            if (level > 1 && (pte & kSuperpage))
                return "L" + std::to_string(level) + "[" + std::to_string(i) +
                       "] maps a superpage, which Xen's migration cannot move";
            const auto pfn = p2m.pfn_of(mfn);
            if (!pfn)
                return "L" + std::to_string(level) + "[" + std::to_string(i) + "] maps machine frame " +
                       std::to_string(mfn) + ", which is not one of the domain's frames (a grant or foreign mapping)";
            pte = (pte & ~kPteFrameMask) | (*pfn << 12);
        }
        std::memcpy(page.data() + i * 8, &pte, 8);
    }
    return "";
}

} // namespace understudy::xen
