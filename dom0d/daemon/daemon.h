// understudyd's state: the guests this host runs (and their replication to a
// backup), the standby copies it holds for other hosts, and the answers to
// control requests. Sockets live elsewhere (control_server, metrics_server).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "checkpoint/standby_registry.h"
#include "checkpoint/xen/xen_session.h"
#include "dom0d/daemon/daemon_config.h"
#include "dom0d/daemon/event_log.h"
#include "dom0d/daemon/failover_controller.h"
#include "dom0d/daemon/xen_vif_output.h"
#include "drbd/checkpoint_barrier.h"
#include "drbd/events2_follower.h"
#include "netbuffer_qdisc/vmm_output_queue.h"
#include "proto/control.pb.h"

namespace understudy::daemon {

class Daemon {
  public:
    using Log = std::function<void(const std::string &)>;
    Daemon(DaemonConfig config, Log log);
    ~Daemon();

    // Boots the autostart guests and opens the stream listener. Throws with
    // the reason if any of it fails.
    void start();
    void stop();

    [[nodiscard]] proto::ControlResponse handle(const proto::ControlRequest &request);
    [[nodiscard]] proto::StatusReply status(const std::string &guest = "") const;
    [[nodiscard]] const DaemonConfig &config() const noexcept { return config_; }
    [[nodiscard]] std::uint16_t stream_port() const;
    // The daemon's own loops that stopped going round for longer than
    // `limit_s` (systemd's watchdog is not fed while any has).
    [[nodiscard]] std::vector<std::string> stalled_loops(double limit_s) const;
    // Tells the network that `guest` now runs here: gratuitous ARPs with its
    // MAC (kvm: through its NIC; xen: on each vif's bridge). The failover
    // controller calls it after a takeover.
    void announce(const std::string &guest);

  private:
    struct Running {
        std::unique_ptr<Guest> guest;
        // Destroyed in reverse: replication stops, then held output goes out,
        // then the guest.
        std::unique_ptr<VmmOutputQueue> output;          // kvm: in the VMM
        std::unique_ptr<XenVifOutput> vif_output;        // xen: tap redirect of its vifs
        std::vector<std::unique_ptr<drbd::Events2Follower>> disk_followers; // xen: DRBD disks
        std::vector<std::unique_ptr<drbd::CheckpointBarrier>> disk_barriers; // xen: DRBD protocol D
        std::unique_ptr<Replicator> replicator;
        std::string role; // "standalone", "primary", "activated", "relinquished"
        std::uint64_t activated_epoch = 0; // activated: the standby epoch it resumed from
        // Since when it runs here (booted, activated, or found running), on
        // this host's wall clock: of two running copies, the later is the
        // younger (split brain).
        std::uint64_t active_since_unix_ns = 0;
        std::string backend = "kvm";
        std::vector<std::string> disk_notes; // xen: how each disk is replicated
        std::string checkpoint_way;          // xen: "pause" or "suspend"

        // The output buffers that hold this guest's network output.
        [[nodiscard]] std::vector<OutputBuffer *> buffers() const;
    };

    void boot(const GuestConfig &guest);
    std::string protect(const std::string &guest, const std::string &peer, bool allow_unreplicated_disk);
    std::string unprotect(const std::string &guest);
    proto::ChecksumReply checksum(const std::string &guest);
    std::string activate(const std::string &guest);
    // Stops this host's running copy of `guest` for good (split brain): held
    // output is dropped, replication ends with no goodbye, the guest stops.
    std::string discard(const std::string &guest);

    // Failure detection and failover (daemon_failover.cpp).
    void start_failover();
    void describe(proto::HeartbeatPacket &packet) const;
    [[nodiscard]] std::vector<FailoverController::HeldStandby> held_standbys() const;
    [[nodiscard]] std::vector<FailoverController::RunningCopy> running_copies() const;
    [[nodiscard]] std::vector<std::string> protected_names() const;
    // Gratuitous ARPs in an announcement: [heartbeat]'s garp_count, or its
    // default without a [heartbeat] section.
    [[nodiscard]] unsigned garp_count() const;
    void hand_over(const std::string &guest);
    [[nodiscard]] std::vector<std::string> unprotected_actives() const;
    // With mutex_ held: runs here (a relinquished guest does not), and
    // this host holds a consistent standby of it.
    [[nodiscard]] bool runs_here(const std::string &guest) const;
    [[nodiscard]] bool holds_standby(const std::string &guest) const;
    // `understudy drill` (daemon_drill.cpp): plays a crash of this host.
    proto::DrillReply drill(const std::string &guest);
    Replicator::Connect connector(const Endpoint &peer) const;
    std::unique_ptr<StandbyGuest> make_standby(const proto::Hello &hello, std::string *refusal) const;

    // The Xen backend (daemon_xen.cpp). Xen is opened when first needed;
    // throws saying why it cannot be (not a Dom0, not root).
    std::shared_ptr<xen::XenSession> xen_session() const;
    // With mutex_ held: protects xl domain `domain` (name or domid).
    std::string protect_xen(const std::string &domain, const Endpoint &peer, bool allow_unreplicated_disk,
                            std::uint64_t active_since_unix_ns = 0);
    std::unique_ptr<StandbyGuest> make_xen_standby(const proto::Hello &hello, const GuestConfig &g,
                                                   std::string *refusal) const;
    // Gratuitous ARPs for each vif of `g` with an ip= in its xl.cfg, sent on
    // the vif's bridge with the guest's MAC as source.
    void announce_xen(const GuestConfig &g);
    // Makes this host Primary for each DRBD disk of `g` (before its domain starts here).
    void promote_disks(const GuestConfig &g) const;

    DaemonConfig config_;
    Log log_;
    mutable std::mutex mutex_;
    std::map<std::string, Running> guests_;
    StandbyRegistry registry_;
    std::unique_ptr<BackupServer> server_;
    EventLog events_;
    std::unique_ptr<FailoverController> failover_;
    std::shared_ptr<TlsContext> client_tls_;
    mutable std::mutex xen_mutex_;
    mutable std::shared_ptr<xen::XenSession> xen_;
    bool plug_qdisc_ = false;        // the kernel has sch_plug (detected at start)
    std::string plug_qdisc_detail_;
};

} // namespace understudy::daemon
