#include "checkpoint/kvm/vcpu_state.h"

#include <sys/ioctl.h>

#include <array>
#include <cstring>

#include "checkpoint/kvm/kvm_error.h"
#include "checkpoint/kvm/kvm_flex_abi.h"

namespace understudy::kvm {

namespace {

constexpr std::uint64_t kCr0Pe = 1u << 0, kCr0Mp = 1u << 1, kCr0Et = 1u << 4, kCr0Ne = 1u << 5, kCr0Pg = 1u << 31;
constexpr std::uint64_t kCr4Pae = 1u << 5;
constexpr std::uint64_t kEferLme = 1u << 8, kEferLma = 1u << 10;

// MSRs a guest of ours may change; everything else stays at KVM's reset value.
constexpr std::array<std::uint32_t, 10> kSavedMsrs{
    0x10,       // IA32_TSC
    0x174,      // IA32_SYSENTER_CS
    0x175,      // IA32_SYSENTER_ESP
    0x176,      // IA32_SYSENTER_EIP
    0x277,      // IA32_PAT
    0xc0000081, // STAR
    0xc0000082, // LSTAR
    0xc0000083, // CSTAR
    0xc0000084, // SFMASK
    0xc0000102, // KERNEL_GS_BASE
};

kvm_segment flat_segment(std::uint16_t selector, std::uint8_t type, bool code)
{
    kvm_segment s{};
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = selector;
    s.type = type;
    s.present = 1;
    s.dpl = 0;
    s.db = code ? 0 : 1;
    s.s = 1;
    s.l = code ? 1 : 0;
    s.g = 1;
    return s;
}

template <class T> void ioctl_or_throw(int fd, unsigned long request, T *arg, const char *what)
{
    if (ioctl(fd, request, arg) < 0)
        throw system_error(std::string("vCPU 0: ") + what);
}

template <class T> std::string as_bytes(const T &value)
{
    return std::string(reinterpret_cast<const char *>(&value), sizeof(T));
}

template <class T> void from_bytes(const std::string &bytes, T &value, const char *field)
{
    if (bytes.size() != sizeof(T))
        throw KvmError(std::string("kvm vCPU state: field ") + field + " has " + std::to_string(bytes.size()) +
                       " bytes, expected " + std::to_string(sizeof(T)));
    std::memcpy(&value, bytes.data(), sizeof(T));
}

using MsrBuffer = FlexArray<KvmMsrsHeader, kvm_msr_entry>;

} // namespace

void set_long_mode_entry(int vcpu_fd, const LongModeTables &tables, std::uint64_t entry, std::uint64_t boot_info)
{
    kvm_sregs sregs{};
    ioctl_or_throw(vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    sregs.cs = flat_segment(kCodeSelector, 0xb, true);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(kDataSelector, 0x3, false);
    sregs.gdt.base = tables.gdt_base;
    sregs.gdt.limit = tables.gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr3 = tables.cr3;
    sregs.cr4 = kCr4Pae;
    sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Pg;
    sregs.efer = kEferLme | kEferLma;
    ioctl_or_throw(vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS (long mode)");

    kvm_regs regs{};
    regs.rip = entry;
    regs.rdi = boot_info;
    regs.rflags = 0x2;
    ioctl_or_throw(vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS (entry)");

    kvm_fpu fpu{};
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    ioctl_or_throw(vcpu_fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

VcpuState save_vcpu(int vcpu_fd)
{
    VcpuState s;
    ioctl_or_throw(vcpu_fd, KVM_GET_REGS, &s.regs, "KVM_GET_REGS");
    ioctl_or_throw(vcpu_fd, KVM_GET_SREGS, &s.sregs, "KVM_GET_SREGS");
    ioctl_or_throw(vcpu_fd, KVM_GET_FPU, &s.fpu, "KVM_GET_FPU");
    ioctl_or_throw(vcpu_fd, KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS");
    MsrBuffer buffer(kSavedMsrs.size());
    buffer.header()->nmsrs = kSavedMsrs.size();
    for (std::size_t i = 0; i < kSavedMsrs.size(); ++i)
        buffer.entries()[i].index = kSavedMsrs[i];
    int got = ioctl(vcpu_fd, kKvmGetMsrs, buffer.data());
    if (got < 0)
        throw system_error("vCPU 0: KVM_GET_MSRS");
    // KVM stops at the first MSR it does not know; keep what it returned.
    s.msrs.assign(buffer.entries(), buffer.entries() + got);
    return s;
}

void load_vcpu(int vcpu_fd, const VcpuState &state)
{
    auto sregs = state.sregs;
    auto regs = state.regs;
    auto fpu = state.fpu;
    auto events = state.events;
    ioctl_or_throw(vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
    ioctl_or_throw(vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    ioctl_or_throw(vcpu_fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
    if (state.msrs.size() > kSavedMsrs.size())
        throw KvmError("vCPU 0: " + std::to_string(state.msrs.size()) + " MSRs to load, at most " +
                       std::to_string(kSavedMsrs.size()));
    MsrBuffer buffer(kSavedMsrs.size());
    buffer.header()->nmsrs = static_cast<std::uint32_t>(state.msrs.size());
    std::copy(state.msrs.begin(), state.msrs.end(), buffer.entries());
    int set = ioctl(vcpu_fd, kKvmSetMsrs, buffer.data());
    if (set < 0 || static_cast<std::size_t>(set) != state.msrs.size())
        throw system_error("vCPU 0: KVM_SET_MSRS (" + std::to_string(set) + " of " + std::to_string(state.msrs.size()) +
                           " set)");
    // Only the fields we restore; a stale NMI or SIPI flag must not be applied.
    events.flags = 0;
    ioctl_or_throw(vcpu_fd, KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS");
}

proto::KvmVcpuState to_proto(const VcpuState &state)
{
    proto::KvmVcpuState m;
    m.set_regs(as_bytes(state.regs));
    m.set_sregs(as_bytes(state.sregs));
    m.set_fpu(as_bytes(state.fpu));
    m.set_events(as_bytes(state.events));
    for (const auto &e : state.msrs) {
        auto *msr = m.add_msrs();
        msr->set_index(e.index);
        msr->set_value(e.data);
    }
    return m;
}

VcpuState from_proto(const proto::KvmVcpuState &m)
{
    VcpuState s;
    from_bytes(m.regs(), s.regs, "regs");
    from_bytes(m.sregs(), s.sregs, "sregs");
    from_bytes(m.fpu(), s.fpu, "fpu");
    from_bytes(m.events(), s.events, "events");
    if (static_cast<std::size_t>(m.msrs_size()) > kSavedMsrs.size())
        throw KvmError("kvm vCPU state: " + std::to_string(m.msrs_size()) + " MSRs, at most " +
                       std::to_string(kSavedMsrs.size()) + " expected");
    for (const auto &msr : m.msrs()) {
        if (std::find(kSavedMsrs.begin(), kSavedMsrs.end(), msr.index()) == kSavedMsrs.end())
            throw KvmError("kvm vCPU state: MSR " + std::to_string(msr.index()) + " is not one we restore");
        kvm_msr_entry e{};
        e.index = msr.index();
        e.data = msr.value();
        s.msrs.push_back(e);
    }
    return s;
}

} // namespace understudy::kvm
