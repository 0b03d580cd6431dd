// The split-brain guard (ARCHITECTURE.md §6) as pure decisions, so that every
// rule is tested on its own: when a backup may take over a guest, and when a
// primary must hand its guest over because clients cannot reach it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace understudy {

struct GuardSettings {
    bool witness = false;    // a witness address is configured
    bool fencing = false;    // a fencing command is configured (run by the caller)
    bool automatic = true;   // failover = auto
    std::chrono::milliseconds timeout{1000};
    std::chrono::milliseconds interval{100};
    // Neither witness nor fencing, and the operator said a takeover may
    // happen anyway (allow_unguarded_takeover = yes): it may run the guest twice.
    bool unguarded_allowed = false;
};

// Which failures the configured guard covers, in words for status and docs:
// each line a failure and what happens. A pair is guarded against a
// partition (both hosts alive, every heartbeat path cut) only with fencing.
struct GuardCoverage {
    std::vector<std::string> covered, not_covered;
    bool partition_safe = false;
};
[[nodiscard]] GuardCoverage guard_coverage(const GuardSettings &guard);

// What the backup knows about one guest it holds a standby copy of.
struct TakeoverInput {
    bool standby_consistent = false;
    bool peer_ever_heard = false;   // a good heartbeat ever came
    bool peer_all_silent = true;    // no path alive now
    double peer_silent_s = -1;      // since the last good heartbeat
    bool peer_relinquished = false; // the primary stopped its copy for good
    bool witness_reachable = false; // from this host
    // The primary's host closed the replication stream without a goodbye
    // (its understudyd died) and the guest ran inside that process (the kvm
    // backend's VMM): the guest is gone, and a few silent heartbeat
    // intervals confirm it without waiting for the whole timeout.
    bool peer_process_died = false;
    // The primary released output past this copy's epoch: running it would
    // take the clients back in time (standby_registry.h).
    bool standby_outdated = false;
    std::string outdated_reason;
};

struct Verdict {
    enum Action { wait, take_over, refuse } action = wait;
    std::string reason;
};

[[nodiscard]] Verdict judge_takeover(const GuardSettings &guard, const TakeoverInput &in);

// What a primary knows when deciding whether to hand a guest over.
struct HandoverInput {
    bool protected_ = false;            // the backup holds a committed checkpoint
    bool witness_reachable = true;      // from this host
    double witness_silent_s = 0;        // since the witness last answered (or since probing began)
    bool peer_alive = false;            // heartbeats from the backup arrive
    bool peer_witness_reachable = false; // the backup says it reaches the witness
    bool uplink_down = false;           // the tracked client-facing interface is down: lost at once
};
// Heartbeat intervals of silence that confirm a primary whose process died.
inline constexpr int kProcessDeathIntervals = 3;

// True when this primary has lost the client side (its witness silent for the
// timeout) while its backup, alive, still reaches it.
[[nodiscard]] bool should_hand_over(const GuardSettings &guard, const HandoverInput &in);

} // namespace understudy
