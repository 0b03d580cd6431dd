// A 64-bit PV domain's own map from its frames (pfns) to machine frames
// (mfns): the p2m the guest keeps in its memory and publishes through its
// shared info page, read as Xen's save reads it (xg_sr_save_x86_pv.c): as
// a list at virtual address arch.p2m_vaddr of the page tables arch.p2m_cr3
// names (map_p2m_list; what Linux publishes when Xen's domain builder says
// SIF_VIRT_P2M_4TOOLS, as it always does), or else through
// arch.pfn_to_mfn_frame_list_list (a page of mfns of pages of mfns of the
// p2m's pages; map_p2m_tree). And the reverse map from machine frames back
// to pfns that page tables and vCPU state are rewritten with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

struct shared_info_x86_64;

namespace understudy::xen {

class XenSession;

inline constexpr std::uint64_t kNoFrame = ~std::uint64_t{0};

struct PvP2m {
    std::uint64_t max_pfn = 0;            // frames 0..max_pfn
    std::vector<std::uint64_t> mfns;      // pfn -> mfn; kNoFrame where the guest has none
    std::vector<std::uint64_t> leaf_pfns; // the p2m's own pages, in order (X86_PV_P2M_FRAMES)
    std::vector<std::uint64_t> list_pfns; // tree form: the frame list list and frame lists above them
    // Where the shared info page said it was, when it was read: a change
    // (or a change of p2m_generation, which the guest bumps around every
    // change of the list's mapping) means it must be read again.
    std::uint64_t cr3 = 0, vaddr = 0, generation = 0, frame_list_list = 0;
    std::unordered_map<std::uint64_t, std::uint64_t> pfn_of_mfn;

    // The guest frame a machine frame is; nullopt if it is not this
    // domain's (Xen's mfn_in_pseudophysmap).
    [[nodiscard]] std::optional<std::uint64_t> pfn_of(std::uint64_t mfn) const
    {
        const auto it = pfn_of_mfn.find(mfn);
        return it == pfn_of_mfn.end() ? std::nullopt : std::optional(it->second);
    }
    [[nodiscard]] bool has_frame(std::uint64_t pfn) const { return pfn < mfns.size() && mfns[pfn] != kNoFrame; }
};

// Reads the p2m of 64-bit PV domain `domid` through its shared info page.
// Throws XenError saying why when it cannot: no p2m published (yet), a
// virtual range that is unmapped or mapped by superpages, frames that are
// not the domain's, two pfns on one machine frame.
// `pages` bounds it: the guest writes its shared info page, and a p2m past
// the frames the domain had when protection started is refused before
// anything is mapped or allocated for it.
[[nodiscard]] PvP2m read_pv_p2m(const XenSession &xen, std::uint32_t domid, const std::string &name,
                                const shared_info_x86_64 &shared_info, std::uint64_t pages);

} // namespace understudy::xen
