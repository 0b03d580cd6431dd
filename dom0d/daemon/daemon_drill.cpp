// `understudy drill GUEST`, run on the primary: a failover exercise on a
// live pair. This host plays a crash of itself (heartbeats stop, the stream
// is cut with no goodbye, the guest stops, held output of unacked epochs is
// lost) and watches, over the heartbeats it still hears, the peer take the
// guest over. The report says how long detection and activation took and
// whether the client invariant held: the peer resumed from an epoch at least
// as new as the newest output clients were shown.
#include <algorithm>

#include "checkpoint/kvm/kvm_guest.h"
#include "dom0d/daemon/daemon.h"

namespace understudy::daemon {

namespace {

using Clock = std::chrono::steady_clock;

std::string verdict_of(const proto::DrillReply &r)
{
    if (!r.taken_over())
        return "FAILED: " + r.peer_node() + " did not take guest " + r.guest() +
               " over in time (is its failover manual, or its guard refusing? see `understudy events` there)";
    return std::string(r.invariant_held() ? "PASSED" : "FAILED") + ": " + r.peer_node() + " runs guest " +
           r.guest() + " from epoch " + std::to_string(r.activated_epoch()) + " (clients had seen output up to epoch " +
           std::to_string(r.released_epoch()) + "); detection " + std::to_string(r.detection_ms()) +
           " ms, activation " + std::to_string(r.activation_ms()) + " ms, seen running here after " +
           std::to_string(r.observed_ms()) + " ms";
}

} // namespace

proto::DrillReply Daemon::drill(const std::string &name)
{
    if (!failover_)
        throw std::runtime_error("a drill needs failure detection: " + config_.node + " has no [heartbeat] section");
    Replicator *replicator = nullptr;
    Guest *vm = nullptr;
    std::vector<OutputBuffer *> outputs;
    XenVifOutput *vifs = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = guests_.find(name);
        if (it == guests_.end() || it->second.role != "primary" || !it->second.replicator)
            throw std::runtime_error("guest " + name + " is not running protected on " + config_.node);
        if (it->second.replicator->status().state != ProtectionState::protected_)
            throw std::runtime_error("guest " + name + " has no consistent standby yet (state " +
                                     state_name(it->second.replicator->status().state) + "); a drill now would lose it");
        for (const auto &[other, r] : guests_)
            if (other != name && r.replicator)
                throw std::runtime_error("a drill silences all of " + config_.node + "'s heartbeats, so the peer would "
                                         "take over guest " + other + " too; unprotect it first");
        replicator = it->second.replicator.get();
        vm = it->second.guest.get();
        outputs = it->second.buffers();
        vifs = it->second.vif_output.get();
    }
    if (!failover_->peer_alive())
        throw std::runtime_error(config_.failover->heartbeat.peer_node + " is not heard: nobody would take over");

    events_.add(name, "drill", config_.node + " plays a crash: heartbeats stop, the stream is cut, the guest stops, "
                               "output of unacked epochs is lost");
    const auto crashed = Clock::now();
    failover_->play_dead(true);
    for (auto *output : outputs)
        output->cut_off(); // first: nothing of an unacked epoch may leave from here on
    if (vifs)
        vifs->cut_off();   // a Xen domain's vifs, whichever way they hold output
    replicator->halt("failover drill: simulated crash of " + config_.node);
    if (vm)
        vm->stop_for_good();
    {
        std::lock_guard lock(mutex_);
        guests_[name].role = "relinquished"; // this copy never runs again
    }

    proto::DrillReply reply;
    reply.set_guest(name);
    reply.set_peer_node(config_.failover->heartbeat.peer_node);
    reply.set_acked_epoch(replicator->status().acked_epoch);
    reply.set_released_epoch(outputs.empty() && !vifs ? reply.acked_epoch() : 0);
    if (vifs)
        reply.set_released_epoch(vifs->released_epoch());
    for (auto *output : outputs) { // the latest epoch any output was released for
        const auto s = output->status();
        reply.set_released_epoch(std::max(reply.released_epoch(), s.released_epoch));
        reply.set_discarded_frames(reply.discarded_frames() + s.discarded_frames);
    }
    // Detection takes the heartbeat timeout; fencing may take up to 30 s.
    const auto wait = std::min<std::chrono::milliseconds>(config_.failover->heartbeat.timeout * 5 +
                                                              std::chrono::seconds(20),
                                                          std::chrono::seconds(35));
    const auto seen = failover_->wait_peer_activated(name, wait);
    reply.set_observed_ms(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - crashed).count()));
    failover_->play_dead(false); // back, as a host without the guest
    if (seen) {
        reply.set_taken_over(true);
        reply.set_activated_epoch(seen->acked_epoch());
        reply.set_detection_ms(seen->detection_ms());
        reply.set_activation_ms(seen->activation_ms());
        reply.set_invariant_held(seen->acked_epoch() >= reply.released_epoch());
    }
    reply.set_verdict(verdict_of(reply));
    events_.add(name, reply.taken_over() && reply.invariant_held() ? "drill_passed" : "drill_failed",
                reply.verdict());
    return reply;
}

} // namespace understudy::daemon
