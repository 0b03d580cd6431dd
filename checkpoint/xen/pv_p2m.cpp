#include "checkpoint/xen/pv_p2m.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

extern "C" {
#include <xenctrl.h>
#include <xenforeignmemory.h>
}

#include "checkpoint/pfn.h"
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

} // namespace

PvP2m read_pv_p2m(const XenSession &xen, std::uint32_t domid, const std::string &name,
                  const shared_info_x86_64 &shared_info)
{
    const auto &arch = shared_info.arch;
    const std::string who = "PV domain " + name;
    if (arch.max_pfn == 0)
        throw XenError(who + " has not published its p2m (shared info max_pfn is 0): is it still booting?", EAGAIN);
    PvP2m p2m;
    p2m.max_pfn = arch.max_pfn - 1;
    const std::uint64_t fll = arch.pfn_to_mfn_frame_list_list;
    if (fll == 0 || fll == ~std::uint64_t{0})
        throw XenError(who + " publishes its p2m only as a virtual-address list (p2m_cr3/p2m_vaddr, "
                             "SIF_VIRT_P2M_4TOOLS), not as the frame list list understudy reads",
                       EOPNOTSUPP);
    const std::uint64_t leaves = p2m.max_pfn / kPerPage + 1;
    const std::uint64_t lists = leaves / kPerPage + 1;
    if (lists > kPerPage)
        throw XenError(who + " has max_pfn " + std::to_string(p2m.max_pfn) + ", too large for a p2m tree", E2BIG);

    const auto list_mfns = read_entries(xen, domid, "p2m frame list list", {fll}, lists);
    for (std::uint64_t i = 0; i < lists; ++i)
        if (list_mfns[i] == 0 || list_mfns[i] >= kMfnLimit)
            throw XenError(who + ": entry " + std::to_string(i) + " of its p2m frame list list is " +
                               std::to_string(list_mfns[i]) + ", not a machine frame",
                           ERANGE);
    const auto leaf_mfns = read_entries(xen, domid, "p2m frame lists", list_mfns, leaves);
    for (std::uint64_t i = 0; i < leaves; ++i)
        if (leaf_mfns[i] == 0 || leaf_mfns[i] >= kMfnLimit)
            throw XenError(who + ": entry " + std::to_string(i) + " of its p2m frame lists is " +
                               std::to_string(leaf_mfns[i]) + ", not a machine frame",
                           ERANGE);
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
    p2m.list_pfns.push_back(to_pfn(fll, "p2m frame list list"));
    for (auto mfn : list_mfns)
        p2m.list_pfns.push_back(to_pfn(mfn, "p2m frame lists"));
    return p2m;
}

} // namespace understudy::xen
