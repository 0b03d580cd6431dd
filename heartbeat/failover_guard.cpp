#include "heartbeat/failover_guard.h"

#include <cstdio>

namespace understudy {

namespace {

std::string seconds(double s)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f s", s);
    return buf;
}

} // namespace

Verdict judge_takeover(const GuardSettings &guard, const TakeoverInput &in)
{
    const double timeout_s = std::chrono::duration<double>(guard.timeout).count();
    if (!in.standby_consistent)
        return {Verdict::wait, "no committed checkpoint to start from"};
    if (in.peer_relinquished) { // handed over at an acked checkpoint: current by construction
        if (guard.witness && !in.witness_reachable)
            return {Verdict::refuse, "the primary handed the guest over, but this host does not reach the witness either"};
        return {Verdict::take_over, "the primary handed the guest over (it lost its client-facing network)"};
    }
    if (!in.peer_ever_heard)
        return {Verdict::wait, "the primary's heartbeat was never heard on any path (check [heartbeat] paths and the key)"};
    const double confirm_s = kProcessDeathIntervals * std::chrono::duration<double>(guard.interval).count();
    const bool died = in.peer_process_died && in.peer_silent_s >= confirm_s;
    if (!died && (!in.peer_all_silent || in.peer_silent_s < timeout_s))
        return {Verdict::wait, "the primary is alive"};
    const std::string silent =
        died ? "the primary's understudyd died (its host closed the stream without a goodbye; silent on every path "
               "for " + seconds(in.peer_silent_s) + ") and the guest with it"
             : "the primary is silent on every path for " + seconds(in.peer_silent_s);
    if (in.standby_outdated)
        return {Verdict::refuse, silent + ", but this standby is OUTDATED (" + in.outdated_reason +
                                     "): running it would take the guest's clients back in time; only an operator "
                                     "may (`understudy takeover --force GUEST`)"};
    if (guard.witness && !in.witness_reachable)
        return {Verdict::refuse, silent + ", but the witness does not answer this host either: it may be this host "
                                          "that is cut off, so it does not take over"};
    if (!guard.automatic)
        return {Verdict::refuse, silent + "; failover = manual: run `understudy takeover GUEST` to take over"};
    if (!guard.witness && !guard.fencing && !guard.unguarded_allowed)
        return {Verdict::refuse, silent + ", but no guard is configured (no witness, no fence_command): a takeover "
                                          "could run the guest twice; configure one, or set "
                                          "allow_unguarded_takeover = yes in [heartbeat] to accept that"};
    return {Verdict::take_over,
            silent + (guard.witness ? " and the witness answers"
                                    : guard.fencing ? "" : " (UNGUARDED: no witness, no fencing; allowed by configuration)")};
}

GuardCoverage guard_coverage(const GuardSettings &guard)
{
    GuardCoverage c;
    const bool acts = guard.witness || guard.fencing || guard.unguarded_allowed;
    const std::string takeover = !guard.automatic ? "an operator takes over (`understudy takeover`; failover = manual)"
                                 : acts           ? "the backup takes over after the heartbeat timeout"
                                                  : "NOBODY takes over: no guard is configured (allow_unguarded_takeover = no)";
    (guard.automatic && !acts ? c.not_covered : c.covered)
        .push_back("the primary host dies (power cut, crash, its understudyd killed with a kvm guest): " + takeover);
    if (guard.witness) {
        c.covered.push_back("the backup is cut off from the clients (it does not reach the witness): it does not take "
                            "over");
        c.covered.push_back("the primary loses its client-facing network while the backup has it: the primary hands "
                            "the guest over");
    } else {
        c.not_covered.push_back("the backup is cut off from the clients: it would take over a guest nobody can reach "
                                "(no witness)");
        c.not_covered.push_back("the primary loses its client-facing network: no hand-over (no witness)");
    }
    if (guard.fencing) {
        c.covered.push_back("a partition (both hosts alive, every heartbeat path cut): the backup fences the primary "
                            "(fence_command must succeed) before it takes over, so one copy runs");
        c.partition_safe = true;
    } else {
        c.not_covered.push_back(std::string("a partition (both hosts alive, every heartbeat path cut") +
                                (guard.witness ? ", both reaching the witness" : "") +
                                "): BOTH run the guest (split brain), detected and reported when heartbeats resume; "
                                "only fencing prevents it");
    }
    c.covered.push_back("the standby is outdated (the primary ran on without it): it never takes over by itself");
    return c;
}

bool should_hand_over(const GuardSettings &guard, const HandoverInput &in)
{
    const double timeout_s = std::chrono::duration<double>(guard.timeout).count();
    if (!guard.witness || !guard.automatic || !in.protected_)
        return false;
    const bool lost = in.uplink_down || (!in.witness_reachable && in.witness_silent_s >= timeout_s);
    return lost && in.peer_alive && in.peer_witness_reachable;
}

} // namespace understudy
