#include "checkpoint/xen/cpu_policy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

extern "C" {
#include <xenctrl.h>
#include <xenguest.h>
}

namespace understudy::xen {

namespace {

constexpr std::size_t kMaxEntries = 4096; // Xen's policies have about 100 leaves and a few MSRs

struct PolicyDeleter {
    void operator()(xc_cpu_policy_t *p) const noexcept { xc_cpu_policy_destroy(p); }
};
using Policy = std::unique_ptr<xc_cpu_policy_t, PolicyDeleter>;

Policy new_policy(std::uint32_t domid)
{
    Policy p(xc_cpu_policy_init());
    if (!p)
        throw_xen_error("xc_cpu_policy_init", domid, ENOMEM);
    return p;
}

template <class T> std::vector<T> entries_of(const std::string &bytes)
{
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!out.empty())
        std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
}

// A domain's policy, serialised.
std::pair<std::vector<xen_cpuid_leaf_t>, std::vector<xen_msr_entry_t>> serialised(XenSession &xen, std::uint32_t domid)
{
    std::uint32_t nr_leaves = 0, nr_msrs = 0;
    if (xc_cpu_policy_get_size(xen.xc(), &nr_leaves, &nr_msrs) != 0)
        throw_xen_error("xc_cpu_policy_get_size", domid, errno);
    auto policy = new_policy(domid);
    if (xc_cpu_policy_get_domain(xen.xc(), domid, policy.get()) != 0)
        throw_xen_error("xc_cpu_policy_get_domain", domid, errno);
    std::vector<xen_cpuid_leaf_t> leaves(nr_leaves);
    std::vector<xen_msr_entry_t> msrs(nr_msrs);
    if (xc_cpu_policy_serialise(xen.xc(), policy.get(), leaves.data(), &nr_leaves, msrs.data(), &nr_msrs) != 0)
        throw_xen_error("xc_cpu_policy_serialise", domid, errno);
    leaves.resize(std::min<std::size_t>(nr_leaves, leaves.size()));
    msrs.resize(std::min<std::size_t>(nr_msrs, msrs.size()));
    return {std::move(leaves), std::move(msrs)};
}

std::string hex(std::uint32_t v)
{
    char text[16];
    std::snprintf(text, sizeof text, "%#x", v);
    return text;
}

std::string leaf_name(const xen_cpuid_leaf_t &l)
{
    return "CPUID leaf " + hex(l.leaf) + (l.subleaf == XEN_CPUID_NO_SUBLEAF ? "" : "/" + std::to_string(l.subleaf));
}

} // namespace

void read_cpu_policy(XenSession &xen, std::uint32_t domid, proto::XenCpuState &into)
{
    auto [leaves, msrs] = serialised(xen, domid);
    into.set_cpuid_policy(std::string(reinterpret_cast<const char *>(leaves.data()), leaves.size() * sizeof leaves[0]));
    into.set_msr_policy(std::string(reinterpret_cast<const char *>(msrs.data()), msrs.size() * sizeof msrs[0]));
}

void read_tsc_info(XenSession &xen, std::uint32_t domid, proto::XenCpuState &into)
{
    std::uint32_t mode = 0, khz = 0, incarnation = 0;
    std::uint64_t nsec = 0;
    if (xc_domain_get_tsc_info(xen.xc(), domid, &mode, &nsec, &khz, &incarnation) != 0)
        throw_xen_error("xc_domain_get_tsc_info", domid, errno);
    auto *tsc = into.mutable_tsc();
    tsc->set_mode(mode);
    tsc->set_elapsed_nsec(nsec);
    tsc->set_gtsc_khz(khz);
    tsc->set_incarnation(incarnation);
}

std::string cpu_policy_problem(const proto::XenCpuState &state)
{
    const auto &cpuid = state.cpuid_policy();
    const auto &msrs = state.msr_policy();
    if (cpuid.size() % sizeof(xen_cpuid_leaf_t) || cpuid.size() / sizeof(xen_cpuid_leaf_t) > kMaxEntries)
        return "a CPUID policy of " + std::to_string(cpuid.size()) + " bytes, which is not a whole number of leaves "
               "of " + std::to_string(sizeof(xen_cpuid_leaf_t)) + " bytes, up to " + std::to_string(kMaxEntries);
    if (msrs.size() % sizeof(xen_msr_entry_t) || msrs.size() / sizeof(xen_msr_entry_t) > kMaxEntries)
        return "an MSR policy of " + std::to_string(msrs.size()) + " bytes, which is not a whole number of entries "
               "of " + std::to_string(sizeof(xen_msr_entry_t)) + " bytes, up to " + std::to_string(kMaxEntries);
    if (state.has_tsc() && state.tsc().mode() > 3) // XEN_CPUID_TSC_MODE_DEFAULT .. PVRDTSCP
        return "TSC mode " + std::to_string(state.tsc().mode()) + ", which Xen does not have";
    return "";
}

std::string host_cannot_run(XenSession &xen, const proto::XenCpuState &state)
{
    if (state.cpuid_policy().empty() && state.msr_policy().empty())
        return "";
    auto host = new_policy(0);
    const unsigned index = state.domain_type() == "pv" ? XEN_SYSCTL_cpu_policy_pv_max : XEN_SYSCTL_cpu_policy_hvm_max;
    if (xc_cpu_policy_get_system(xen.xc(), index, host.get()) != 0)
        return std::string("this host's CPU policy cannot be read (xc_cpu_policy_get_system: ") + std::strerror(errno) +
               ")";
    auto guest = new_policy(0);
    const auto leaves = entries_of<xen_cpuid_leaf_t>(state.cpuid_policy());
    const auto msrs = entries_of<xen_msr_entry_t>(state.msr_policy());
    if (!leaves.empty() && xc_cpu_policy_update_cpuid(xen.xc(), guest.get(), leaves.data(),
                                                      static_cast<std::uint32_t>(leaves.size())) != 0)
        return std::string("its CPUID policy is not one Xen accepts (") + std::strerror(errno) + ")";
    if (!msrs.empty() &&
        xc_cpu_policy_update_msrs(xen.xc(), guest.get(), msrs.data(), static_cast<std::uint32_t>(msrs.size())) != 0)
        return std::string("its MSR policy is not one Xen accepts (") + std::strerror(errno) + ")";
    if (!xc_cpu_policy_is_compatible(xen.xc(), host.get(), guest.get()))
        return "its CPU policy (CPUID leaves, MSRs) is beyond what this host's CPUs can give a " + state.domain_type() +
               " domain, by Xen's rule (xc_cpu_policy_is_compatible): fail over to a host with the same CPU "
               "model, or level the CPUID with cpuid= in xl.cfg on both hosts";
    return "";
}

std::vector<std::string> policy_changes(XenSession &xen, std::uint32_t domid, const proto::XenCpuState &state)
{
    std::vector<std::string> changed;
    const auto leaves = entries_of<xen_cpuid_leaf_t>(state.cpuid_policy());
    const auto msrs = entries_of<xen_msr_entry_t>(state.msr_policy());
    if (leaves.empty() && msrs.empty())
        return changed;
    auto [now_leaves, now_msrs] = serialised(xen, domid);
    std::map<std::pair<std::uint32_t, std::uint32_t>, xen_cpuid_leaf_t> now;
    for (const auto &l : now_leaves)
        now[{l.leaf, l.subleaf}] = l;
    for (const auto &l : leaves) {
        auto it = now.find({l.leaf, l.subleaf});
        if (it == now.end())
            changed.push_back(leaf_name(l) + " is gone on this host");
        else if (std::tie(it->second.a, it->second.b, it->second.c, it->second.d) != std::tie(l.a, l.b, l.c, l.d))
            changed.push_back(leaf_name(l) + " differs on this host: ecx " + hex(l.c) + " -> " + hex(it->second.c) +
                              ", edx " + hex(l.d) + " -> " + hex(it->second.d));
    }
    std::map<std::uint32_t, std::uint64_t> now_msr;
    for (const auto &m : now_msrs)
        now_msr[m.idx] = m.val;
    for (const auto &m : msrs)
        if (auto it = now_msr.find(m.idx); it == now_msr.end() || it->second != m.val)
            changed.push_back("MSR " + hex(m.idx) + " differs on this host");
    return changed;
}

} // namespace understudy::xen
