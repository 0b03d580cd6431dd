#include "checkpoint/kvm/kvm_standby.h"

#include <algorithm>

#include "checkpoint/kvm/kvm_error.h"
#include "checkpoint/kvm/kvm_guest.h"

namespace understudy::kvm {

KvmStandby::KvmStandby(KvmGuestConfig local, std::string tap, std::uint64_t memory_size, std::uint64_t disk_bytes,
                       const std::filesystem::path &replica)
    : StandbyImage(local.name, memory_size, disk_bytes, replica), local_(std::move(local)), tap_(std::move(tap))
{
}

std::unique_ptr<Guest> KvmStandby::activate()
{
    if (!cpu() || !devices())
        throw KvmError("activate standby " + name() + ": no checkpoint has been committed");
    sync_disk();
    KvmGuestConfig config = local_;
    config.memory_bytes = memory_size();
    if (devices()->net().mac().size() == config.mac.size())
        std::copy_n(devices()->net().mac().begin(), config.mac.size(), config.mac.begin());
    if (!tap_.empty())
        config.tap = std::make_shared<TapDevice>(tap_);
    if (disk_bytes())
        config.disk = std::make_shared<BlockImage>(replica_path(), 0);
    auto guest = KvmGuest::restore(std::move(config), memory(), *cpu(), *devices());
    guest->resume();
    return guest;
}

} // namespace understudy::kvm
