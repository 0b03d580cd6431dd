#include "checkpoint/xen/pv_p2m.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/mman.h>

extern "C" {
#include <xenctrl.h>
#include <xenforeignmemory.h>
}

#include "checkpoint/pfn.h"
#include "checkpoint/xen/pv_page_table.h"
#include "checkpoint/xen/xen_session.h"

namespace understudy::xen {

namespace {

constexpr std::uint64_t kPerPage = kPageSize / 8; // 64-bit entries in a page
// Entries Linux marks foreign or identity (top bits), or INVALID_P2M_ENTRY:
// no RAM of the guest's own there. Machine frames fit in 40 bits.
constexpr std::uint64_t kMfnLimit = std::uint64_t{1} << 40;

// Copies `count` 64-bit entries out of the machine frames `frames`.
std::vector<std::uint64_t> read_entries(const XenSession &xen, std::uint32_t domid, const std::string &what,
                                        const std::vector<std::uint64_t> &frames, std::uint64_t count)
{
    if (count * 8 > frames.size() * kPageSize)
        throw std::logic_error("read_entries: " + std::to_string(count) + " entries do not fit in " +
                               std::to_string(frames.size()) + " pages");
    std::vector<xen_pfn_t> arr(frames.begin(), frames.end());
    std::vector<int> err(arr.size(), 0);
    void *base = xenforeignmemory_map(xen.foreign(), domid, PROT_READ, arr.size(), arr.data(), err.data());
    if (!base)
        throw_xen_error("xenforeignmemory_map (" + what + ")", domid, errno);
    std::vector<std::uint64_t> entries(count);
    for (std::size_t i = 0; i < arr.size(); ++i)
        if (err[i] != 0) {
            xenforeignmemory_unmap(xen.foreign(), base, arr.size());
            throw XenError("domain " + std::to_string(domid) + ": page " + std::to_string(i) + " of its " + what +
                               " (machine frame " + std::to_string(frames[i]) +
                               ") cannot be mapped: " + std::strerror(-err[i]),
                           -err[i]);
        }
    std::memcpy(entries.data(), base, count * 8);
    xenforeignmemory_unmap(xen.foreign(), base, arr.size());
    return entries;
}

// The machine frames of the p2m's `leaves` pages, found by walking the
// guest's page tables from machine frame `root` for the virtual addresses
// `vaddr`... (as Xen's map_p2m_list does).
std::vector<std::uint64_t> walk_p2m_list(const XenSession &xen, std::uint32_t domid, const std::string &who,
                                         std::uint64_t root, std::uint64_t vaddr, std::uint64_t leaves)
{
    constexpr std::uint64_t kXenStart = 0xffff800000000000ULL, kXenEnd = 0xffff87ffffffffffULL;
    const std::uint64_t end = vaddr + leaves * kPageSize - 1;
    auto canonical = [](std::uint64_t a) {
        return static_cast<std::int64_t>(a) >> 47 == static_cast<std::int64_t>(a) >> 63;
    };
    if (!canonical(vaddr) || !canonical(end) || end < vaddr || (vaddr <= kXenEnd && end >= kXenStart))
        throw XenError(who + ": its p2m's virtual addresses " + std::to_string(vaddr) + "-" + std::to_string(end) +
                           " are not a range a guest can map",
                       ERANGE);
    std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> tables; // machine frame -> its entries
    auto entry = [&](std::uint64_t table, unsigned index) {
        auto it = tables.find(table);
        if (it == tables.end())
            it = tables.emplace(table, read_entries(xen, domid, "page tables", {table}, kPerPage)).first;
        return it->second[index];
    };
    std::vector<std::uint64_t> mfns;
    mfns.reserve(leaves);
    for (std::uint64_t i = 0; i < leaves; ++i) {
        const std::uint64_t at = vaddr + i * kPageSize;
        std::uint64_t frame = root;
        for (unsigned level = 4; level >= 1; --level) {
            const auto e = entry(frame, static_cast<unsigned>(at >> (12 + 9 * (level - 1)) & 511));
            if (!(e & 1) || (level > 1 && (e & 0x80)))
                throw XenError(who + ": its p2m at virtual address " + std::to_string(at) + " is " +
                                   ((e & 1) ? "mapped by a superpage" : "not mapped") + " (level " +
                                   std::to_string(level) + " of the page tables p2m_cr3 names)",
                               ERANGE);
            frame = (e & kPteFrameMask) >> 12;
        }
        mfns.push_back(frame);
    }
    return mfns;
}

} // namespace

PvP2m read_pv_p2m(const XenSession &xen, std::uint32_t domid, const std::string &name,
                  const shared_info_x86_64 &shared_info, std::uint64_t pages)
{
    const auto &arch = shared_info.arch;
    const std::string who = "PV domain " + name;
    if (arch.max_pfn == 0)
        throw XenError(who + " has not published its p2m (shared info max_pfn is 0): is it still booting?", EAGAIN);
    if (arch.max_pfn > pages)
        throw XenError(who + " now has frames up to " + std::to_string(arch.max_pfn - 1) + ", past the " +
                           std::to_string(pages) +
                           " it had when protection started (memory added beyond maxmem?): protect it again",
                       ERANGE);
    PvP2m p2m;
    p2m.max_pfn = arch.max_pfn - 1;
    p2m.cr3 = arch.p2m_cr3;
    p2m.vaddr = arch.p2m_vaddr;
    p2m.generation = arch.p2m_generation;
    p2m.frame_list_list = arch.pfn_to_mfn_frame_list_list;
    const std::uint64_t leaves = p2m.max_pfn / kPerPage + 1;
    std::vector<std::uint64_t> leaf_mfns, list_mfns;
    if (p2m.cr3 != 0) { // the virtual-address list, which Xen's save prefers too
        leaf_mfns = walk_p2m_list(xen, domid, who, p2m.cr3 >> 12, p2m.vaddr, leaves);
    } else if (p2m.frame_list_list != 0 && p2m.frame_list_list != ~std::uint64_t{0}) {
        const std::uint64_t lists = p2m.max_pfn / (kPerPage * kPerPage) + 1;
        if (lists > kPerPage)
            throw XenError(who + " has max_pfn " + std::to_string(p2m.max_pfn) + ", too large for a p2m tree", E2BIG);
        list_mfns = read_entries(xen, domid, "p2m frame list list", {p2m.frame_list_list}, lists);
        for (std::uint64_t i = 0; i < lists; ++i)
            if (list_mfns[i] == 0 || list_mfns[i] >= kMfnLimit)
                throw XenError(who + ": entry " + std::to_string(i) + " of its p2m frame list list is " +
                                   std::to_string(list_mfns[i]) + ", not a machine frame",
                               ERANGE);
        leaf_mfns = read_entries(xen, domid, "p2m frame lists", list_mfns, leaves);
        for (std::uint64_t i = 0; i < leaves; ++i)
            if (leaf_mfns[i] == 0 || leaf_mfns[i] >= kMfnLimit)
                throw XenError(who + ": entry " + std::to_string(i) + " of its p2m frame lists is " +
                                   std::to_string(leaf_mfns[i]) + ", not a machine frame",
                               ERANGE);
        list_mfns.insert(list_mfns.begin(), p2m.frame_list_list);
    } else {
        throw XenError(who + " publishes no p2m in its shared info page (neither p2m_cr3 nor a frame list list)",
                       EOPNOTSUPP);
    }
    p2m.mfns = read_entries(xen, domid, "p2m", leaf_mfns, p2m.max_pfn + 1);

    p2m.pfn_of_mfn.reserve(p2m.mfns.size());
    for (std::uint64_t pfn = 0; pfn <= p2m.max_pfn; ++pfn) {
        auto &mfn = p2m.mfns[pfn];
        if (mfn >= kMfnLimit) {
            mfn = kNoFrame;
            continue;
        }
        if (auto [it, added] = p2m.pfn_of_mfn.emplace(mfn, pfn); !added)
            throw XenError(who + ": its p2m gives frames " + std::to_string(it->second) + " and " +
                               std::to_string(pfn) + " the same machine frame " + std::to_string(mfn) +
                               "; Xen's migration cannot keep that sharing either",
                           EINVAL);
    }
    auto to_pfn = [&](std::uint64_t mfn, const char *what) {
        const auto pfn = p2m.pfn_of(mfn);
        if (!pfn)
            throw XenError(who + ": a page of its " + what + " (machine frame " + std::to_string(mfn) +
                               ") is not one of its own frames",
                           ERANGE);
        return *pfn;
    };
    for (auto mfn : leaf_mfns)
        p2m.leaf_pfns.push_back(to_pfn(mfn, "p2m"));
    for (auto mfn : list_mfns)
        p2m.list_pfns.push_back(to_pfn(mfn, "p2m frame lists"));
    return p2m;
}

} // namespace understudy::xen
