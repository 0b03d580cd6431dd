#include "dom0d/daemon/failover_controller.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "heartbeat/uplink_state.h"

namespace understudy::daemon {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFenceTimeout = std::chrono::seconds(30);
constexpr auto kFenceRetry = std::chrono::seconds(5);

// Runs `command` with sh -c and the given extra environment; true if it
// exited 0 within the time limit (killed otherwise). *what says how it ended.
bool run_with_timeout(const std::string &command, const std::vector<std::string> &env, std::string *what)
{
    const pid_t pid = fork();
    if (pid < 0) {
        *what = "cannot fork";
        return false;
    }
    if (pid == 0) {
        for (const auto &e : env)
            putenv(const_cast<char *>(e.c_str()));
        execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    const auto until = Clock::now() + kFenceTimeout;
    int status = 0;
    for (;;) {
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (Clock::now() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            *what = "did not finish within 30 s (killed)";
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        *what = "exited 0";
        return true;
    }
    *what = WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                              : "killed by signal " + std::to_string(WTERMSIG(status));
    return false;
}

bool names_role(const proto::HeartbeatPacket &p, const std::string &guest, const std::string &role)
{
    for (const auto &g : p.guests())
        if (g.name() == guest && g.role() == role)
            return true;
    return false;
}

} // namespace

FailoverController::FailoverController(FailoverConfig config, Host host, EventLog &events, Log log)
    : config_(std::move(config)), host_(std::move(host)), events_(events), log_(std::move(log))
{
    heartbeat_ = std::make_unique<HeartbeatService>(
        config_.heartbeat, [this](proto::HeartbeatPacket &p) { fill(p); }, log_);
    if (config_.witness)
        witness_ = std::make_unique<WitnessProbe>(*config_.witness, config_.heartbeat.interval,
                                                  config_.heartbeat.timeout);
}

void FailoverController::refresh_report()
{
    proto::HeartbeatPacket report;
    host_.describe(report); // may wait on the daemon: this thread only
    {
        std::lock_guard lock(takeovers_mutex_);
        for (auto &g : *report.mutable_guests()) {
            auto it = takeovers_.find(g.name());
            if (g.role() == "activated" && it != takeovers_.end()) {
                g.set_detection_ms(it->second.detection_ms);
                g.set_activation_ms(it->second.activation_ms);
                g.set_takeover_timed(true);
            }
        }
    }
    std::lock_guard lock(report_mutex_);
    report_.Swap(&report);
}

void FailoverController::fill(proto::HeartbeatPacket &packet)
{
    // Called by the heartbeat sender: copies, never waits on the daemon.
    {
        std::lock_guard lock(report_mutex_);
        packet.mutable_guests()->CopyFrom(report_.guests());
    }
    packet.set_witness_reachable(witness_ok_.load());
}

FailoverController::~FailoverController()
{
    stop();
}

GuardSettings FailoverController::guard() const
{
    return {config_.witness.has_value(), config_.fence_command.has_value(), config_.automatic,
            config_.heartbeat.timeout, config_.heartbeat.interval, config_.allow_unguarded};
}

void FailoverController::start()
{
    refresh_report(); // the first heartbeat already says what runs here
    heartbeat_->start();
    std::string paths;
    for (const auto &p : config_.heartbeat.paths)
        paths += (paths.empty() ? "" : ", ") + p.to_string();
    const auto g = guard();
    events_.add("", "failure_detection",
                "heartbeats to " + config_.heartbeat.peer_node + " on " + paths + " every " +
                    std::to_string(config_.heartbeat.interval.count()) + " ms, timeout " +
                    std::to_string(config_.heartbeat.timeout.count()) + " ms; " +
                    (g.witness ? "witness " + *config_.witness : std::string("no witness")) +
                    (config_.track_interface ? ", uplink " + *config_.track_interface + " tracked" : std::string()) +
                    (g.fencing ? ", fencing" : "") +
                    (!g.witness && !g.fencing ? (g.unguarded_allowed ? " (UNGUARDED pair: takeovers allowed anyway)"
                                                                     : " (UNGUARDED pair: no automatic takeover)")
                                              : "") +
                    "; failover " + (g.automatic ? "auto" : "manual") +
                    (guard_coverage(g).partition_safe ? "" : "; NOT guarded against a partition (no fencing)"));
    thread_ = std::thread([this] { run(); });
}

void FailoverController::stop()
{
    {
        std::lock_guard lock(stop_mutex_);
        stopping_ = true;
    }
    if (thread_.joinable())
        thread_.join();
    if (heartbeat_)
        heartbeat_->stop();
}

void FailoverController::run()
{
    for (;;) {
        {
            std::lock_guard lock(stop_mutex_);
            if (stopping_)
                return;
        }
        progress_.mark();
        try {
            tick();
        } catch (const std::exception &e) {
            if (log_)
                log_(std::string("failover monitor: ") + e.what());
        }
        std::this_thread::sleep_for(config_.heartbeat.interval);
    }
}

bool FailoverController::fence(const std::string &guest)
{
    if (!config_.fence_command)
        return true;
    const auto now = Clock::now();
    if (now < next_fence_try_[guest])
        return false;
    next_fence_try_[guest] = now + kFenceRetry;
    std::string what;
    const bool ok = run_with_timeout(*config_.fence_command,
                                     {"UNDERSTUDY_PEER=" + config_.heartbeat.peer_node, "UNDERSTUDY_GUEST=" + guest},
                                     &what);
    events_.add(guest, ok ? "fenced" : "fence_failed",
                "fence_command for " + config_.heartbeat.peer_node + " " + what +
                    (ok ? "" : "; not taking over (tried again in 5 s)"));
    return ok;
}

void FailoverController::schedule_announcements(const std::string &guest)
{
    host_.announce(guest);
    if (config_.garp_repeat.count() > 0)
        announcements_.emplace_back(Clock::now() + config_.garp_repeat, guest);
}

bool FailoverController::uplink_down() const
{
    return config_.track_interface && interface_down(*config_.track_interface);
}

bool FailoverController::process_died(const PeerView &view, const std::string &guest) const
{
    if (!view.last || !host_.closed_by_peer_s)
        return false;
    bool in_process = false;
    for (const auto &g : view.last->guests())
        in_process = in_process || (g.name() == guest && g.dies_with_daemon());
    const double closed = host_.closed_by_peer_s(guest);
    const double interval_s = std::chrono::duration<double>(config_.heartbeat.interval).count();
    // The stream closed when the heartbeats stopped, not long before (a
    // primary that dropped a slow stream and then lost its heartbeats for a
    // moment is no dead process).
    return in_process && closed >= 0 && closed <= view.silent_s + interval_s;
}

bool FailoverController::take_over(const std::string &guest, const std::string &reason, double peer_silent_s)
{
    const auto decided = Clock::now();
    if (!fence(guest))
        return false;
    events_.add(guest, "takeover", reason);
    try {
        host_.take_over(guest);
    } catch (const std::exception &e) {
        events_.add(guest, "takeover_failed", e.what());
        return false;
    }
    Takeover t;
    t.detection_ms = static_cast<std::uint32_t>(std::max(0.0, peer_silent_s) * 1000);
    t.activation_ms = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - decided).count());
    {
        std::lock_guard lock(takeovers_mutex_);
        takeovers_[guest] = t;
    }
    schedule_announcements(guest);
    refresh_report();
    heartbeat_->send_now(); // the peer learns at once that the guest runs here
    events_.add(guest, "active",
                "runs here " + std::to_string(t.detection_ms + t.activation_ms) + " ms after the last heartbeat of " +
                    config_.heartbeat.peer_node + " (detection " + std::to_string(t.detection_ms) +
                    " ms, activation " + std::to_string(t.activation_ms) + " ms)");
    return true;
}

void FailoverController::drop_silent_backups(const PeerView &view)
{
    if (!host_.drop_silent_backups || !view.ever_heard)
        return;
    std::vector<std::string> silent;
    for (const auto &p : view.paths)
        if (!p.alive && p.silent_s >= 0)
            silent.push_back(p.peer.host);
    if (silent.empty())
        return;
    const std::string why = view.all_silent
                                ? config_.heartbeat.peer_node + " is silent on every heartbeat path"
                                : "no heartbeat from " + config_.heartbeat.peer_node +
                                      " on the path to its stream address for the timeout";
    host_.drop_silent_backups(silent, why);
}

void FailoverController::reprotect_returned_peer(const PeerView &view)
{
    if (!config_.reprotect_automatic || view.all_silent || !view.last || !host_.unprotected_actives)
        return;
    for (const auto &guest : host_.unprotected_actives()) {
        bool peer_holds = false;
        for (const auto &g : view.last->guests())
            peer_holds = peer_holds || (g.name() == guest && (g.role() == "primary" || g.role() == "activated"));
        if (peer_holds)
            continue; // never two protections of one guest: the operator must sort this out
        const auto now = Clock::now();
        if (now < next_reprotect_try_[guest])
            continue;
        next_reprotect_try_[guest] = now + kFenceRetry;
        try {
            host_.reprotect(guest);
            events_.add(guest, "reprotect",
                        config_.heartbeat.peer_node + " is back and runs no copy: it becomes the backup after a "
                                                      "full resync (reprotect = auto)");
        } catch (const std::exception &e) {
            events_.add(guest, "reprotect_failed", std::string(e.what()) + " (tried again in 5 s)");
        }
    }
}

void FailoverController::tick()
{
    std::lock_guard lock(mutex_);
    refresh_report();
    const auto view = heartbeat_->peer();
    const bool peer_alive = !view.all_silent;
    if (view.ever_heard && peer_alive != peer_was_alive_)
        events_.add("", peer_alive ? "peer_alive" : "peer_silent",
                    config_.heartbeat.peer_node +
                        (peer_alive ? " is heard again" : " is silent on every heartbeat path"));
    peer_was_alive_ = peer_alive;
    const auto g = guard();
    const bool uplink_lost = uplink_down();
    if (config_.track_interface && uplink_lost != uplink_was_down_)
        events_.add("", uplink_lost ? "uplink_down" : "uplink_up",
                    "the tracked client-facing interface " + *config_.track_interface + " is " +
                        (uplink_lost ? "down" : "up again"));
    uplink_was_down_ = uplink_lost;
    const bool witness_ok = witness_ && witness_->reachable() && !uplink_lost;
    witness_ok_ = witness_ok;

    const auto standbys = host_.standbys();
    outdate_standbys(view, standbys);
    for (const auto &held : host_.standbys()) {
        const auto &guest = held.guest;
        TakeoverInput in;
        in.standby_consistent = true;
        in.standby_outdated = held.outdated;
        in.outdated_reason = held.outdated_reason;
        in.peer_ever_heard = view.ever_heard;
        in.peer_all_silent = view.all_silent;
        in.peer_silent_s = view.silent_s;
        in.peer_relinquished = view.last && names_role(*view.last, guest, "relinquished");
        in.witness_reachable = witness_ok;
        in.peer_process_died = process_died(view, guest);
        const auto verdict = judge_takeover(g, in);
        if (verdict.action == Verdict::wait) {
            last_refusal_.erase(guest);
            continue;
        }
        if (verdict.action == Verdict::refuse) {
            if (last_refusal_[guest] != verdict.reason)
                events_.add(guest, "takeover_refused", verdict.reason);
            last_refusal_[guest] = verdict.reason;
            continue;
        }
        take_over(guest, verdict.reason, view.silent_s);
    }

    for (const auto &guest : host_.protected_primaries()) {
        HandoverInput in;
        in.protected_ = true;
        in.witness_reachable = witness_ok;
        in.witness_silent_s = witness_ ? witness_->silent_s() : 0;
        in.uplink_down = uplink_lost;
        in.peer_alive = peer_alive;
        in.peer_witness_reachable = view.last && view.last->witness_reachable();
        if (!should_hand_over(g, in))
            continue;
        events_.add(guest, "handover",
                    (uplink_lost ? "the tracked uplink " + *config_.track_interface + " is down"
                                 : "the witness " + *config_.witness + " does not answer this host") +
                        " while " + config_.heartbeat.peer_node + " reaches the witness: handing the guest over");
        try {
            host_.hand_over(guest);
        } catch (const std::exception &e) {
            events_.add(guest, "handover_failed", e.what());
            continue;
        }
        refresh_report();
        heartbeat_->send_now();
    }

    watch_split_brain(view);
    reprotect_returned_peer(view);
    drop_silent_backups(view);

    const auto now = Clock::now();
    for (auto it = announcements_.begin(); it != announcements_.end();) {
        if (it->first <= now) {
            host_.announce(it->second);
            it = announcements_.erase(it);
        } else {
            ++it;
        }
    }
}

void FailoverController::planned_switch(const std::string &guest)
{
    std::lock_guard lock(mutex_);
    const auto view = heartbeat_->peer();
    if (view.all_silent)
        throw std::runtime_error("no heartbeat from " + config_.heartbeat.peer_node +
                                 ": nobody to hand guest " + guest + " to");
    bool found = false;
    for (const auto &g : host_.protected_primaries())
        found = found || g == guest;
    if (!found)
        throw std::runtime_error("guest " + guest + " is not running protected here");
    events_.add(guest, "handover", "planned switch to " + config_.heartbeat.peer_node + " (understudy failover)");
    host_.hand_over(guest);
    refresh_report();
    heartbeat_->send_now();
}

void FailoverController::manual_takeover(const std::string &guest, bool force)
{
    std::lock_guard lock(mutex_);
    const auto view = heartbeat_->peer();
    std::optional<HeldStandby> held;
    for (const auto &s : host_.standbys())
        if (s.guest == guest)
            held = s;
    if (!held)
        throw std::runtime_error("this host holds no consistent standby of guest " + guest);
    std::vector<std::string> overridden;
    if (!view.all_silent)
        overridden.push_back(config_.heartbeat.peer_node + " is alive (heard " +
                             std::to_string(static_cast<int>(view.silent_s * 1000)) +
                             " ms ago): the guest may run there; for a planned switch run `understudy failover " +
                             guest + "` on " + config_.heartbeat.peer_node);
    if (held->outdated)
        overridden.push_back("the standby is OUTDATED (" + held->outdated_reason +
                             "): it would take the guest's clients back in time");
    if (!overridden.empty() && !force) {
        std::string why;
        for (const auto &o : overridden)
            why += (why.empty() ? "" : "; ") + o;
        throw std::runtime_error("not taking guest " + guest + " over: " + why + " (--force to do it anyway)");
    }
    std::string reason = "by the operator (understudy takeover)";
    if (!overridden.empty()) {
        std::string what;
        for (const auto &o : overridden)
            what += (what.empty() ? "" : "; ") + o;
        if (log_)
            log_("WARNING: guest " + guest + ": FORCED takeover by the operator although " + what);
        events_.add(guest, "forced_takeover", "the operator forced a takeover although " + what);
        reason = "FORCED by the operator (understudy takeover --force)";
    }
    if (config_.fence_command) {
        next_fence_try_.erase(guest); // an operator does not wait for the retry interval
        if (!fence(guest))
            throw std::runtime_error("not taking guest " + guest + " over: fence_command for " +
                                     config_.heartbeat.peer_node + " failed (see `understudy events`)");
    }
    if (!take_over(guest, reason, view.silent_s))
        throw std::runtime_error("the takeover of guest " + guest + " failed (see `understudy events`)");
}

void FailoverController::outdate_standbys(const PeerView &view, const std::vector<HeldStandby> &standbys)
{
    if (!view.last)
        return;
    for (const auto &held : standbys) {
        if (held.outdated)
            continue;
        for (const auto &g : view.last->guests()) {
            const bool runs_there = g.role() == "primary" || g.role() == "standalone" || g.role() == "activated";
            if (g.name() != held.guest || !runs_there)
                continue;
            if (g.stream_id() == held.stream_id && !g.stream_lost())
                continue; // its output waits for this copy's acks: current
            const std::string why =
                g.stream_id() == held.stream_id
                    ? config_.heartbeat.peer_node + " lost the stream that built this copy and runs the guest on "
                                                    "without a backup, releasing its output"
                    : config_.heartbeat.peer_node + " runs the guest " +
                          (g.stream_id() ? "on another stream (a resync not yet committed here, or another backup)"
                                         : "without protection") +
                          ", releasing output this copy does not have";
            if (host_.mark_outdated(held.guest, held.stream_id, why))
                events_.add(held.guest, "standby_outdated",
                            why + ": the standby at epoch " + std::to_string(held.epoch) +
                                " is outdated and will not take over by itself");
        }
    }
}

void FailoverController::watch_split_brain(const PeerView &view)
{
    std::map<std::string, std::string> now;
    if (!view.all_silent && view.last) {
        for (const auto &copy : host_.running()) {
            for (const auto &g : view.last->guests()) {
                const bool runs_there = g.role() == "primary" || g.role() == "standalone" || g.role() == "activated";
                if (g.name() != copy.guest || !runs_there)
                    continue;
                // The copy that became active later is the younger (ties:
                // the node name that sorts later), the same answer on both
                // hosts since both compare the same two numbers.
                const bool here_younger =
                    copy.active_since_unix_ns != g.active_since_unix_ns()
                        ? copy.active_since_unix_ns > g.active_since_unix_ns()
                        : config_.heartbeat.node > config_.heartbeat.peer_node;
                now[copy.guest] = "runs here (" + copy.role + ") and on " + config_.heartbeat.peer_node + " (" +
                                  g.role() + "): SPLIT BRAIN; the younger copy is " +
                                  (here_younger ? "this host's" : config_.heartbeat.peer_node + "'s");
                std::string known;
                {
                    std::lock_guard lock(split_mutex_);
                    if (auto it = split_brain_.find(copy.guest); it != split_brain_.end())
                        known = it->second;
                }
                if (!known.empty())
                    continue;
                const bool discard = config_.after_split_brain == FailoverConfig::SplitBrainPolicy::discard_younger;
                events_.add(copy.guest, "split_brain",
                            now[copy.guest] + (discard ? "; after_split_brain = discard-younger: it stops for good"
                                                       : "; after_split_brain = disconnect: both run until an operator "
                                                         "stops one (`understudy discard GUEST` on that host); "
                                                         "re-protection is refused meanwhile"));
                if (discard && here_younger) {
                    try {
                        host_.discard(copy.guest);
                        events_.add(copy.guest, "discarded",
                                    "stopped this host's copy for good: it became active later than " +
                                        config_.heartbeat.peer_node + "'s (after_split_brain = discard-younger)");
                        now.erase(copy.guest);
                        refresh_report();
                        heartbeat_->send_now();
                    } catch (const std::exception &e) {
                        events_.add(copy.guest, "discard_failed", e.what());
                    }
                }
            }
        }
    }
    std::lock_guard lock(split_mutex_);
    for (const auto &[guest, what] : split_brain_)
        if (!now.count(guest) && !view.all_silent)
            events_.add(guest, "split_brain_resolved", "only one host runs it now");
    if (!view.all_silent)
        split_brain_ = std::move(now);
}

std::string FailoverController::split_brain_of(const std::string &guest) const
{
    std::lock_guard lock(split_mutex_);
    auto it = split_brain_.find(guest);
    return it == split_brain_.end() ? "" : it->second;
}

bool FailoverController::peer_runs(const std::string &guest) const
{
    const auto until = Clock::now() + config_.heartbeat.timeout;
    auto view = heartbeat_->peer();
    while (!view.last && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        view = heartbeat_->peer();
    }
    if (!view.last)
        return false;
    for (const auto &g : view.last->guests())
        if (g.name() == guest && (g.role() == "primary" || g.role() == "activated"))
            return true;
    return false;
}

bool FailoverController::peer_alive() const
{
    return !heartbeat_->peer().all_silent;
}

void FailoverController::play_dead(bool dead)
{
    heartbeat_->set_muted(dead);
    if (!dead)
        heartbeat_->send_now();
}

std::optional<proto::HeartbeatGuest> FailoverController::wait_peer_activated(const std::string &guest,
                                                                            std::chrono::milliseconds timeout) const
{
    // The first heartbeat after the activation may come before the takeover
    // was timed; a guest activated by hand is never timed.
    const auto until = Clock::now() + timeout;
    std::optional<proto::HeartbeatGuest> untimed;
    Clock::time_point first_seen{};
    for (;;) {
        const auto view = heartbeat_->peer();
        if (view.last)
            for (const auto &g : view.last->guests()) {
                if (g.name() != guest || g.role() != "activated")
                    continue;
                if (g.takeover_timed())
                    return g;
                if (!untimed)
                    first_seen = Clock::now();
                untimed = g;
            }
        const auto now = Clock::now();
        if (untimed && now - first_seen > std::chrono::seconds(2))
            return untimed;
        if (now >= until)
            return untimed;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::vector<std::string> FailoverController::stalled(double limit_s) const
{
    std::vector<std::string> out;
    auto check = [&](const ProgressMark &mark, const char *what) {
        if (const double age = mark.age_s(); age > limit_s)
            out.push_back(std::string(what) + " (no round for " + std::to_string(static_cast<int>(age)) + " s)");
    };
    check(progress_, "the failover controller");
    check(heartbeat_->sender_progress(), "the heartbeat sender");
    check(heartbeat_->receiver_progress(), "the heartbeat receiver");
    return out;
}

proto::PairStatus FailoverController::status() const
{
    proto::PairStatus s;
    const auto view = heartbeat_->peer();
    s.set_peer_node(config_.heartbeat.peer_node);
    for (const auto &p : view.paths) {
        auto *path = s.add_paths();
        path->set_peer(p.peer.to_string());
        path->set_alive(p.alive);
        path->set_silent_s(p.silent_s);
        path->set_received(p.received);
        path->set_refused(p.refused);
    }
    s.set_peer_alive(!view.all_silent);
    const auto g = guard();
    s.set_guard(g.witness && g.fencing ? "witness+fencing" : g.witness ? "witness" : g.fencing ? "fencing" : "UNGUARDED");
    if (config_.witness)
        s.set_witness(*config_.witness);
    s.set_witness_reachable(witness_ && witness_->reachable());
    s.set_peer_witness_reachable(view.last && view.last->witness_reachable());
    s.set_failover(g.automatic ? "auto" : "manual");
    const auto coverage = guard_coverage(g);
    for (const auto &c : coverage.covered)
        s.add_guard_covers(c);
    for (const auto &c : coverage.not_covered)
        s.add_guard_misses(c);
    s.set_partition_safe(coverage.partition_safe);
    s.set_after_split_brain(config_.after_split_brain == FailoverConfig::SplitBrainPolicy::discard_younger
                                ? "discard-younger"
                                : "disconnect");
    {
        std::lock_guard lock(split_mutex_);
        for (const auto &[guest, what] : split_brain_) {
            auto *b = s.add_split_brain();
            b->set_guest(guest);
            b->set_what(what);
        }
    }
    if (config_.track_interface) {
        s.set_track_interface(*config_.track_interface);
        s.set_uplink_down(uplink_down());
    }
    return s;
}

} // namespace understudy::daemon
