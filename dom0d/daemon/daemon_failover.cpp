// The daemon's side of failure detection and failover: what it tells the
// FailoverController about its guests and standbys, and what it does when the
// controller decides (take over, announce, hand over).
#include "checkpoint/kvm/kvm_guest.h"
#include "dom0d/daemon/daemon.h"
#include "heartbeat/gratuitous_arp.h"

namespace understudy::daemon {

void Daemon::start_failover()
{
    FailoverController::Host host;
    host.describe = [this](proto::HeartbeatPacket &p) { describe(p); };
    host.standbys = [this] { return standby_names(); };
    host.protected_primaries = [this] { return protected_names(); };
    host.take_over = [this](const std::string &guest) { activate(guest); };
    host.announce = [this](const std::string &guest) { announce(guest); };
    host.hand_over = [this](const std::string &guest) { hand_over(guest); };
    failover_ = std::make_unique<FailoverController>(*config_.failover, std::move(host), events_, log_);
    failover_->start();
}

void Daemon::describe(proto::HeartbeatPacket &packet) const
{
    std::lock_guard lock(mutex_);
    for (const auto &[name, r] : guests_) {
        auto *g = packet.add_guests();
        g->set_name(name);
        g->set_role(r.role);
        if (r.replicator)
            g->set_acked_epoch(r.replicator->status().acked_epoch);
    }
    for (const auto &s : registry_.status()) {
        if (!s.consistent || guests_.count(s.guest))
            continue;
        auto *g = packet.add_guests();
        g->set_name(s.guest);
        g->set_role("standby");
        g->set_acked_epoch(s.epoch);
    }
}

std::vector<std::string> Daemon::standby_names() const
{
    std::vector<std::string> names;
    std::lock_guard lock(mutex_);
    for (const auto &s : registry_.status())
        if (s.consistent && !guests_.count(s.guest))
            names.push_back(s.guest);
    return names;
}

std::vector<std::string> Daemon::protected_names() const
{
    std::vector<std::string> names;
    std::lock_guard lock(mutex_);
    for (const auto &[name, r] : guests_)
        if (r.role == "primary" && r.replicator && r.replicator->status().state == ProtectionState::protected_)
            names.push_back(name);
    return names;
}

void Daemon::announce(const std::string &guest)
{
    const GuestConfig *g = config_.guest(guest);
    if (!g || g->tap.empty())
        return;
    const auto frame = gratuitous_arp(g->vm.mac, g->vm.ipv4);
    unsigned sent = 0;
    {
        std::lock_guard lock(mutex_);
        auto it = guests_.find(guest);
        auto *vm = it == guests_.end() ? nullptr : dynamic_cast<kvm::KvmGuest *>(it->second.guest.get());
        if (!vm)
            return;
        for (unsigned i = 0; i < config_.failover->garp_count; ++i)
            sent += vm->transmit(frame) ? 1 : 0;
    }
    events_.add(guest, "announced",
                std::to_string(sent) + " gratuitous ARPs for its address on " + g->tap + " (its MAC moved here)");
}

void Daemon::hand_over(const std::string &guest)
{
    Replicator *replicator = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = guests_.find(guest);
        if (it == guests_.end() || !it->second.replicator || it->second.role != "primary")
            throw std::runtime_error("guest " + guest + " is not running protected on " + config_.node);
        replicator = it->second.replicator.get();
    }
    // The last checkpoint is committed on the backup before the guest stops
    // here for good: nothing the clients saw is lost, and no output of an
    // unacked epoch is left (the frozen guest sends nothing more).
    const auto epoch = replicator->freeze(config_.replication.ack_timeout * 2);
    {
        std::lock_guard lock(mutex_);
        guests_[guest].role = "relinquished";
    }
    events_.add(guest, "relinquished",
                "stopped for good at acked epoch " + std::to_string(epoch.value) + "; the backup runs it from there");
}

} // namespace understudy::daemon
