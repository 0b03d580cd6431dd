// One KVM virtual machine: the /dev/kvm handles, guest RAM registered as
// memory slot 0 (with dirty logging when asked), and vCPU 0 with its shared
// kvm_run page.
#pragma once

#include <linux/kvm.h>

#include <string>

#include "checkpoint/dirty_bitmap.h"
#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/unique_fd.h"

namespace understudy::kvm {

class KvmVm {
  public:
    KvmVm(GuestMemory &memory, std::string name);
    ~KvmVm();
    KvmVm(const KvmVm &) = delete;
    KvmVm &operator=(const KvmVm &) = delete;

    // True if /dev/kvm can be opened and speaks the stable API; otherwise
    // `why` says what is missing.
    [[nodiscard]] static bool available(std::string *why);

    [[nodiscard]] int vcpu_fd() const noexcept { return vcpu_.get(); }
    [[nodiscard]] kvm_run *run() const noexcept { return run_; }

    void set_dirty_logging(bool on);
    [[nodiscard]] bool dirty_logging() const noexcept { return dirty_logging_; }
    // ORs the pages the vCPUs wrote since the last call into `into` and
    // re-arms the log (KVM_GET_DIRTY_LOG clears as it reads).
    void harvest_dirty_log(DirtyBitmap &into);

  private:
    void set_memory_region(bool log_dirty);

    GuestMemory &memory_;
    std::string name_;
    UniqueFd kvm_;
    UniqueFd vm_;
    UniqueFd vcpu_;
    kvm_run *run_ = nullptr;
    std::size_t run_size_ = 0;
    bool dirty_logging_ = false;
    std::vector<std::uint64_t> log_words_;
};

} // namespace understudy::kvm
