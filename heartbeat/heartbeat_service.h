// Heartbeats between the two hosts of a pair (ARCHITECTURE.md §6): every
// interval this host sends an HMAC-signed UDP packet to the peer's address on
// each configured path (the replication link, the client-facing network, ...)
// and listens for the peer's. A path is alive while packets from the peer's
// address on it keep arriving within the timeout. Packets with a wrong MAC,
// from an unknown address, from another node or replayed are refused,
// counted and never count as life. Replay protection needs no clock: within
// one daemon run the sequence grows, and a new run is believed once its
// packets echo this run's id and one of its recent sequence numbers (or,
// where the peer cannot hear us, when it was sent later than anything
// believed before).
//
// Heartbeats are the host's pulse, so nothing they do may wait on guest
// work, disk I/O or tools: Fill must return at once (FailoverController
// fills from a copy it refreshes on its own thread), and both threads ask
// for real-time priority (as Corosync's do) where the system allows it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/progress_mark.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/unique_fd.h"
#include "proto/heartbeat.pb.h"

namespace understudy {

struct HeartbeatSettings {
    std::string node;                  // this host
    std::string peer_node;             // the only sender accepted
    Endpoint listen{"0.0.0.0", 7301};
    std::vector<Endpoint> paths;       // the peer's address on each path (IPv4)
    std::chrono::milliseconds interval{100};
    std::chrono::milliseconds timeout{1000};
    std::vector<std::uint8_t> key;     // the pair's key
};

struct HeartbeatPath {
    Endpoint peer;
    bool alive = false;
    double silent_s = -1; // since the last good packet; -1: none yet
    std::uint64_t received = 0;
    std::uint64_t refused = 0;
};

struct PeerView {
    std::vector<HeartbeatPath> paths;
    bool ever_heard = false;
    bool all_silent = true;        // no path alive
    double silent_s = -1;          // since the last good packet on any path
    std::optional<proto::HeartbeatPacket> last; // the newest good packet
    std::uint64_t refused_unknown = 0; // from addresses that are no path
};

class HeartbeatService {
  public:
    // Fills in this host's state for the next packet (guests, witness).
    using Fill = std::function<void(proto::HeartbeatPacket &)>;
    using Log = std::function<void(const std::string &)>;

    // Binds the socket; throws std::runtime_error saying why it cannot.
    HeartbeatService(HeartbeatSettings settings, Fill fill, Log log);
    ~HeartbeatService();
    HeartbeatService(const HeartbeatService &) = delete;
    HeartbeatService &operator=(const HeartbeatService &) = delete;

    void start();
    void stop();
    // Sends one round now (a state change the peer should learn at once).
    void send_now();
    // Muted, this host sends nothing (it plays dead in a drill) but still
    // listens to the peer.
    void set_muted(bool muted) noexcept { muted_ = muted; }

    [[nodiscard]] PeerView peer() const;
    // Takes one packet as if it had arrived from `from_ip` (IPv4, network
    // order): the receive thread's path, for tests and the fuzz target.
    void receive(std::span<const std::uint8_t> bytes, std::uint32_t from_ip) { handle(bytes, from_ip); }
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    // This run's id and the sequence number of its last packet.
    [[nodiscard]] std::uint64_t boot_id() const noexcept { return boot_id_; }
    [[nodiscard]] std::uint64_t sequence() const noexcept { return seq_.load(); }
    // The sender goes round every interval, the receiver every 50 ms.
    [[nodiscard]] const ProgressMark &sender_progress() const noexcept { return sender_progress_; }
    [[nodiscard]] const ProgressMark &receiver_progress() const noexcept { return receiver_progress_; }
    [[nodiscard]] const HeartbeatSettings &settings() const noexcept { return settings_; }

  private:
    struct PathTrack {
        std::chrono::steady_clock::time_point last_good{};
        std::uint64_t boot_id = 0, seq = 0;
        std::uint64_t received = 0, refused = 0;
    };
    void send_round();
    void receive_loop();
    void handle(std::span<const std::uint8_t> bytes, std::uint32_t from_ip);
    void refuse(PathTrack *path, const std::string &why, const std::string &from);
    void raise_priority();

    HeartbeatSettings settings_;
    Fill fill_;
    Log log_;
    UniqueFd socket_;
    std::uint16_t port_ = 0;
    std::vector<std::uint32_t> path_ips_; // network order, as paths
    std::uint64_t boot_id_;
    std::mutex send_mutex_;
    std::atomic<bool> muted_{false};
    std::atomic<std::uint64_t> seq_{0};
    ProgressMark sender_progress_, receiver_progress_;

    mutable std::mutex mutex_;
    std::vector<PathTrack> tracks_;
    // The newest packet from the peer with a good MAC, echoed in ours.
    std::uint64_t heard_boot_ = 0, heard_seq_ = 0;
    std::optional<proto::HeartbeatPacket> last_;
    std::uint64_t refused_unknown_ = 0;
    std::chrono::steady_clock::time_point last_refusal_log_{};
    bool stopping_ = false;
    std::thread sender_, receiver_;
};

} // namespace understudy
