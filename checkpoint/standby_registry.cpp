#include "checkpoint/standby_registry.h"

namespace understudy {

struct StandbyRegistry::Slot {
    std::mutex mutex;
    std::unique_ptr<StandbyGuest> committed;
    StandbyStatus status;
    Link *link = nullptr;
    std::uint64_t ticket = 0;
    std::chrono::steady_clock::time_point last_commit{};
    std::chrono::steady_clock::time_point closed_by_peer{};
};

std::uint64_t StandbyRegistry::begin_stream(const std::string &guest, Link &link)
{
    std::shared_ptr<Slot> slot;
    std::uint64_t ticket;
    {
        std::lock_guard lock(mutex_);
        auto &entry = slots_[guest];
        if (!entry) {
            entry = std::make_shared<Slot>();
            entry->status.guest = guest;
        }
        slot = entry;
        ticket = ++tickets_;
    }
    std::lock_guard lock(slot->mutex);
    if (slot->link)
        slot->link->shutdown();
    slot->link = &link;
    slot->ticket = ticket;
    slot->status.peer = link.peer();
    slot->status.receiving = true;
    slot->closed_by_peer = {};
    return ticket;
}

std::shared_ptr<StandbyRegistry::Slot> StandbyRegistry::find(const std::string &guest) const
{
    std::lock_guard lock(mutex_);
    auto it = slots_.find(guest);
    return it == slots_.end() ? nullptr : it->second;
}

bool StandbyRegistry::with_standby(const std::string &guest, std::uint64_t ticket,
                                   const std::function<void(StandbyGuest *, StandbyStatus &)> &apply)
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::lock_guard lock(slot->mutex);
    if (slot->ticket != ticket)
        return false;
    apply(slot->committed.get(), slot->status);
    slot->last_commit = std::chrono::steady_clock::now();
    return true;
}

bool StandbyRegistry::install(const std::string &guest, std::uint64_t ticket, std::unique_ptr<StandbyGuest> standby)
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::lock_guard lock(slot->mutex);
    if (slot->ticket != ticket)
        return false;
    slot->committed = std::move(standby);
    slot->status.consistent = true;
    return true;
}

void StandbyRegistry::end_stream(const std::string &guest, std::uint64_t ticket, const std::string &error,
                                 bool closed_by_peer)
{
    std::lock_guard registry_lock(mutex_);
    auto it = slots_.find(guest);
    if (it == slots_.end())
        return;
    std::lock_guard lock(it->second->mutex);
    auto &slot = *it->second;
    if (slot.ticket != ticket)
        return;
    slot.link = nullptr;
    slot.status.receiving = false;
    slot.status.peer.clear();
    if (!error.empty())
        slot.status.last_error = error;
    if (closed_by_peer)
        slot.closed_by_peer = std::chrono::steady_clock::now();
}

void StandbyRegistry::record_refusal(const std::string &guest, const std::string &error)
{
    std::lock_guard registry_lock(mutex_);
    auto it = slots_.find(guest);
    if (it == slots_.end())
        return;
    std::lock_guard lock(it->second->mutex);
    ++it->second->status.epochs_refused;
    it->second->status.last_error = error;
}

std::vector<StandbyStatus> StandbyRegistry::status() const
{
    std::vector<StandbyStatus> out;
    std::lock_guard registry_lock(mutex_);
    for (const auto &[name, slot] : slots_) {
        std::lock_guard lock(slot->mutex);
        out.push_back(slot->status);
        if (slot->closed_by_peer != std::chrono::steady_clock::time_point{})
            out.back().closed_by_peer_age_s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - slot->closed_by_peer).count();
        if (slot->last_commit != std::chrono::steady_clock::time_point{})
            out.back().last_commit_age_s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - slot->last_commit).count();
    }
    return out;
}

bool StandbyRegistry::inspect(const std::string &guest, const std::function<void(const StandbyGuest &)> &look) const
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::lock_guard lock(slot->mutex);
    if (!slot->committed)
        return false;
    look(*slot->committed);
    return true;
}

std::unique_ptr<StandbyGuest> StandbyRegistry::take(const std::string &guest)
{
    std::lock_guard registry_lock(mutex_);
    auto it = slots_.find(guest);
    if (it == slots_.end())
        return nullptr;
    std::unique_ptr<StandbyGuest> standby;
    {
        std::lock_guard lock(it->second->mutex);
        auto &slot = *it->second;
        if (slot.link)
            slot.link->shutdown();
        slot.link = nullptr;
        slot.ticket = 0; // the stream may not touch it any more
        standby = std::move(slot.committed);
    }
    slots_.erase(it);
    return standby;
}

void StandbyRegistry::cut_all()
{
    std::lock_guard registry_lock(mutex_);
    for (auto &[name, slot] : slots_) {
        std::lock_guard lock(slot->mutex);
        if (slot->link)
            slot->link->shutdown();
        slot->link = nullptr;
        slot->ticket = 0;
    }
}

} // namespace understudy
