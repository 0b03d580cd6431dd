// What the primary's replication is doing, for `understudy status`, the
// metrics and the log: a copy taken at one moment.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace understudy {

enum class ProtectionState {
    connecting,  // no stream to the backup yet
    syncing,     // full copy to a new standby in progress
    protected_,  // a checkpoint epoch is committed on the backup
    unprotected, // the backup was lost; the guest runs without a standby
    stopped,
};

[[nodiscard]] const char *state_name(ProtectionState state) noexcept;

// One checkpoint epoch's pause and ack on the wall clock, for tests and
// audits that compare them with a capture of the guest's output.
struct EpochAck {
    std::uint64_t epoch = 0;
    std::uint64_t paused_unix_ns = 0; // the pause that ended the epoch began
    std::uint64_t acked_unix_ns = 0;  // its ack arrived (before its output was released)
};

struct ReplicationStatus {
    ProtectionState state = ProtectionState::connecting;
    std::string peer;
    std::string last_error;
    std::string compression;
    std::uint64_t epoch = 0;       // last epoch staged in this stream
    std::uint64_t acked_epoch = 0; // last epoch the backup committed
    // The stream now running (syncing, protected) or the last one (its Hello
    // named it); 0: none yet. Heartbeats tell the backup, so that it knows
    // whether its copy is still current (docs/failover.md, outdated).
    std::uint64_t stream_id = 0;
    double last_ack_age_s = -1;    // -1: none yet
    std::uint64_t checkpoints = 0; // all streams together
    std::uint64_t pause_p50_us = 0, pause_p99_us = 0, pause_max_us = 0, pause_last_us = 0;
    std::uint64_t dirty_pages_last = 0;
    double dirty_pages_avg = 0;
    std::uint64_t bytes_sent = 0;    // on the wire, all streams
    std::uint64_t page_bytes = 0;    // pages shipped, before compression
    std::uint64_t payload_bytes = 0; // the same pages as sent
    std::uint64_t sender_waits = 0;  // pauses delayed because shipping fell behind
    std::uint64_t resyncs = 0;       // full copies started after a loss
    std::uint64_t backup_losses = 0;
    double ack_latency_avg_ms = 0;

    [[nodiscard]] double compression_ratio() const
    {
        return payload_bytes ? static_cast<double>(page_bytes) / static_cast<double>(payload_bytes) : 1.0;
    }
};

} // namespace understudy
