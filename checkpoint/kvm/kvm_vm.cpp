#include "checkpoint/kvm/kvm_vm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <memory>
#include <vector>

#include "checkpoint/kvm/kvm_error.h"
#include "checkpoint/kvm/kvm_flex_abi.h"

namespace understudy::kvm {

namespace {
constexpr unsigned kMaxCpuidEntries = 256;
// Intel needs three pages for the real-mode TSS below 4 GiB, outside RAM.
constexpr unsigned long kTssAddress = 0xfffbd000;
} // namespace

bool KvmVm::available(std::string *why)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (why)
            *why = std::string("/dev/kvm: ") + std::strerror(errno);
        return false;
    }
    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    close(fd);
    if (version != KVM_API_VERSION) {
        if (why)
            *why =
                "/dev/kvm speaks API version " + std::to_string(version) + ", not " + std::to_string(KVM_API_VERSION);
        return false;
    }
    return true;
}

KvmVm::KvmVm(GuestMemory &memory, std::string name) : memory_(memory), name_(std::move(name))
{
    const std::string who = "VM " + name_;
    kvm_ = UniqueFd(open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm_)
        throw system_error(who + ": open /dev/kvm");
    int version = ioctl(kvm_.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        throw KvmError(who + ": /dev/kvm speaks API version " + std::to_string(version));
    vm_ = UniqueFd(ioctl(kvm_.get(), KVM_CREATE_VM, 0));
    if (!vm_)
        throw system_error(who + ": KVM_CREATE_VM");
    if (ioctl(vm_.get(), KVM_SET_TSS_ADDR, kTssAddress) < 0)
        throw system_error(who + ": KVM_SET_TSS_ADDR");
    set_memory_region(false);

    vcpu_ = UniqueFd(ioctl(vm_.get(), KVM_CREATE_VCPU, 0));
    if (!vcpu_)
        throw system_error(who + ": KVM_CREATE_VCPU 0");
    int mmap_size = ioctl(kvm_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < static_cast<int>(sizeof(kvm_run)))
        throw system_error(who + ": KVM_GET_VCPU_MMAP_SIZE");
    run_size_ = static_cast<std::size_t>(mmap_size);
    void *p = mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_.get(), 0);
    if (p == MAP_FAILED)
        throw system_error(who + ": mmap of the kvm_run area");
    run_ = static_cast<kvm_run *>(p);

    // The vCPU reports what the host supports; long mode needs at least LM.
    FlexArray<KvmCpuid2Header, kvm_cpuid_entry2> cpuid(kMaxCpuidEntries);
    cpuid.header()->nent = kMaxCpuidEntries;
    if (ioctl(kvm_.get(), kKvmGetSupportedCpuid, cpuid.data()) < 0)
        throw system_error(who + ": KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu_.get(), kKvmSetCpuid2, cpuid.data()) < 0)
        throw system_error(who + ": KVM_SET_CPUID2");

    log_words_.resize((memory_.pages() + 63) / 64);
}

KvmVm::~KvmVm()
{
    if (run_)
        munmap(run_, run_size_);
}

void KvmVm::set_memory_region(bool log_dirty)
{
    kvm_userspace_memory_region region{};
    region.slot = 0;
    region.flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    region.guest_phys_addr = 0;
    region.memory_size = memory_.size();
    region.userspace_addr = reinterpret_cast<std::uint64_t>(memory_.host_base());
    if (ioctl(vm_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        throw system_error("VM " + name_ + ": KVM_SET_USER_MEMORY_REGION (slot 0, " +
                           std::to_string(memory_.size() >> 20) + " MiB, dirty log " + (log_dirty ? "on" : "off") +
                           ")");
}

void KvmVm::set_dirty_logging(bool on)
{
    if (on == dirty_logging_)
        return;
    set_memory_region(on);
    dirty_logging_ = on;
}

void KvmVm::harvest_dirty_log(DirtyBitmap &into)
{
    if (!dirty_logging_)
        throw KvmError("harvest dirty log of guest " + name_ + ": dirty logging is not enabled");
    kvm_dirty_log log{};
    log.slot = 0;
    log.dirty_bitmap = log_words_.data();
    if (ioctl(vm_.get(), KVM_GET_DIRTY_LOG, &log) < 0)
        throw system_error("harvest dirty log of guest " + name_ + " (slot 0): KVM_GET_DIRTY_LOG");
    into.or_words(log_words_);
}

} // namespace understudy::kvm
