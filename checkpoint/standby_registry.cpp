#include "checkpoint/standby_registry.h"

namespace understudy {

namespace {
using Clock = std::chrono::steady_clock;
}

struct StandbyRegistry::Slot {
    std::mutex commit_mutex; // held while `committed` changes; may wait on the disk
    std::shared_ptr<StandbyGuest> committed;

    mutable std::mutex state_mutex; // never held across I/O; taken after commit_mutex, never before
    StandbyStatus status;
    Link *link = nullptr;
    std::uint64_t ticket = 0;
    std::uint64_t stream_id = 0; // of the stream now running
    Clock::time_point last_commit{};
    Clock::time_point closed_by_peer{};
};

std::uint64_t StandbyRegistry::begin_stream(const std::string &guest, Link &link, std::uint64_t stream_id)
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
    std::lock_guard lock(slot->state_mutex);
    if (slot->link)
        slot->link->shutdown();
    slot->link = &link;
    slot->ticket = ticket;
    slot->stream_id = stream_id;
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

bool StandbyRegistry::commit(const std::string &guest, std::uint64_t ticket,
                             const std::function<void(StandbyGuest &)> &apply)
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::lock_guard commit_lock(slot->commit_mutex);
    {
        std::lock_guard lock(slot->state_mutex);
        if (slot->ticket != ticket || !slot->committed || slot->status.damaged)
            return false;
    }
    // take() cannot hand the copy out meanwhile: it waits for commit_mutex.
    apply(*slot->committed);
    return true;
}

void StandbyRegistry::committed(const std::string &guest, std::uint64_t ticket, Epoch epoch, bool checkpoint,
                                std::uint64_t wire_bytes)
{
    auto slot = find(guest);
    if (!slot)
        return;
    std::lock_guard lock(slot->state_mutex);
    if (slot->ticket != ticket)
        return;
    slot->status.epoch = epoch.value;
    slot->status.bytes_received += wire_bytes;
    if (checkpoint)
        ++slot->status.checkpoints;
    slot->last_commit = Clock::now();
}

void StandbyRegistry::received(const std::string &guest, std::uint64_t ticket, std::uint64_t wire_bytes)
{
    auto slot = find(guest);
    if (!slot)
        return;
    std::lock_guard lock(slot->state_mutex);
    if (slot->ticket == ticket)
        slot->status.bytes_received += wire_bytes;
}

bool StandbyRegistry::install(const std::string &guest, std::uint64_t ticket, std::shared_ptr<StandbyGuest> standby,
                              Epoch epoch)
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::shared_ptr<StandbyGuest> replaced;
    std::lock_guard commit_lock(slot->commit_mutex);
    {
        std::lock_guard lock(slot->state_mutex);
        if (slot->ticket != ticket)
            return false;
    }
    standby->take_place(); // throws: the older copy stays
    replaced = std::move(slot->committed);
    slot->committed = std::move(standby);
    std::lock_guard lock(slot->state_mutex);
    auto &s = slot->status;
    s.consistent = true;
    s.epoch = epoch.value;
    s.stream_id = slot->stream_id;
    ++s.checkpoints;
    s.outdated = false;
    s.outdated_reason.clear();
    s.damaged = false;
    s.damaged_reason.clear();
    slot->last_commit = Clock::now();
    return true;
}

void StandbyRegistry::end_stream(const std::string &guest, std::uint64_t ticket, const std::string &error,
                                 bool closed_by_peer)
{
    auto slot = find(guest);
    if (!slot)
        return;
    std::lock_guard lock(slot->state_mutex);
    if (slot->ticket != ticket)
        return;
    slot->link = nullptr;
    slot->status.receiving = false;
    slot->status.peer.clear();
    if (!error.empty())
        slot->status.last_error = error;
    if (closed_by_peer)
        slot->closed_by_peer = Clock::now();
}

void StandbyRegistry::record_refusal(const std::string &guest, const std::string &error)
{
    auto slot = find(guest);
    if (!slot)
        return;
    std::lock_guard lock(slot->state_mutex);
    ++slot->status.epochs_refused;
    slot->status.last_error = error;
}

void StandbyRegistry::record_commit_failure(const std::string &guest, const std::string &error, bool damaged)
{
    auto slot = find(guest);
    if (!slot)
        return;
    std::lock_guard lock(slot->state_mutex);
    ++slot->status.commit_failures;
    slot->status.last_error = error;
    if (damaged) {
        slot->status.damaged = true;
        slot->status.damaged_reason = error;
        slot->status.consistent = false;
    }
}

bool StandbyRegistry::mark_outdated(const std::string &guest, std::uint64_t stream_id, const std::string &reason)
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::lock_guard lock(slot->state_mutex);
    auto &s = slot->status;
    if (!s.consistent || s.outdated || s.stream_id != stream_id)
        return false;
    s.outdated = true;
    s.outdated_reason = reason;
    return true;
}

namespace {

StandbyStatus report(const StandbyRegistry::Slot &slot, Clock::time_point now);

} // namespace

std::vector<StandbyStatus> StandbyRegistry::status() const
{
    std::vector<std::shared_ptr<Slot>> slots;
    {
        std::lock_guard lock(mutex_);
        for (const auto &[name, slot] : slots_)
            slots.push_back(slot);
    }
    std::vector<StandbyStatus> out;
    const auto now = Clock::now();
    for (const auto &slot : slots)
        out.push_back(report(*slot, now));
    return out;
}

std::optional<StandbyStatus> StandbyRegistry::status(const std::string &guest) const
{
    auto slot = find(guest);
    if (!slot)
        return std::nullopt;
    return report(*slot, Clock::now());
}

namespace {

StandbyStatus report(const StandbyRegistry::Slot &slot, Clock::time_point now)
{
    std::lock_guard lock(slot.state_mutex);
    StandbyStatus s = slot.status;
    if (slot.closed_by_peer != Clock::time_point{})
        s.closed_by_peer_age_s = std::chrono::duration<double>(now - slot.closed_by_peer).count();
    if (slot.last_commit != Clock::time_point{})
        s.last_commit_age_s = std::chrono::duration<double>(now - slot.last_commit).count();
    return s;
}

} // namespace

bool StandbyRegistry::inspect(const std::string &guest, const std::function<void(const StandbyGuest &)> &look) const
{
    auto slot = find(guest);
    if (!slot)
        return false;
    std::lock_guard lock(slot->commit_mutex);
    if (!slot->committed)
        return false;
    look(*slot->committed);
    return true;
}

std::shared_ptr<StandbyGuest> StandbyRegistry::take(const std::string &guest)
{
    auto slot = find(guest);
    if (!slot)
        return nullptr;
    {
        std::lock_guard lock(slot->state_mutex);
        if (slot->status.damaged)
            return nullptr;
        if (slot->link)
            slot->link->shutdown();
        slot->link = nullptr;
        slot->ticket = 0; // the stream may not touch it any more
    }
    std::shared_ptr<StandbyGuest> standby;
    {
        std::lock_guard commit_lock(slot->commit_mutex); // a commit under way ends first
        standby = std::move(slot->committed);
    }
    std::lock_guard lock(mutex_);
    if (auto it = slots_.find(guest); it != slots_.end() && it->second == slot)
        slots_.erase(it);
    return standby;
}

void StandbyRegistry::cut_all()
{
    std::vector<std::shared_ptr<Slot>> slots;
    {
        std::lock_guard lock(mutex_);
        for (const auto &[name, slot] : slots_)
            slots.push_back(slot);
    }
    for (const auto &slot : slots) {
        std::lock_guard lock(slot->state_mutex);
        if (slot->link)
            slot->link->shutdown();
        slot->link = nullptr;
        slot->ticket = 0;
    }
}

} // namespace understudy
