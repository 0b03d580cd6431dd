// TEST DOUBLE: see pv_layout.h.
#include "tests/support/xen_double/pv_layout.h"

#include <cstring>
#include <stdexcept>

extern "C" {
#include <xenctrl.h>
}

namespace understudy::testing::xen_double::pv {

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::uint64_t kFrameMask = 0x000ffffffffff000ULL;

void put(std::uint8_t *memory, std::uint64_t pfn, unsigned index, std::uint64_t value)
{
    std::memcpy(memory + pfn * kPage + index * 8, &value, 8);
}

std::uint64_t pte(const Frames &frames, std::uint64_t pfn)
{
    return frames.mfn_of(pfn) << 12 | kPteFlags;
}

} // namespace

std::uint64_t Frames::mfn_of(std::uint64_t pfn) const
{
    if (pfn >= pages || (holes && holes->count(pfn)))
        return kNone;
    return base + (pages - 1 - pfn);
}

std::optional<std::uint64_t> Frames::pfn_of(std::uint64_t mfn) const
{
    if (mfn < base || mfn >= base + pages)
        return std::nullopt;
    const auto pfn = pages - 1 - (mfn - base);
    if (holes && holes->count(pfn))
        return std::nullopt;
    return pfn;
}

Layout layout_for(std::uint64_t pages)
{
    Layout l;
    std::uint64_t next = pages - 1;
    l.fll = next--;
    l.mid = next--;
    for (std::uint64_t i = 0; i < (pages - 1) / 512 + 1; ++i)
        l.leaves.push_back(next--);
    l.kernel_l4 = next--;
    l.user_l4 = next--;
    l.l3 = next--;
    l.l2 = next--;
    l.l1 = next--;
    l.start_info = next--;
    l.gdt = next--;
    l.store = next--;
    l.console = next--;
    return l;
}

std::set<std::uint64_t> Layout::reserved() const
{
    std::set<std::uint64_t> r{fll, mid, kernel_l4, user_l4, l3, l2, l1, start_info, gdt, store, console};
    r.insert(leaves.begin(), leaves.end());
    return r;
}

void write_p2m(std::uint8_t *memory, const Layout &layout, const Frames &frames)
{
    for (std::uint64_t pfn = 0; pfn < frames.pages; ++pfn)
        put(memory, layout.leaves[pfn / 512], static_cast<unsigned>(pfn % 512), frames.mfn_of(pfn));
    for (std::uint64_t i = 0; i < 512; ++i) // unused entries: ~0, as Linux leaves them
        if (frames.pages + i < layout.leaves.size() * 512)
            put(memory, layout.leaves.back(), static_cast<unsigned>((frames.pages + i) % 512), kNone);
    std::memset(memory + layout.mid * kPage, 0, kPage);
    for (std::size_t i = 0; i < layout.leaves.size(); ++i)
        put(memory, layout.mid, static_cast<unsigned>(i), frames.mfn_of(layout.leaves[i]));
    std::memset(memory + layout.fll * kPage, 0, kPage);
    put(memory, layout.fll, 0, frames.mfn_of(layout.mid));
}

void build(std::uint8_t *memory, shared_info_x86_64 &shared_info, const Layout &l, const Frames &frames,
           std::vector<std::uint32_t> &types, const std::string &p2m_form)
{
    write_p2m(memory, l, frames);
    // Page tables: both L4s map the L3 at slot 0 and at 272 (the kernel's
    // direct map, right after Xen's slots 256-271, which hold Xen's frames).
    for (auto l4 : {l.kernel_l4, l.user_l4}) {
        put(memory, l4, 0, pte(frames, l.l3));
        put(memory, l4, 272, pte(frames, l.l3));
        for (unsigned slot = 256; slot <= 271; ++slot)
            put(memory, l4, slot, kXenMfn << 12 | 0x63);
        types[l4] = XEN_DOMCTL_PFINFO_L4TAB | XEN_DOMCTL_PFINFO_LPINTAB;
    }
    put(memory, l.l3, 0, pte(frames, l.l2));
    types[l.l3] = XEN_DOMCTL_PFINFO_L3TAB;
    put(memory, l.l2, 0, pte(frames, l.l1));
    types[l.l2] = XEN_DOMCTL_PFINFO_L2TAB;
    for (unsigned i = 1; i < 64; ++i) // low memory, then the start info page
        put(memory, l.l1, i, pte(frames, i));
    put(memory, l.l1, 64, pte(frames, l.start_info));
    if (l.leaves.size() > 384)
        throw std::runtime_error("xen double: a PV guest this large does not fit its p2m in one L1");
    for (std::size_t i = 0; i < l.leaves.size(); ++i) // the p2m, at kP2mVaddr
        put(memory, l.l1, static_cast<unsigned>(128 + i), pte(frames, l.leaves[i]));
    types[l.l1] = XEN_DOMCTL_PFINFO_L1TAB;

    start_info_t info{};
    std::strncpy(info.magic, "xen-3.0-x86_64", sizeof info.magic - 1);
    info.nr_pages = frames.pages;
    info.shared_info = frames.shared_info_mfn() << 12;
    info.store_mfn = frames.mfn_of(l.store);
    info.store_evtchn = 1;
    info.console.domU.mfn = frames.mfn_of(l.console);
    info.console.domU.evtchn = 2;
    std::memcpy(memory + l.start_info * kPage, &info, sizeof info);

    std::memset(&shared_info, 0, sizeof shared_info);
    shared_info.arch.max_pfn = frames.pages;
    const bool list = p2m_form == "list" || p2m_form == "unmapped";
    shared_info.arch.pfn_to_mfn_frame_list_list = p2m_form == "tree" ? frames.mfn_of(l.fll) : kNone;
    shared_info.arch.p2m_cr3 = list ? frames.mfn_of(l.kernel_l4) << 12 : 0;
    shared_info.arch.p2m_vaddr = p2m_form == "unmapped" ? kP2mVaddr + (1ULL << 30) : list ? kP2mVaddr : 0;
    shared_info.arch.p2m_generation = 2;
    shared_info.vcpu_info[0].evtchn_upcall_mask = 1;
    shared_info.wc_sec = 1700000000;
}

std::vector<std::uint8_t> normalised(const std::uint8_t *memory, std::uint64_t pages,
                                     const std::vector<std::uint32_t> &types, const Frames &frames)
{
    std::vector<std::uint8_t> out(memory, memory + pages * kPage);
    for (std::uint64_t pfn = 0; pfn < pages; ++pfn) {
        const auto level = (types[pfn] & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) >> XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        if (level < 1 || level > 4)
            continue;
        for (unsigned i = 0; i < 512; ++i) {
            std::uint64_t e;
            std::memcpy(&e, out.data() + pfn * kPage + i * 8, 8);
            if (level == 4 && i >= 256 && i <= 271) {
                e = 0;
            } else if (e & 1) {
                const auto to = frames.pfn_of((e & kFrameMask) >> 12);
                if (!to)
                    throw std::runtime_error("xen double: page table " + std::to_string(pfn) +
                                             " maps a frame not the guest's");
                e = (e & ~kFrameMask) | *to << 12;
            }
            std::memcpy(out.data() + pfn * kPage + i * 8, &e, 8);
        }
    }
    return out;
}

} // namespace understudy::testing::xen_double::pv
