// The kvm backend as a Hypervisor: boots guests under the built-in VMM and
// restores them from snapshots.
#pragma once

#include <memory>

#include "checkpoint/hypervisor.h"
#include "checkpoint/kvm/kvm_guest.h"

namespace understudy::kvm {

class KvmHypervisor final : public Hypervisor {
  public:
    std::string_view backend() const override { return "kvm"; }
    bool available(std::string *why) const override { return KvmVm::available(why); }

    [[nodiscard]] std::unique_ptr<KvmGuest> boot(KvmGuestConfig config) const
    {
        return KvmGuest::boot(std::move(config));
    }
    [[nodiscard]] std::unique_ptr<KvmGuest> restore(KvmGuestConfig config, const Snapshot &snapshot) const
    {
        return KvmGuest::restore(std::move(config), snapshot);
    }
};

} // namespace understudy::kvm
