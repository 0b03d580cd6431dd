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
    host.standbys = [this] { return held_standbys(); };
    host.mark_outdated = [this](const std::string &guest, std::uint64_t stream_id, const std::string &why) {
        return registry_.mark_outdated(guest, stream_id, why);
    };
    host.running = [this] { return running_copies(); };
    host.discard = [this](const std::string &guest) { (void)discard(guest); };
    host.closed_by_peer_s = [this](const std::string &guest) {
        for (const auto &s : registry_.status())
            if (s.guest == guest)
                return s.closed_by_peer_age_s;
        return -1.0;
    };
    host.protected_primaries = [this] { return protected_names(); };
    host.take_over = [this](const std::string &guest) { activate(guest); };
    host.announce = [this](const std::string &guest) { announce(guest); };
    host.hand_over = [this](const std::string &guest) { hand_over(guest); };
    host.unprotected_actives = [this] { return unprotected_actives(); };
    host.drop_silent_backups = [this](const std::vector<std::string> &silent_hosts, const std::string &why) {
        std::lock_guard lock(mutex_);
        for (auto &[name, r] : guests_) {
            if (!r.replicator || r.role != "primary")
                continue;
            const auto peer = r.replicator->status().peer; // "HOST:PORT" of the live stream, "" if none
            const auto peer_host = peer.substr(0, peer.rfind(':'));
            bool silent = false;
            for (const auto &h : silent_hosts)
                silent = silent || h == peer_host;
            if (silent && !peer.empty())
                r.replicator->drop_backup(why);
        }
    };
    host.reprotect = [this](const std::string &guest) {
        (void)protect(guest, config_.failover->peer_stream->to_string(), false);
    };
    failover_ = std::make_unique<FailoverController>(*config_.failover, std::move(host), events_, log_);
    failover_->start();
}

void Daemon::describe(proto::HeartbeatPacket &packet) const
{
    std::lock_guard lock(mutex_);
    for (const auto &[name, r] : guests_) {
        if (r.role == "relinquished" && holds_standby(name))
            continue; // stopped here for good, and this host is its backup now
        auto *g = packet.add_guests();
        g->set_name(name);
        g->set_role(r.role);
        g->set_dies_with_daemon(dynamic_cast<const kvm::KvmGuest *>(r.guest.get()) != nullptr);
        if (r.role != "relinquished")
            g->set_active_since_unix_ns(r.active_since_unix_ns);
        if (r.replicator) {
            const auto s = r.replicator->status();
            g->set_acked_epoch(s.acked_epoch);
            g->set_stream_id(s.stream_id);
            // Output waits for this stream's acks only while it is syncing
            // or protected; otherwise it flows, past any standby's epoch.
            g->set_stream_lost(s.state != ProtectionState::syncing && s.state != ProtectionState::protected_);
        } else if (r.role == "activated") {
            g->set_acked_epoch(r.activated_epoch);
        }
    }
    for (const auto &s : registry_.status()) {
        if (!s.consistent || runs_here(s.guest))
            continue;
        auto *g = packet.add_guests();
        g->set_name(s.guest);
        g->set_role("standby");
        g->set_acked_epoch(s.epoch);
    }
}

std::vector<FailoverController::HeldStandby> Daemon::held_standbys() const
{
    std::vector<FailoverController::HeldStandby> held;
    const auto standbys = registry_.status();
    std::lock_guard lock(mutex_);
    for (const auto &s : standbys)
        if (s.consistent && !runs_here(s.guest))
            held.push_back({s.guest, s.stream_id, s.epoch, s.outdated, s.outdated_reason});
    return held;
}

std::vector<FailoverController::RunningCopy> Daemon::running_copies() const
{
    std::vector<FailoverController::RunningCopy> copies;
    std::lock_guard lock(mutex_);
    for (const auto &[name, r] : guests_)
        if (r.role != "relinquished")
            copies.push_back({name, r.role, r.active_since_unix_ns});
    return copies;
}

bool Daemon::runs_here(const std::string &guest) const
{
    auto it = guests_.find(guest);
    return it != guests_.end() && it->second.role != "relinquished";
}

bool Daemon::holds_standby(const std::string &guest) const
{
    for (const auto &s : registry_.status())
        if (s.guest == guest && s.consistent)
            return true;
    return false;
}

std::vector<std::string> Daemon::unprotected_actives() const
{
    std::vector<std::string> names;
    std::lock_guard lock(mutex_);
    for (const auto &[name, r] : guests_)
        if (r.role == "activated" && !r.replicator)
            names.push_back(name);
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

unsigned Daemon::garp_count() const
{
    return config_.failover ? config_.failover->garp_count : FailoverConfig{}.garp_count;
}

void Daemon::announce(const std::string &guest)
{
    const GuestConfig *g = config_.guest(guest);
    if (g && g->backend == "xen") {
        announce_xen(*g);
        return;
    }
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
        for (unsigned i = 0; i < garp_count(); ++i)
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
        auto &r = guests_[guest];
        r.role = "relinquished";
        r.guest->stop_for_good(); // nothing may resume it
    }
    // No goodbye and no more resyncs: the backup runs the guest now.
    replicator->halt("handed over to " + config_.failover->heartbeat.peer_node);
    events_.add(guest, "relinquished",
                "stopped for good at acked epoch " + std::to_string(epoch.value) + "; the backup runs it from there");
}

} // namespace understudy::daemon
