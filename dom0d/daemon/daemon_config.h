// understudyd's configuration file (docs/protect.md): INI sections [daemon],
// [replication] and one [guest NAME] per guest this host runs or stands by
// for. Every key is checked; an unknown key is an error (a typo must not
// silently become a default).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint/kvm/kvm_guest_config.h"
#include "checkpoint/replicator.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/stream/tls_link.h"
#include "checkpoint/xen/checkpoint_way.h"
#include "checkpoint/xen/xl_config.h"
#include "heartbeat/heartbeat_service.h"
#include "netbuffer_qdisc/output_buffer.h"

namespace understudy::daemon {

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

inline constexpr std::uint16_t kDefaultStreamPort = 7300;

struct GuestConfig {
    std::string name;
    std::string backend = "kvm";     // "kvm": understudyd runs it; "xen": an xl domain
    // backend = xen: the domain's xl.cfg on this host (read at start), and
    // whether its writable disks may lack DRBD replication.
    std::filesystem::path xl_config;
    std::optional<xen::XlConfig> xl;
    bool allow_unreplicated_disk = false;
    xen::CheckpointWay checkpoint_way = xen::CheckpointWay::pause; // checkpoint = pause | suspend
    kvm::KvmGuestConfig vm;          // kvm: image, RAM, MAC, IP, port, workload
    std::string tap;                 // "": the guest has no NIC
    std::filesystem::path disk;      // "": no disk
    std::uint64_t disk_bytes = 0;    // size when the image is created
    bool autostart = true;           // boot when the daemon starts (primary)
};

// Failure detection and failover ([heartbeat]); absent: neither.
struct FailoverConfig {
    HeartbeatSettings heartbeat;      // node, key and paths filled in
    std::optional<std::string> witness; // client-side IPv4 address
    // The uplink to the client-facing network (keepalived's track_interface):
    // when it is down, the client side counts as lost at once.
    std::optional<std::string> track_interface;
    std::optional<std::string> fence_command;
    bool automatic = true;            // failover = auto
    unsigned garp_count = 3;          // gratuitous ARPs in each burst
    std::chrono::milliseconds garp_repeat{2000}; // then one more burst after this
    // reprotect = auto: a guest taken over here is protected again toward the
    // peer (peer_stream) as soon as the peer is heard and runs no copy of it.
    bool reprotect_automatic = false;
    std::optional<Endpoint> peer_stream;  // the peer's stream listener
    // Neither witness nor fence_command, and a takeover may happen anyway
    // (allow_unguarded_takeover = yes): it may run the guest twice.
    bool allow_unguarded = false;
    // What to do when heartbeats come back and both hosts run a guest
    // (after_split_brain, as DRBD's after-sb-* settings): report it and
    // leave both running for an operator to choose (disconnect), or stop
    // the copy that became active later (discard-younger).
    enum class SplitBrainPolicy { disconnect, discard_younger };
    SplitBrainPolicy after_split_brain = SplitBrainPolicy::disconnect;
};

struct DaemonConfig {
    std::filesystem::path source;
    std::string node;
    std::filesystem::path control_socket = "/run/understudy/understudyd.sock";
    std::filesystem::path state_dir = "/var/lib/understudy";
    bool lock_memory = true;           // mlockall at start (lock_memory = no: not)
    std::optional<Endpoint> metrics;   // Prometheus endpoint, none: off
    std::optional<Endpoint> listen;    // accept streams (backup role), none: off
    std::optional<TlsSettings> tls;    // none only with insecure
    std::filesystem::path psk_file;    // where tls->psk was read from (pre-shared key mode)
    bool insecure = false;
    ReplicationSettings replication;
    OutputBufferSettings output;       // output commit of protected guests
    std::optional<FailoverConfig> failover;
    std::vector<GuestConfig> guests;
    // Tools the Xen backend runs (absolute paths or names on PATH).
    std::string drbdsetup = "drbdsetup";
    std::string drbdadm = "drbdadm";
    std::filesystem::path netbuf_setup; // scripts/netbuf-setup
    std::filesystem::path xen_lib_dir = "/var/lib/xen"; // where libxl saves device model state
    std::filesystem::path xen_run_dir = "/var/run/xen"; // where QEMU's QMP sockets are

    [[nodiscard]] const GuestConfig *guest(const std::string &name) const;
};

// Throws ConfigError naming the file, the key and what is wrong.
[[nodiscard]] DaemonConfig load_daemon_config(const std::filesystem::path &path);
[[nodiscard]] DaemonConfig parse_daemon_config(const std::string &text, const std::filesystem::path &source);

} // namespace understudy::daemon
