#include "dom0d/daemon/failover_controller.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

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
        config_.heartbeat,
        [this](proto::HeartbeatPacket &p) {
            host_.describe(p);
            p.set_witness_reachable(witness_ && witness_->reachable());
        },
        log_);
    if (config_.witness)
        witness_ = std::make_unique<WitnessProbe>(*config_.witness, config_.heartbeat.interval,
                                                  config_.heartbeat.timeout);
}

FailoverController::~FailoverController()
{
    stop();
}

GuardSettings FailoverController::guard() const
{
    return {config_.witness.has_value(), config_.fence_command.has_value(), config_.automatic,
            config_.heartbeat.timeout};
}

void FailoverController::start()
{
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
                    (g.fencing ? ", fencing" : "") + (!g.witness && !g.fencing ? " (UNGUARDED pair)" : "") +
                    "; failover " + (g.automatic ? "auto" : "manual"));
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

void FailoverController::tick()
{
    std::lock_guard lock(mutex_);
    const auto view = heartbeat_->peer();
    const bool peer_alive = !view.all_silent;
    if (view.ever_heard && peer_alive != peer_was_alive_)
        events_.add("", peer_alive ? "peer_alive" : "peer_silent",
                    config_.heartbeat.peer_node +
                        (peer_alive ? " is heard again" : " is silent on every heartbeat path"));
    peer_was_alive_ = peer_alive;
    const auto g = guard();
    const bool witness_ok = witness_ && witness_->reachable();

    for (const auto &guest : host_.standbys()) {
        TakeoverInput in;
        in.standby_consistent = true;
        in.peer_ever_heard = view.ever_heard;
        in.peer_all_silent = view.all_silent;
        in.peer_silent_s = view.silent_s;
        in.peer_relinquished = view.last && names_role(*view.last, guest, "relinquished");
        in.witness_reachable = witness_ok;
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
        if (!fence(guest))
            continue;
        events_.add(guest, "takeover", verdict.reason);
        try {
            host_.take_over(guest);
        } catch (const std::exception &e) {
            events_.add(guest, "takeover_failed", e.what());
            continue;
        }
        schedule_announcements(guest);
        heartbeat_->send_now(); // the peer learns at once that the guest runs here
    }

    for (const auto &guest : host_.protected_primaries()) {
        HandoverInput in;
        in.protected_ = true;
        in.witness_reachable = witness_ok;
        in.witness_silent_s = witness_ ? witness_->silent_s() : 0;
        in.peer_alive = peer_alive;
        in.peer_witness_reachable = view.last && view.last->witness_reachable();
        if (!should_hand_over(g, in))
            continue;
        events_.add(guest, "handover",
                    "the witness " + *config_.witness + " does not answer this host while " +
                        config_.heartbeat.peer_node + " reaches it: handing the guest over");
        try {
            host_.hand_over(guest);
        } catch (const std::exception &e) {
            events_.add(guest, "handover_failed", e.what());
            continue;
        }
        heartbeat_->send_now();
    }

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
    heartbeat_->send_now();
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
        if (g.name() == guest && g.role() != "standby")
            return true;
    return false;
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
    return s;
}

} // namespace understudy::daemon
