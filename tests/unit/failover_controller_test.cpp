// Two hosts' FailoverControllers, each with a TEST DOUBLE of its daemon (the
// Host port: which guests run here, which standbys are held), talking real
// heartbeats over loopback (127.0.0.1 and 127.0.0.2). What is tested is the
// decision and the heartbeats: a busy daemon still sends them; an outdated
// standby never takes over by itself; a partition runs one copy with fencing
// and two without, and the split brain is reported (and, if configured,
// resolved) when heartbeats resume.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "dom0d/daemon/failover_controller.h"
#include "tests/support/log_lines.h"

using namespace understudy;
using namespace understudy::daemon;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

template <class Pred> bool wait_until(Pred pred, std::chrono::milliseconds timeout)
{
    const auto until = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() > until)
            return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

std::uint64_t unix_ns()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// A UDP port free on both 127.0.0.1 and 127.0.0.2 (each host listens on its own address).
std::uint16_t free_udp_port()
{
    for (;;) {
        int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(0x7f000001u);
        ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
        ::close(fd);
        const auto port = ntohs(a.sin_port);
        int other = ::socket(AF_INET, SOCK_DGRAM, 0);
        a.sin_addr.s_addr = htonl(0x7f000002u);
        const bool ok = ::bind(other, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        ::close(other);
        if (ok)
            return port;
    }
}

// TEST DOUBLE of a daemon behind the Host port: guests that run here (with
// the replication stream a primary would report) and standbys held here.
struct FakeDaemon {
    struct Copy {
        std::string role;
        std::uint64_t active_since = 0, stream_id = 0;
        bool stream_lost = false;
    };
    std::mutex mutex;
    std::map<std::string, Copy> running;
    std::map<std::string, FailoverController::HeldStandby> standbys;
    std::atomic<bool> busy{false}; // describe() waits while set (the daemon's lock held by a hung tool)
    std::atomic<int> takeovers{0};

    FailoverController::Host host()
    {
        FailoverController::Host h;
        h.describe = [this](proto::HeartbeatPacket &p) {
            while (busy)
                std::this_thread::sleep_for(5ms);
            std::lock_guard lock(mutex);
            for (const auto &[name, c] : running) {
                auto *g = p.add_guests();
                g->set_name(name);
                g->set_role(c.role);
                g->set_active_since_unix_ns(c.active_since);
                g->set_stream_id(c.stream_id);
                g->set_stream_lost(c.stream_lost);
            }
            for (const auto &[name, s] : standbys) {
                auto *g = p.add_guests();
                g->set_name(name);
                g->set_role("standby");
                g->set_acked_epoch(s.epoch);
            }
        };
        h.standbys = [this] {
            std::lock_guard lock(mutex);
            std::vector<FailoverController::HeldStandby> v;
            for (const auto &[name, s] : standbys)
                v.push_back(s);
            return v;
        };
        h.mark_outdated = [this](const std::string &guest, std::uint64_t stream, const std::string &why) {
            std::lock_guard lock(mutex);
            auto it = standbys.find(guest);
            if (it == standbys.end() || it->second.stream_id != stream || it->second.outdated)
                return false;
            it->second.outdated = true;
            it->second.outdated_reason = why;
            return true;
        };
        h.running = [this] {
            std::lock_guard lock(mutex);
            std::vector<FailoverController::RunningCopy> v;
            for (const auto &[name, c] : running)
                v.push_back({name, c.role, c.active_since});
            return v;
        };
        h.discard = [this](const std::string &guest) {
            std::lock_guard lock(mutex);
            running.erase(guest);
        };
        h.closed_by_peer_s = [](const std::string &) { return -1.0; };
        h.protected_primaries = [this] {
            std::lock_guard lock(mutex);
            std::vector<std::string> v;
            for (const auto &[name, c] : running)
                if (c.role == "primary" && !c.stream_lost)
                    v.push_back(name);
            return v;
        };
        h.take_over = [this](const std::string &guest) {
            std::lock_guard lock(mutex);
            if (!standbys.erase(guest))
                throw std::runtime_error("no standby of " + guest);
            running[guest] = {"activated", unix_ns(), 0, false};
            ++takeovers;
        };
        h.announce = [](const std::string &) {};
        h.hand_over = [](const std::string &) {};
        h.unprotected_actives = [] { return std::vector<std::string>{}; };
        h.reprotect = [](const std::string &) { throw std::runtime_error("TEST: no re-protection"); };
        h.drop_silent_backups = [](const std::vector<std::string> &, const std::string &) {};
        return h;
    }
    bool runs(const std::string &guest)
    {
        std::lock_guard lock(mutex);
        return running.count(guest) > 0;
    }
};

struct Side {
    testing::LogLines log;
    EventLog events{std::ref(log)};
    FakeDaemon daemon;
    std::unique_ptr<FailoverController> controller;

    bool has_event(const std::string &kind, const std::string &text = "")
    {
        const auto all = events.since(0);
        for (const auto &e : all.events())
            if (e.kind() == kind && e.reason().find(text) != std::string::npos)
                return true;
        return false;
    }
};

FailoverConfig pair_config(const std::string &node, const std::string &peer, const std::string &listen_ip,
                           const std::string &peer_ip, std::uint16_t port)
{
    FailoverConfig c;
    c.heartbeat.node = node;
    c.heartbeat.peer_node = peer;
    c.heartbeat.listen = {listen_ip, port};
    c.heartbeat.paths = {{peer_ip, port}};
    c.heartbeat.interval = 50ms;
    c.heartbeat.timeout = 500ms;
    c.heartbeat.key = std::vector<std::uint8_t>(32, 0x5a);
    c.garp_repeat = 0ms;
    return c;
}

// A protected pair: host a runs "web" on stream 77, host b holds its standby.
struct Pair {
    Side a, b;
    Pair(const std::function<void(FailoverConfig &)> &tune_a, const std::function<void(FailoverConfig &)> &tune_b)
    {
        const auto port = free_udp_port();
        auto ca = pair_config("hosta", "hostb", "127.0.0.1", "127.0.0.2", port);
        auto cb = pair_config("hostb", "hosta", "127.0.0.2", "127.0.0.1", port);
        tune_a(ca);
        tune_b(cb);
        a.daemon.running["web"] = {"primary", unix_ns(), 77, false};
        b.daemon.standbys["web"] = {"web", 77, 1200, false, ""};
        a.controller = std::make_unique<FailoverController>(ca, a.daemon.host(), a.events, std::ref(a.log));
        b.controller = std::make_unique<FailoverController>(cb, b.daemon.host(), b.events, std::ref(b.log));
        a.controller->start();
        b.controller->start();
    }
    bool both_alive() { return a.controller->peer_alive() && b.controller->peer_alive(); }
};

void no_tuning(FailoverConfig &) {}

bool root()
{
    return geteuid() == 0;
}

} // namespace

TEST_CASE("heartbeats keep flowing while the daemon is busy (a slow disk, a hung tool): no takeover",
          "[failover][heartbeat]")
{
    Pair pair(no_tuning, [](FailoverConfig &c) { c.allow_unguarded = true; });
    REQUIRE(wait_until([&] { return pair.both_alive(); }, 5s));
    // Both daemons stuck for six heartbeat timeouts: a commit waiting on a
    // slow disk on the backup, drbdsetup hanging under the primary's lock.
    pair.a.daemon.busy = true;
    pair.b.daemon.busy = true;
    bool a_heard = true, b_heard = true;
    const auto until = Clock::now() + 3s;
    while (Clock::now() < until) {
        a_heard = a_heard && pair.a.controller->peer_alive();
        b_heard = b_heard && pair.b.controller->peer_alive();
        std::this_thread::sleep_for(20ms);
    }
    pair.a.daemon.busy = false;
    pair.b.daemon.busy = false;
    INFO(pair.b.log.all());
    CHECK(a_heard);
    CHECK(b_heard);
    CHECK(pair.b.daemon.takeovers == 0);
    CHECK_FALSE(pair.b.has_event("takeover"));
    CHECK(pair.a.daemon.runs("web"));
}

TEST_CASE("a standby the primary ran on without is outdated and never takes over by itself; only a forced takeover",
          "[failover][outdated]")
{
    Pair pair(no_tuning, [](FailoverConfig &c) { c.allow_unguarded = true; });
    REQUIRE(wait_until([&] { return pair.both_alive(); }, 5s));
    std::this_thread::sleep_for(200ms);
    CHECK_FALSE(pair.b.has_event("standby_outdated")); // current while the stream runs

    // The replication link fails; the primary runs on unprotected.
    {
        std::lock_guard lock(pair.a.daemon.mutex);
        pair.a.daemon.running["web"].stream_lost = true;
    }
    REQUIRE(wait_until([&] { return pair.b.has_event("standby_outdated"); }, 5s));
    CHECK(pair.b.has_event("standby_outdated", "hosta lost the stream that built this copy"));

    // Later the primary dies: the backup does not take over.
    pair.a.controller.reset();
    REQUIRE(wait_until([&] { return pair.b.has_event("takeover_refused"); }, 5s));
    std::this_thread::sleep_for(500ms);
    INFO(pair.b.log.all());
    CHECK(pair.b.has_event("takeover_refused", "OUTDATED"));
    CHECK(pair.b.daemon.takeovers == 0);

    // An operator may, and must say so.
    CHECK_THROWS_WITH(pair.b.controller->manual_takeover("web", false), Catch::Contains("OUTDATED"));
    CHECK(pair.b.daemon.takeovers == 0);
    pair.b.controller->manual_takeover("web", true);
    CHECK(pair.b.daemon.takeovers == 1);
    CHECK(pair.b.has_event("forced_takeover", "OUTDATED"));
    CHECK(pair.b.log.contains("WARNING: guest web: FORCED takeover"));
}

TEST_CASE("a new stream (a resync under way) outdates the copy of the old one; a takeover is refused while the primary "
          "is heard",
          "[failover][outdated]")
{
    Pair pair(no_tuning, [](FailoverConfig &c) { c.allow_unguarded = true; });
    REQUIRE(wait_until([&] { return pair.both_alive(); }, 5s));
    CHECK_THROWS_WITH(pair.b.controller->manual_takeover("web", false), Catch::Contains("hosta is alive"));
    {
        std::lock_guard lock(pair.a.daemon.mutex);
        pair.a.daemon.running["web"].stream_id = 78; // syncing a new copy, output unheld meanwhile
    }
    REQUIRE(wait_until([&] { return pair.b.has_event("standby_outdated", "on another stream"); }, 5s));
}

TEST_CASE("a partition with both hosts reaching the witness: without fencing both run; the split brain is reported "
          "when heartbeats resume",
          "[failover][split]")
{
    if (!root()) {
        WARN("SKIPPED: the witness probe needs root (an ICMP socket)");
        return;
    }
    auto policy = GENERATE(FailoverConfig::SplitBrainPolicy::disconnect,
                           FailoverConfig::SplitBrainPolicy::discard_younger);
    auto tune = [&](FailoverConfig &c) {
        c.witness = "127.0.0.1";
        c.after_split_brain = policy;
    };
    Pair pair(tune, tune);
    REQUIRE(wait_until([&] { return pair.both_alive(); }, 5s));
    // Every heartbeat path cut, both hosts alive and reaching the witness.
    pair.a.controller->play_dead(true);
    pair.b.controller->play_dead(true);
    REQUIRE(wait_until([&] { return pair.b.daemon.runs("web"); }, 10s));
    CHECK(pair.a.daemon.runs("web")); // two copies: nothing could prevent it
    CHECK(pair.b.has_event("takeover"));

    pair.a.controller->play_dead(false);
    pair.b.controller->play_dead(false);
    // The younger copy's host reports it (and with discard-younger stops its
    // copy at once, so the other host may see two copies only briefly).
    REQUIRE(wait_until([&] { return pair.b.has_event("split_brain"); }, 5s));
    INFO(pair.a.log.all() << pair.b.log.all());
    CHECK(pair.b.has_event("split_brain", "the younger copy is this host's"));
    if (policy == FailoverConfig::SplitBrainPolicy::disconnect) {
        REQUIRE(wait_until([&] { return pair.a.has_event("split_brain"); }, 5s));
        CHECK(pair.a.has_event("split_brain", "the younger copy is hostb's"));
        std::this_thread::sleep_for(300ms);
        CHECK(pair.a.daemon.runs("web"));
        CHECK(pair.b.daemon.runs("web"));
        CHECK(pair.a.controller->split_brain_of("web").find("SPLIT BRAIN") != std::string::npos);
        const auto status = pair.b.controller->status();
        REQUIRE(status.split_brain_size() == 1);
        CHECK(status.split_brain(0).guest() == "web");
        CHECK(status.after_split_brain() == "disconnect");
        CHECK_FALSE(status.partition_safe());
    } else {
        REQUIRE(wait_until([&] { return !pair.b.daemon.runs("web"); }, 5s));
        CHECK(pair.a.daemon.runs("web"));
        CHECK(pair.b.has_event("discarded"));
        REQUIRE(wait_until([&] { return pair.a.controller->split_brain_of("web").empty(); }, 5s));
        std::this_thread::sleep_for(300ms);
        CHECK(pair.a.daemon.runs("web")); // the older copy is never stopped
    }
}

TEST_CASE("a partition with fencing: the backup takes over only once the fence command cut the primary off",
          "[failover][split]")
{
    if (!root()) {
        WARN("SKIPPED: the witness probe needs root (an ICMP socket)");
        return;
    }
    const auto dir = std::filesystem::temp_directory_path() / ("understudy-fence-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    // The fence command says it ran, then waits until the test has cut the
    // victim off (stopped its heartbeats and its guest): only then is it done.
    const std::string fence = "touch " + (dir / "asked").string() + "; while [ ! -e " + (dir / "cut").string() +
                              " ]; do sleep 0.05; done";
    Pair pair(
        [](FailoverConfig &c) { c.witness = "127.0.0.1"; },
        [&](FailoverConfig &c) {
            c.witness = "127.0.0.1";
            c.fence_command = fence;
        });
    REQUIRE(wait_until([&] { return pair.both_alive(); }, 5s));
    CHECK(pair.b.controller->status().partition_safe());
    pair.a.controller->play_dead(true);
    pair.b.controller->play_dead(true);
    REQUIRE(wait_until([&] { return std::filesystem::exists(dir / "asked"); }, 10s));
    std::this_thread::sleep_for(300ms);
    CHECK(pair.b.daemon.takeovers == 0); // not before the primary is cut off
    pair.a.controller.reset();
    pair.a.daemon.running.clear(); // the victim's host, powered off
    std::ofstream(dir / "cut") << "";
    REQUIRE(wait_until([&] { return pair.b.daemon.runs("web"); }, 10s));
    CHECK(pair.b.has_event("fenced"));
    CHECK_FALSE(pair.a.daemon.runs("web"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("a decision loop that stops going round is reported stalled (systemd's watchdog is then not fed)",
          "[failover][watchdog]")
{
    // The backup's fence command takes 2 s: its decision loop is stuck that
    // long, while its heartbeat threads go on.
    Pair pair([](FailoverConfig &) {}, [](FailoverConfig &c) { c.fence_command = "sleep 2"; });
    REQUIRE(wait_until([&] { return pair.both_alive(); }, 5s));
    CHECK(pair.b.controller->stalled(0.5).empty());
    pair.a.controller.reset(); // the primary dies: the backup fences
    REQUIRE(wait_until([&] { return !pair.b.controller->stalled(0.5).empty(); }, 5s));
    const auto stalled = pair.b.controller->stalled(0.5);
    REQUIRE(stalled.size() == 1);
    CHECK(stalled[0].find("the failover controller") != std::string::npos);
    REQUIRE(wait_until([&] { return pair.b.daemon.runs("web"); }, 10s));
    CHECK(wait_until([&] { return pair.b.controller->stalled(0.5).empty(); }, 2s));
}
