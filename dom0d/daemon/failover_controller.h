// Failure detection and failover for one host of a pair (ARCHITECTURE.md §6):
// runs the heartbeats and the witness probe, and every interval applies the
// guard's rules to the guests this host holds standbys of (outdated? take
// over?), to those it runs protected (hand over?) and to those both hosts
// run (split brain). Every decision is an event. What the heartbeats say of
// this host is refreshed here, on this controller's thread: the heartbeat
// threads only copy it, so a daemon busy with a slow disk or a hung tool
// still sends its heartbeats.
#pragma once

#include <atomic>
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
    // A consistent standby held here, of a guest that does not run here.
    struct HeldStandby {
        std::string guest;
        std::uint64_t stream_id = 0, epoch = 0;
        bool outdated = false;
        std::string outdated_reason;
    };
    // A guest that runs here (primary, standalone or activated).
    struct RunningCopy {
        std::string guest, role;
        std::uint64_t active_since_unix_ns = 0;
    };
    // What the controller needs from the daemon.
    struct Host {
        std::function<void(proto::HeartbeatPacket &)> describe;        // this host's guests and roles
        std::function<std::vector<HeldStandby>()> standbys;             // consistent standbys held here
        // Marks the copy of `guest` built by `stream_id` outdated; false if it
        // is not held (or was outdated already).
        std::function<bool(const std::string &guest, std::uint64_t stream_id, const std::string &why)> mark_outdated;
        std::function<std::vector<RunningCopy>()> running;              // guests running here
        std::function<void(const std::string &)> discard;               // stop this host's copy for good (split brain)
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
    // Loops that stopped going round for longer than `limit_s` (the
    // decisions, the heartbeat sender and receiver), each with how long.
    [[nodiscard]] std::vector<std::string> stalled(double limit_s) const;
    // A planned switch (`understudy failover GUEST` on the primary): hands
    // the guest over if the backup is alive; throws saying why not.
    void planned_switch(const std::string &guest);
    // `understudy takeover GUEST` on the backup: runs its standby here now,
    // fencing the peer first where configured. Refused while the primary is
    // heard or when the standby is outdated, unless `force`: then a loud
    // warning and a forced_takeover event. Throws saying why not.
    void manual_takeover(const std::string &guest, bool force);
    // Why `guest` must not be protected again now ("" if it may): both
    // hosts run it (split brain).
    [[nodiscard]] std::string split_brain_of(const std::string &guest) const;
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
    // Asks the daemon for what the heartbeats say of this host (may wait on
    // the daemon); the heartbeat threads copy the result.
    void refresh_report();
    void fill(proto::HeartbeatPacket &packet);
    void outdate_standbys(const PeerView &view, const std::vector<HeldStandby> &standbys);
    void watch_split_brain(const PeerView &view);
    [[nodiscard]] GuardSettings guard() const;
    [[nodiscard]] bool fence(const std::string &guest);
    void schedule_announcements(const std::string &guest);
    bool take_over(const std::string &guest, const std::string &reason, double peer_silent_s);
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
    mutable std::mutex report_mutex_; // never held across a call to the daemon
    proto::HeartbeatPacket report_;   // this host's guests, as last described
    std::atomic<bool> witness_ok_{false};
    ProgressMark progress_; // run() goes round every interval
    mutable std::mutex split_mutex_;
    std::map<std::string, std::string> split_brain_; // guest -> what both hosts run
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
