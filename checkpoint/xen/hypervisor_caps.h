// What this host's hypervisor can do for a domain (xc_physinfo's
// capabilities, which `xl info` prints as virt_caps), and why a domain cannot
// be protected from or restored on it. Known before protection starts, not at
// the first checkpoint or at failover.
#pragma once

#include <string>

#include "checkpoint/xen/xen_session.h"

namespace understudy::xen {

struct HypervisorCaps {
    bool pv = false;     // can run PV domains
    bool hvm = false;    // can run HVM and PVH domains
    bool hap = false;    // hardware-assisted paging: log-dirty for HVM/PVH
    bool shadow = false; // shadow paging: log-dirty for PV (and HVM/PVH without HAP)

    // As `xl info` lists them: "pv hvm hap shadow".
    [[nodiscard]] std::string virt_caps() const;
};

// Throws XenError when xc_physinfo fails.
[[nodiscard]] HypervisorCaps read_hypervisor_caps(const XenSession &xen);

// Why domain `name` of `type` ("pv", "hvm", "pvh") cannot be protected here:
// its dirty pages cannot be tracked. "" when they can.
[[nodiscard]] std::string log_dirty_problem(const HypervisorCaps &caps, const std::string &type,
                                            const std::string &name);

// Why a standby of `type` cannot be run here at failover. "" when it can.
[[nodiscard]] std::string domain_type_problem(const HypervisorCaps &caps, const std::string &type,
                                              const std::string &name);

} // namespace understudy::xen
