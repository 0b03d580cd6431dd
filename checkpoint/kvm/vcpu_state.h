// The architectural state of one KVM vCPU: set up for the first instruction,
// saved when paused, loaded into a new VM on restore, and converted to and
// from the versioned checkpoint message (proto/vm_state.proto).
#pragma once

#include <linux/kvm.h>

#include <vector>

#include "checkpoint/kvm/page_tables.h"
#include "proto/vm_state.pb.h"

namespace understudy::kvm {

// Version of what CpuState's kvm branch holds; bump when its meaning changes.
inline constexpr std::uint32_t kKvmCpuStateFormat = 1;

struct VcpuState {
    kvm_regs regs{};
    kvm_sregs sregs{};
    kvm_fpu fpu{};
    std::vector<kvm_msr_entry> msrs;
    kvm_vcpu_events events{};
};

// 64-bit mode, paging on through `tables`, at `entry` with %rdi = boot_info.
void set_long_mode_entry(int vcpu_fd, const LongModeTables &tables, std::uint64_t entry, std::uint64_t boot_info);

// Precondition: the vCPU is out of KVM_RUN with no pending I/O.
[[nodiscard]] VcpuState save_vcpu(int vcpu_fd);
void load_vcpu(int vcpu_fd, const VcpuState &state);

[[nodiscard]] proto::KvmVcpuState to_proto(const VcpuState &state);
// Throws KvmError if a field has the wrong size or too many MSRs are listed.
[[nodiscard]] VcpuState from_proto(const proto::KvmVcpuState &message);

} // namespace understudy::kvm
