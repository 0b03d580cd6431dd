#include "checkpoint/xen/pv_state.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "checkpoint/xen/pv_page_table.h"
#include "checkpoint/xen/xen_session.h"

extern "C" {
#include <xenctrl.h>
}

namespace understudy::xen {

namespace {

constexpr unsigned kGdtEntriesPerFrame = 512;

std::uint64_t pfn_or_throw(const PvP2m &p2m, std::uint64_t mfn, std::uint32_t domid, const std::string &what)
{
    const auto pfn = p2m.pfn_of(mfn);
    if (!pfn)
        throw XenError("domain " + std::to_string(domid) + ": " + what + " is machine frame " + std::to_string(mfn) +
                           ", which is not one of the domain's frames",
                       ERANGE);
    return *pfn;
}

// Runs `domctl` on `domid`; throws XenError naming `call` if Xen refuses.
void run_domctl(const XenSession &xen, std::uint32_t domid, xen_domctl &domctl, const std::string &call)
{
    domctl.domain = static_cast<domid_t>(domid);
    if (xc_domctl(xen.xc(), &domctl) != 0)
        throw_xen_error(call, domid, errno);
}

std::string basic_context(const XenSession &xen, std::uint32_t domid, std::uint32_t vcpu, const PvP2m &p2m)
{
    vcpu_guest_context_any_t any{};
    if (xc_vcpu_getcontext(xen.xc(), domid, vcpu, &any) != 0)
        throw_xen_error("xc_vcpu_getcontext(vCPU " + std::to_string(vcpu) + ")", domid, errno);
    auto &c = any.x64;
    const std::string v = "vCPU " + std::to_string(vcpu) + "'s ";
    if (vcpu == 0) // the suspend record: the start info page
        c.user_regs.rdx = pfn_or_throw(p2m, c.user_regs.rdx, domid, v + "suspend record (rdx)");
    if (c.gdt_ents > FIRST_RESERVED_GDT_ENTRY)
        throw XenError("domain " + std::to_string(domid) + ": " + v + "GDT has " + std::to_string(c.gdt_ents) +
                           " entries, more than a PV guest may have",
                       ERANGE);
    for (unsigned i = 0; i < (c.gdt_ents + kGdtEntriesPerFrame - 1) / kGdtEntriesPerFrame; ++i)
        c.gdt_frames[i] = pfn_or_throw(p2m, c.gdt_frames[i], domid, v + "GDT frame " + std::to_string(i));
    c.ctrlreg[3] = pfn_or_throw(p2m, c.ctrlreg[3] >> 12, domid, v + "cr3") << 12;
    if (c.ctrlreg[1] != 0) // the user page tables of a 64-bit guest
        c.ctrlreg[1] = 1 | pfn_or_throw(p2m, c.ctrlreg[1] >> 12, domid, v + "user cr3 (cr1)") << 12;
    return {reinterpret_cast<const char *>(&c), sizeof c};
}

std::string extended_context(const XenSession &xen, std::uint32_t domid, std::uint32_t vcpu)
{
    xen_domctl domctl{};
    domctl.cmd = XEN_DOMCTL_get_ext_vcpucontext;
    domctl.u.ext_vcpucontext.vcpu = vcpu;
    run_domctl(xen, domid, domctl, "XEN_DOMCTL_get_ext_vcpucontext(vCPU " + std::to_string(vcpu) + ")");
    const auto size = std::min<std::size_t>(domctl.u.ext_vcpucontext.size, sizeof domctl.u.ext_vcpucontext);
    return {reinterpret_cast<const char *>(&domctl.u.ext_vcpucontext), size};
}

std::string xsave_area(const XenSession &xen, std::uint32_t domid, std::uint32_t vcpu)
{
    xen_domctl domctl{};
    domctl.cmd = XEN_DOMCTL_getvcpuextstate;
    domctl.u.vcpuextstate.vcpu = vcpu;
    const std::string call = "XEN_DOMCTL_getvcpuextstate(vCPU " + std::to_string(vcpu) + ")";
    run_domctl(xen, domid, domctl, call); // its size first
    if (domctl.u.vcpuextstate.xfeature_mask == 0 || domctl.u.vcpuextstate.size == 0)
        return "";
    HypercallBuffer buffer(xen.xc(), domctl.u.vcpuextstate.size);
    set_xen_guest_handle_raw(domctl.u.vcpuextstate.buffer, static_cast<std::uint64_t *>(buffer.data()));
    run_domctl(xen, domid, domctl, call);
    const auto size = std::min<std::size_t>(domctl.u.vcpuextstate.size, buffer.size());
    return {static_cast<const char *>(buffer.data()), size};
}

std::string msrs(const XenSession &xen, std::uint32_t domid, std::uint32_t vcpu)
{
    xen_domctl domctl{};
    domctl.cmd = XEN_DOMCTL_get_vcpu_msrs;
    domctl.u.vcpu_msrs.vcpu = vcpu;
    const std::string call = "XEN_DOMCTL_get_vcpu_msrs(vCPU " + std::to_string(vcpu) + ")";
    run_domctl(xen, domid, domctl, call); // how many first
    if (domctl.u.vcpu_msrs.msr_count == 0)
        return "";
    const std::size_t capacity = domctl.u.vcpu_msrs.msr_count;
    HypercallBuffer buffer(xen.xc(), capacity * sizeof(xen_domctl_vcpu_msr_t));
    set_xen_guest_handle_raw(domctl.u.vcpu_msrs.msrs, static_cast<xen_domctl_vcpu_msr_t *>(buffer.data()));
    run_domctl(xen, domid, domctl, call);
    const auto count = std::min<std::size_t>(domctl.u.vcpu_msrs.msr_count, capacity);
    return {static_cast<const char *>(buffer.data()), count * sizeof(xen_domctl_vcpu_msr_t)};
}

} // namespace

void read_page_types(const XenSession &xen, std::uint32_t domid, HypercallBuffer &scratch,
                     std::span<std::uint64_t> frames)
{
    if (frames.size() > kTypeBatch || scratch.size() < kTypeBatch * sizeof(xen_pfn_t))
        throw std::logic_error("read_page_types: batch larger than its buffer");
    if (frames.empty())
        return;
    auto *arr = static_cast<xen_pfn_t *>(scratch.data());
    for (std::size_t i = 0; i < frames.size(); ++i)
        arr[i] = frames[i];
    xen_domctl domctl{};
    domctl.cmd = XEN_DOMCTL_getpageframeinfo3;
    domctl.u.getpageframeinfo3.num = frames.size();
    set_xen_guest_handle_raw(domctl.u.getpageframeinfo3.array, arr);
    run_domctl(xen, domid, domctl, "XEN_DOMCTL_getpageframeinfo3 (" + std::to_string(frames.size()) + " frames)");
    for (std::size_t i = 0; i < frames.size(); ++i)
        frames[i] = arr[i] & XEN_DOMCTL_PFINFO_LTAB_MASK;
}

void save_pv_vcpus(const XenSession &xen, std::uint32_t domid, unsigned max_vcpus, const PvP2m &p2m,
                   proto::XenPvState &into)
{
    for (std::uint32_t id = 0; id < max_vcpus; ++id) {
        xc_vcpuinfo_t info{};
        if (xc_vcpu_getinfo(xen.xc(), domid, id, &info) != 0)
            throw_xen_error("xc_vcpu_getinfo(vCPU " + std::to_string(id) + ")", domid, errno);
        if (!info.online)
            continue; // Xen's save leaves offline vCPUs out too
        auto *v = into.add_vcpus();
        v->set_id(id);
        v->set_basic(basic_context(xen, domid, id, p2m));
        v->set_extended(extended_context(xen, domid, id));
        v->set_xsave(xsave_area(xen, domid, id));
        v->set_msrs(msrs(xen, domid, id));
    }
}

std::string pv_state_problem(const proto::XenPvState &pv, std::uint64_t pages, unsigned max_vcpus,
                             const PageTableMap *committed)
{
    if (pv.guest_width() != 8)
        return "a PV guest " + std::to_string(pv.guest_width() * 8) + " bits wide (only 64-bit ones are protected)";
    if (pv.max_pfn() >= pages || pv.max_pfn() > 0xffffffffu)
        return "a p2m up to frame " + std::to_string(pv.max_pfn()) + ", past the guest's " + std::to_string(pages) +
               " frames";
    if (static_cast<std::uint64_t>(pv.p2m_frames_size()) != pv.max_pfn() / 512 + 1)
        return std::to_string(pv.p2m_frames_size()) + " p2m frames for a p2m up to frame " +
               std::to_string(pv.max_pfn());
    for (auto pfn : pv.p2m_frames())
        if (pfn > pv.max_pfn())
            return "a p2m frame at " + std::to_string(pfn) + ", outside the guest";
    if (pv.shared_info().size() != 4096)
        return "a shared info page of " + std::to_string(pv.shared_info().size()) + " bytes";
    if (pv.vcpus_size() == 0 || pv.vcpus(0).id() != 0)
        return "no state for vCPU 0";
    std::vector<bool> seen(max_vcpus, false);
    for (const auto &v : pv.vcpus()) {
        const auto name = "vCPU " + std::to_string(v.id());
        if (v.id() >= max_vcpus)
            return "state for " + name + ", while its xl.cfg here gives it " + std::to_string(max_vcpus);
        if (seen[v.id()])
            return "two states for " + name;
        seen[v.id()] = true;
        if (v.basic().size() != sizeof(vcpu_guest_context_x86_64_t))
            return "a basic context of " + std::to_string(v.basic().size()) + " bytes for " + name;
        if (v.extended().size() > 128)
            return "an extended context of " + std::to_string(v.extended().size()) + " bytes for " + name;
        if (!v.xsave().empty() && (v.xsave().size() < 16 || v.xsave().size() > (1u << 20)))
            return "an xsave area of " + std::to_string(v.xsave().size()) + " bytes for " + name;
        if (v.msrs().size() % sizeof(xen_domctl_vcpu_msr_t) != 0 || v.msrs().size() > (1u << 20))
            return "an MSR list of " + std::to_string(v.msrs().size()) + " bytes for " + name;
    }
    const bool complete = pv.page_tables_complete();
    if (!complete && !committed)
        return "changes to page tables of which no complete list was committed";
    for (auto entry : pv.page_tables()) {
        const auto pfn = page_table_pfn(entry);
        const auto type = page_table_type(entry);
        if (pfn > pv.max_pfn() || (entry & 0x0ff0000000000000ULL) != 0)
            return "a page table at frame " + std::to_string(pfn) + ", outside the guest";
        const bool none = type == 0 && !complete; // a change: no longer a page table
        const bool table = page_table_level(type) != 0 &&
                           (type & ~(XEN_DOMCTL_PFINFO_LTABTYPE_MASK | XEN_DOMCTL_PFINFO_LPINTAB)) == 0;
        if (!none && !table)
            return "page type " + std::to_string(entry >> 60) + " for frame " + std::to_string(pfn) +
                   ", which is not a page table's";
    }
    // The frames each vCPU's context names, as Xen's restore checks them
    // (process_vcpu_basic): a bad one would fail the restore at failover,
    // after the disks were promoted. Against the page tables as they will
    // be: this checkpoint's list, or its changes over the committed ones.
    std::unordered_map<std::uint64_t, unsigned> levels;
    for (auto entry : pv.page_tables())
        levels[page_table_pfn(entry)] = page_table_level(page_table_type(entry));
    auto level_of = [&](std::uint64_t pfn) {
        if (const auto it = levels.find(pfn); it != levels.end())
            return it->second;
        if (complete)
            return 0u;
        const auto it = committed->find(pfn);
        return it == committed->end() ? 0u : page_table_level(it->second);
    };
    for (const auto &v : pv.vcpus()) {
        vcpu_guest_context_x86_64_t c;
        std::memcpy(&c, v.basic().data(), sizeof c);
        const auto name = "vCPU " + std::to_string(v.id()) + "'s ";
        auto data_frame = [&](std::uint64_t pfn, const std::string &what) -> std::string {
            if (pfn > pv.max_pfn())
                return name + what + " (frame " + std::to_string(pfn) + ") is outside the guest";
            if (level_of(pfn) != 0)
                return name + what + " (frame " + std::to_string(pfn) + ") is a page table";
            return "";
        };
        if (v.id() == 0)
            if (auto problem = data_frame(c.user_regs.rdx, "start info page"); !problem.empty())
                return problem;
        if (c.gdt_ents > FIRST_RESERVED_GDT_ENTRY)
            return name + "GDT has " + std::to_string(c.gdt_ents) + " entries";
        for (unsigned i = 0; i < (c.gdt_ents + 511) / 512; ++i)
            if (auto problem = data_frame(c.gdt_frames[i], "GDT frame " + std::to_string(i)); !problem.empty())
                return problem;
        if (level_of(c.ctrlreg[3] >> 12) != 4)
            return name + "cr3 (frame " + std::to_string(c.ctrlreg[3] >> 12) + ") is not an L4 page table";
        if ((c.ctrlreg[1] & 1) && level_of(c.ctrlreg[1] >> 12) != 4)
            return name + "user cr3 (frame " + std::to_string(c.ctrlreg[1] >> 12) + ") is not an L4 page table";
    }
    for (auto pfn : pv.p2m_frames())
        if (level_of(pfn) != 0)
            return "a p2m frame at " + std::to_string(pfn) + " that is a page table";
    return "";
}

void apply_page_tables(const proto::XenPvState &pv, PageTableMap &tables)
{
    if (pv.page_tables_complete()) {
        PageTableMap complete; // built aside, swapped in whole
        complete.reserve(static_cast<std::size_t>(pv.page_tables_size()));
        for (auto entry : pv.page_tables())
            if (const auto type = page_table_type(entry); type != 0)
                complete[page_table_pfn(entry)] = type;
        tables.swap(complete);
        return;
    }
    // Changes, the last entry for a frame winning. Everything that allocates
    // happens before `tables` changes: the final types, the nodes of new
    // page tables (in `added`) and the room for them. What follows cannot
    // fail: assignments, erasures and moving the prepared nodes over.
    PageTableMap final_types;
    final_types.reserve(static_cast<std::size_t>(pv.page_tables_size()));
    for (auto entry : pv.page_tables())
        final_types[page_table_pfn(entry)] = page_table_type(entry);
    PageTableMap added;
    for (const auto &[pfn, type] : final_types)
        if (type != 0 && !tables.contains(pfn))
            added.emplace(pfn, type);
    tables.reserve(tables.size() + added.size());
    for (const auto &[pfn, type] : final_types) {
        if (const auto it = tables.find(pfn); it != tables.end()) {
            if (type != 0)
                it->second = type;
            else
                tables.erase(it);
        }
    }
    tables.merge(added);
}

} // namespace understudy::xen
