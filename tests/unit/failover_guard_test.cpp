// Each rule of the split-brain guard, and the witness probe against a real
// address (loopback answers ICMP; an unrouted TEST-NET address does not).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "heartbeat/failover_guard.h"
#include "heartbeat/gratuitous_arp.h"
#include "heartbeat/witness_probe.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

TakeoverInput dead_primary()
{
    TakeoverInput in;
    in.standby_consistent = true;
    in.peer_ever_heard = true;
    in.peer_all_silent = true;
    in.peer_silent_s = 1.5;
    in.witness_reachable = true;
    return in;
}

} // namespace

TEST_CASE("a backup takes over only from a committed checkpoint, a silent primary and a reachable witness", "[guard]")
{
    GuardSettings guard{true, false, true, 1000ms};
    CHECK(judge_takeover(guard, dead_primary()).action == Verdict::take_over);
    CHECK(judge_takeover(guard, dead_primary()).reason.find("the witness answers") != std::string::npos);

    auto in = dead_primary();
    in.standby_consistent = false;
    CHECK(judge_takeover(guard, in).action == Verdict::wait);

    in = dead_primary();
    in.peer_silent_s = 0.9; // not yet the timeout
    CHECK(judge_takeover(guard, in).action == Verdict::wait);

    in = dead_primary();
    in.peer_all_silent = false; // one path still brings heartbeats
    CHECK(judge_takeover(guard, in).action == Verdict::wait);

    in = dead_primary();
    in.peer_ever_heard = false; // misconfigured paths must not look like a death
    CHECK(judge_takeover(guard, in).action == Verdict::wait);

    in = dead_primary();
    in.witness_reachable = false; // maybe it is us who are cut off
    auto v = judge_takeover(guard, in);
    CHECK(v.action == Verdict::refuse);
    CHECK(v.reason.find("it may be this host that is cut off") != std::string::npos);

    GuardSettings manual{true, false, false, 1000ms};
    CHECK(judge_takeover(manual, dead_primary()).action == Verdict::refuse);
    CHECK(judge_takeover(manual, dead_primary()).reason.find("understudy takeover GUEST") != std::string::npos);

    // No witness and no fencing: no takeover unless the operator opted in.
    GuardSettings unguarded{false, false, true, 1000ms};
    in = dead_primary();
    in.witness_reachable = false;
    v = judge_takeover(unguarded, in);
    CHECK(v.action == Verdict::refuse);
    CHECK(v.reason.find("allow_unguarded_takeover") != std::string::npos);
    unguarded.unguarded_allowed = true;
    v = judge_takeover(unguarded, in);
    CHECK(v.action == Verdict::take_over);
    CHECK(v.reason.find("UNGUARDED") != std::string::npos);

    GuardSettings fenced{false, true, true, 1000ms};
    CHECK(judge_takeover(fenced, in).action == Verdict::take_over); // the caller fences first
}

TEST_CASE("an outdated standby never takes over by itself", "[guard]")
{
    GuardSettings guard{true, true, true, 1000ms};
    auto in = dead_primary();
    in.standby_outdated = true;
    in.outdated_reason = "hosta ran on without it";
    auto v = judge_takeover(guard, in);
    CHECK(v.action == Verdict::refuse);
    CHECK(v.reason.find("OUTDATED (hosta ran on without it)") != std::string::npos);
    CHECK(v.reason.find("understudy takeover --force") != std::string::npos);
    in.peer_all_silent = false; // the primary alive: nothing to decide
    in.peer_silent_s = 0.1;
    CHECK(judge_takeover(guard, in).action == Verdict::wait);
}

TEST_CASE("status says which failures the guard covers; only fencing covers a partition", "[guard]")
{
    auto has = [](const std::vector<std::string> &lines, const std::string &text) {
        for (const auto &l : lines)
            if (l.find(text) != std::string::npos)
                return true;
        return false;
    };
    const auto witness = guard_coverage({true, false, true, 1000ms});
    CHECK_FALSE(witness.partition_safe);
    CHECK(has(witness.not_covered, "a partition"));
    CHECK(has(witness.not_covered, "BOTH run the guest"));
    CHECK(has(witness.covered, "the backup is cut off from the clients"));
    const auto fenced = guard_coverage({true, true, true, 1000ms});
    CHECK(fenced.partition_safe);
    CHECK(has(fenced.covered, "a partition"));
    const auto none = guard_coverage({false, false, true, 1000ms});
    CHECK(has(none.not_covered, "NOBODY takes over"));
    CHECK(has(none.not_covered, "a partition"));
}

TEST_CASE("a primary whose process died is taken over after a few silent intervals, still guarded", "[guard]")
{
    GuardSettings guard{true, false, true, 1000ms, 100ms};
    auto in = dead_primary();
    in.peer_all_silent = false; // not yet the timeout on the paths
    in.peer_silent_s = 0.35;
    CHECK(judge_takeover(guard, in).action == Verdict::wait); // no sign of a dead process

    in.peer_process_died = true;
    auto v = judge_takeover(guard, in);
    CHECK(v.action == Verdict::take_over);
    CHECK(v.reason.find("understudyd died") != std::string::npos);

    in.peer_silent_s = 0.15; // a closed stream alone is not enough: heartbeats must stop too
    CHECK(judge_takeover(guard, in).action == Verdict::wait);

    in.peer_silent_s = 0.35;
    in.witness_reachable = false; // the witness rule still holds
    CHECK(judge_takeover(guard, in).action == Verdict::refuse);

    GuardSettings manual{true, false, false, 1000ms, 100ms};
    in.witness_reachable = true;
    CHECK(judge_takeover(manual, in).action == Verdict::refuse);
}

TEST_CASE("a handed-over guest is taken at once, if this host reaches the clients", "[guard]")
{
    GuardSettings guard{true, false, true, 1000ms};
    TakeoverInput in;
    in.standby_consistent = true;
    in.peer_relinquished = true;
    in.peer_all_silent = false; // the primary is alive and said so
    in.witness_reachable = true;
    CHECK(judge_takeover(guard, in).action == Verdict::take_over);
    in.witness_reachable = false;
    CHECK(judge_takeover(guard, in).action == Verdict::refuse);
}

TEST_CASE("a primary hands over only when it lost the witness and its live backup has it", "[guard]")
{
    GuardSettings guard{true, false, true, 1000ms};
    HandoverInput in{true, false, 1.2, true, true};
    CHECK(should_hand_over(guard, in));
    auto h = in;
    h.witness_silent_s = 0.5; // not for long enough
    CHECK_FALSE(should_hand_over(guard, h));
    h = in;
    h.peer_alive = false; // nobody to hand it to: keep running
    CHECK_FALSE(should_hand_over(guard, h));
    h = in;
    h.peer_witness_reachable = false; // the backup is no better off
    CHECK_FALSE(should_hand_over(guard, h));
    h = in;
    h.protected_ = false; // the backup has nothing to start from
    CHECK_FALSE(should_hand_over(guard, h));
    h = in;
    h.witness_silent_s = 0.1;
    h.uplink_down = true; // the tracked uplink is down: no need to wait for the timeout
    CHECK(should_hand_over(guard, h));
    h.peer_witness_reachable = false; // but still only to a backup that reaches the clients
    CHECK_FALSE(should_hand_over(guard, h));
    CHECK_FALSE(should_hand_over(GuardSettings{false, false, true, 1000ms}, in)); // no witness: no such rule
}

TEST_CASE("the witness probe sees an address that answers and one that does not", "[guard][witness]")
{
    WitnessProbe here("127.0.0.1", 50ms, 300ms);
    // An address nobody answers: probed from a namespace of our own that has
    // no route to it, so not a packet leaves this host.
    const std::string ns = "us-unit-witness-" + std::to_string(getpid());
    REQUIRE(std::system(("ip netns add " + ns).c_str()) == 0);
    std::unique_ptr<WitnessProbe> nowhere_probe;
    std::thread([&] {
        int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0)
            nowhere_probe = std::make_unique<WitnessProbe>("10.255.0.1", 50ms, 300ms);
        if (fd >= 0)
            ::close(fd);
    }).join();
    std::system(("ip netns del " + ns).c_str()); // the probe's socket keeps it alive meanwhile
    REQUIRE(nowhere_probe);
    auto &nowhere = *nowhere_probe;
    for (int i = 0; i < 100 && !here.reachable(); ++i)
        std::this_thread::sleep_for(20ms);
    CHECK(here.reachable());
    CHECK(here.silent_s() < 0.3);
    std::this_thread::sleep_for(400ms);
    CHECK_FALSE(nowhere.reachable());
    CHECK(nowhere.silent_s() >= 0.4);
    CHECK_THROWS_WITH(WitnessProbe("router.example", 50ms, 300ms), Catch::Contains("an IPv4 address is needed"));
}

TEST_CASE("a gratuitous ARP announces the guest's own address from its MAC", "[guard][garp]")
{
    const std::array<std::uint8_t, 6> mac{0x52, 0x54, 0, 0x12, 0x34, 0x56};
    const std::uint32_t ip = 0x0200630a; // 10.99.0.2 in network order
    auto f = gratuitous_arp(mac, ip);
    REQUIRE(f.size() == 60);
    CHECK(std::vector<std::uint8_t>(f.begin(), f.begin() + 6) == std::vector<std::uint8_t>(6, 0xff));
    CHECK(std::equal(mac.begin(), mac.end(), f.begin() + 6));
    CHECK(f[12] == 0x08);
    CHECK(f[13] == 0x06);
    CHECK(f[21] == 1); // request
    CHECK(std::memcmp(f.data() + 28, &ip, 4) == 0); // sender IP
    CHECK(std::memcmp(f.data() + 38, &ip, 4) == 0); // target IP: the same
}
