// Failure detection and failover for one host of a pair (ARCHITECTURE.md §6):
// runs the heartbeats and the witness probe, and every interval applies the
// guard's rules to the guests this host holds standbys of (take over?) and to
// those it runs protected (hand over?). Every decision is an event.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dom0d/daemon/daemon_config.h"
#include "dom0d/daemon/event_log.h"
#include "heartbeat/failover_guard.h"
#include "heartbeat/heartbeat_service.h"
#include "heartbeat/witness_probe.h"

namespace understudy::daemon {

class FailoverController {
  public:
    // What the controller needs from the daemon.
    struct Host {
        std::function<void(proto::HeartbeatPacket &)> describe;        // this host's guests and roles
        std::function<std::vector<std::string>()> standbys;             // consistent standbys held here
        std::function<double(const std::string &)> closed_by_peer_s;    // since the peer's host closed its stream; -1: not
        std::function<std::vector<std::string>()> protected_primaries;  // guests run here, protected
        std::function<void(const std::string &)> take_over;             // activate the standby; throws why not
        std::function<void(const std::string &)> announce;              // one burst of gratuitous ARPs
        std::function<void(const std::string &)> hand_over;             // freeze at an acked epoch, for good
        std::function<std::vector<std::string>()> unprotected_actives;  // taken over here, no backup yet
        std::function<void(const std::string &)> reprotect;             // protect toward the peer; throws why not
        // Cut the streams to any of `silent_hosts` (the peer's addresses
        // whose heartbeat path went silent): held output need not wait for
        // the ack timeout.
        std::function<void(const std::vector<std::string> &silent_hosts, const std::string &why)> drop_silent_backups;
    };
    using Log = std::function<void(const std::string &)>;

    FailoverController(FailoverConfig config, Host host, EventLog &events, Log log);
    ~FailoverController();
    FailoverController(const FailoverController &) = delete;
    FailoverController &operator=(const FailoverController &) = delete;

    void start();
    void stop();
    [[nodiscard]] proto::PairStatus status() const;
    // A planned switch (`understudy failover GUEST` on the primary): hands
    // the guest over if the backup is alive; throws saying why not.
    void planned_switch(const std::string &guest);
    // Waits up to the heartbeat timeout to hear the peer; true if it says it
    // runs `guest` (so this host must not start it).
    [[nodiscard]] bool peer_runs(const std::string &guest) const;
    [[nodiscard]] bool peer_alive() const;

    // For `understudy drill`: while playing dead this host sends no
    // heartbeats but still hears the peer.
    void play_dead(bool dead);
    // Waits until the peer says it runs `guest` activated; its entry then.
    [[nodiscard]] std::optional<proto::HeartbeatGuest> wait_peer_activated(const std::string &guest,
                                                                          std::chrono::milliseconds timeout) const;
  private:
    void run();
    void tick();
    [[nodiscard]] GuardSettings guard() const;
    [[nodiscard]] bool fence(const std::string &guest);
    void schedule_announcements(const std::string &guest);
    void take_over(const std::string &guest, const std::string &reason, double peer_silent_s);
    [[nodiscard]] bool process_died(const PeerView &view, const std::string &guest) const;
    [[nodiscard]] bool uplink_down() const;
    void reprotect_returned_peer(const PeerView &view);
    void drop_silent_backups(const PeerView &view);

    FailoverConfig config_;
    Host host_;
    EventLog &events_;
    Log log_;
    std::unique_ptr<HeartbeatService> heartbeat_;
    std::unique_ptr<WitnessProbe> witness_;
    std::mutex mutex_;  // serialises decisions (tick, planned_switch)
    std::mutex stop_mutex_;
    bool stopping_ = false;
    bool peer_was_alive_ = false;
    bool uplink_was_down_ = false;
    std::map<std::string, std::string> last_refusal_;
    std::map<std::string, std::chrono::steady_clock::time_point> next_fence_try_;
    std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> announcements_;
    std::map<std::string, std::chrono::steady_clock::time_point> next_reprotect_try_;
    struct Takeover {
        std::uint32_t detection_ms = 0, activation_ms = 0;
    };
    mutable std::mutex takeovers_mutex_; // read by the heartbeat sender
    std::map<std::string, Takeover> takeovers_;
    std::thread thread_;
};

} // namespace understudy::daemon
