#include "checkpoint/xen/hypervisor_caps.h"

#include <cerrno>

extern "C" {
#include <xenctrl.h>
}

namespace understudy::xen {

std::string HypervisorCaps::virt_caps() const
{
    std::string out;
    auto add = [&out](bool has, const char *name) {
        if (has)
            out += (out.empty() ? "" : " ") + std::string(name);
    };
    add(pv, "pv");
    add(hvm, "hvm");
    add(hap, "hap");
    add(shadow, "shadow");
    return out.empty() ? "none" : out;
}

HypervisorCaps read_hypervisor_caps(const XenSession &xen)
{
    xc_physinfo_t info{};
    if (xc_physinfo(xen.xc(), &info) != 0)
        throw XenError(std::string("xc_physinfo (what this hypervisor can do) failed: errno ") + std::to_string(errno),
                       errno);
    HypervisorCaps caps;
    caps.pv = (info.capabilities & XEN_SYSCTL_PHYSCAP_pv) != 0;
    caps.hvm = (info.capabilities & XEN_SYSCTL_PHYSCAP_hvm) != 0;
    caps.hap = (info.capabilities & XEN_SYSCTL_PHYSCAP_hap) != 0;
    caps.shadow = (info.capabilities & XEN_SYSCTL_PHYSCAP_shadow) != 0;
    return caps;
}

std::string log_dirty_problem(const HypervisorCaps &caps, const std::string &type, const std::string &name)
{
    if (type == "pv" && !caps.shadow)
        return "domain " + name +
               " is a PV guest, and Xen tracks a PV guest's dirty pages only with shadow paging, which this "
               "hypervisor is built without (xl info: virt_caps " +
               caps.virt_caps() +
               "; Debian 12's Xen 4.17 has no CONFIG_SHADOW_PAGING). Protect it on a Xen built with "
               "CONFIG_SHADOW_PAGING=y, or run the guest as PVH (type = \"pvh\") or HVM";
    if ((type == "hvm" || type == "pvh") && !caps.hap && !caps.shadow)
        return "domain " + name + " is a " + type +
               " guest, and Xen tracks its dirty pages with hardware-assisted paging (HAP) or shadow paging; this "
               "host has neither (xl info: virt_caps " +
               caps.virt_caps() + "). Enable EPT/NPT in the firmware (or the outer hypervisor), or use a Xen built "
                                  "with CONFIG_SHADOW_PAGING=y";
    return "";
}

std::string domain_type_problem(const HypervisorCaps &caps, const std::string &type, const std::string &name)
{
    if (type == "pv" && !caps.pv)
        return "guest " + name + " is a PV domain, and this hypervisor cannot run PV domains (xl info: virt_caps " +
               caps.virt_caps() + "), so its standby could never be started here";
    if ((type == "hvm" || type == "pvh") && !caps.hvm)
        return "guest " + name + " is a " + type +
               " domain, and this hypervisor cannot run HVM or PVH domains (xl info: virt_caps " + caps.virt_caps() +
               "; is hardware virtualization enabled?), so its standby could never be started here";
    return "";
}

} // namespace understudy::xen
