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
    if (in.peer_relinquished) {
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
    if (guard.witness && !in.witness_reachable)
        return {Verdict::refuse, silent + ", but the witness does not answer this host either: it may be this host "
                                          "that is cut off, so it does not take over"};
    if (!guard.automatic)
        return {Verdict::refuse, silent + "; failover = manual: run `understudy failover GUEST` to take over"};
    return {Verdict::take_over, silent + (guard.witness ? " and the witness answers" : " (UNGUARDED: no witness)")};
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
