// What a Xen domain's vCPUs are told about their CPU besides registers: its
// CPUID and MSR policy, and its TSC mode and frequency. Xen's save stream
// carries them (X86_CPUID_POLICY, X86_MSR_POLICY, X86_TSC_INFO records,
// xg_sr_common_x86.c) and its restore applies them before the domain first
// runs; understudy carries them in each checkpoint's CPU state and applies
// them to the domain it builds at failover, before loading the HVM context.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/xen/xen_session.h"
#include "proto/vm_state.pb.h"

namespace understudy::xen {

// The domain's CPUID leaves and MSRs in Xen's serialised form
// (xen_cpuid_leaf_t[], xen_msr_entry_t[]), and its TSC settings, into `into`.
void read_cpu_policy(XenSession &xen, std::uint32_t domid, proto::XenCpuState &into);
void read_tsc_info(XenSession &xen, std::uint32_t domid, proto::XenCpuState &into);

// Why this state's policy or TSC settings are malformed ("" if they are
// not): sizes that are not whole entries, too many entries, a TSC mode Xen
// does not have.
[[nodiscard]] std::string cpu_policy_problem(const proto::XenCpuState &state);

// Why this host cannot run a domain with this policy ("" if it can), by
// Xen's own rule (xc_cpu_policy_is_compatible against this host's maximum
// policy for the domain type).
[[nodiscard]] std::string host_cannot_run(XenSession &xen, const proto::XenCpuState &state);

// What Xen changed of this policy on domain `domid`, restored from it: one
// line per CPUID leaf or MSR (it masks features this host lacks, and the
// guest will not see them).
std::vector<std::string> policy_changes(XenSession &xen, std::uint32_t domid, const proto::XenCpuState &state);

} // namespace understudy::xen
