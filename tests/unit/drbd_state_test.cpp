// Reading DRBD's state from its tools' real output (tests/fixtures/drbd, with
// where each recording comes from in SOURCES.md): status --json including the
// `nan` drbd-utils prints, events2 in its plain, --diff, --timestamps and
// --statistics forms, DRBD 8.3's /proc/drbd with protocol D, the verdict
// on whether a disk is replicated (StandAlone named as a possible split brain),
// and probing through drbdsetup, replayed by tests/support/fake-drbdsetup (a
// test double: these machines have no DRBD kernel module).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "drbd/checkpoint_barrier.h"
#include "drbd/disk_guard.h"
#include "drbd/drbd_probe.h"
#include "drbd/drbd_promote.h"
#include "drbd/events2_follower.h"
#include "drbd/drbd_state.h"

using namespace understudy::drbd;

namespace {

std::string fixture(const std::string &name)
{
    std::ifstream in(std::string(UNDERSTUDY_SOURCE_DIR) + "/tests/fixtures/drbd/" + name);
    REQUIRE(in);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

Events2Tracker follow(const std::string &name)
{
    Events2Tracker t;
    std::istringstream in(fixture(name));
    for (std::string line; std::getline(in, line);) {
        INFO(line);
        CHECK(t.apply(line));
    }
    return t;
}

} // namespace

TEST_CASE("status --json with nan (a real drbd-utils bug) is read, not refused", "[drbd]")
{
    const auto resources = parse_status_json(fixture("status_json_syncsource_nan.json"));
    REQUIRE(resources.size() == 1);
    const auto &r = resources[0];
    CHECK(r.name == "shanghai");
    CHECK(r.role == "Primary");
    REQUIRE(r.connections.count(2));
    const auto &c = r.connections.at(2);
    CHECK(c.name == "SLE12-sp4-node2");
    CHECK(c.state == "Connected");
    REQUIRE(c.peer_devices.count(0));
    CHECK(c.peer_devices.at(0).replication == "SyncSource");
    CHECK(c.peer_devices.at(0).peer_disk == "Inconsistent");
    CHECK(c.peer_devices.at(0).out_of_sync_kib == 409600);
    REQUIRE(c.peer_devices.at(0).done);
    CHECK(*c.peer_devices.at(0).done == Approx(0.0));
    const auto v = judge_replication(r);
    CHECK_FALSE(v.replicated); // the peer is still syncing: a failover now would lose the disk
    CHECK(v.reason.find("no connected peer with an UpToDate disk") != std::string::npos);
}

TEST_CASE("status --json of two resources, quorum and replication", "[drbd]")
{
    const auto resources = parse_status_json(fixture("status_json_two_resources_quorum.json"));
    REQUIRE(resources.size() == 2);
    CHECK(resources[0].devices.at(0).quorum == true);
    CHECK(resources[1].devices.at(0).quorum == false);
    CHECK(resources[0].connections.begin()->second.peer_role == "Primary");
    const auto v = judge_replication(resources[0]);
    CHECK(v.replicated);
    CHECK(v.reason.find("SLE15-sp1-gm-drbd1145296-node1") != std::string::npos);
}

TEST_CASE("hostile status --json is refused with a reason, never half-read", "[drbd]")
{
    CHECK_THROWS_AS(parse_status_json(""), DrbdParseError);
    CHECK_THROWS_AS(parse_status_json("{\"name\": \"r\"}"), DrbdParseError); // not an array
    CHECK_THROWS_AS(parse_status_json("[1, 2]"), DrbdParseError);
    CHECK_THROWS_AS(parse_status_json("[{\"role\": \"Primary\"}]"), DrbdParseError); // no name
    CHECK_THROWS_AS(parse_status_json("[{\"name\": \"r\", \"x\": nanny}]"), DrbdParseError);
    // A string that says nan stays a string.
    auto r = parse_status_json("[{\"name\": \"nan\", \"role\": \"nan\", \"devices\": [{\"volume\": -nan}]}]");
    CHECK(r.at(0).role == "nan");
}

TEST_CASE("events2 --diff: transitions from StandAlone to Connected and Primary", "[drbd]")
{
    auto t = follow("events2_diff_transitions.txt");
    CHECK(t.initial_state_complete());
    const auto &r = t.resources().at("some-resource");
    CHECK(r.role == "Primary");
    CHECK(r.devices.at(0).disk == "UpToDate");
    CHECK(r.connections.at(1).state == "Connected");
    CHECK(r.connections.at(1).name == "some-peer");
    CHECK(r.connections.at(1).peer_devices.at(0).peer_disk == "UpToDate");
    CHECK(judge_replication(r).replicated);
}

TEST_CASE("events2: a StandAlone peer is a suspected split brain; helper calls are kept", "[drbd]")
{
    auto t = follow("events2_helper_call_response.txt");
    const auto &r = t.resources().at("some-resource");
    CHECK(r.last_helper == "before-resync-target exited 1");
    CHECK(r.connections.at(1).state == "StandAlone");
    Resource disk_ok = r;
    disk_ok.devices.at(0).disk = "UpToDate"; // the recording's disk is Diskless; the connection is the point
    const auto v = judge_replication(disk_ok);
    CHECK_FALSE(v.replicated);
    CHECK(v.split_brain_suspected);
    CHECK(v.reason.find("StandAlone") != std::string::npos);
    CHECK(judge_replication(r).reason.find("Diskless") != std::string::npos);
}

TEST_CASE("events2 --now --statistics of a three-node resource, and --timestamps", "[drbd]")
{
    auto three = follow("events2_now_statistics_3node.txt");
    const auto &r = three.resources().at("drbd1");
    CHECK(r.connections.size() == 2);
    CHECK(r.connections.at(0).peer_role == "Primary");
    CHECK(r.devices.at(0).quorum == true);
    CHECK(judge_replication(r).replicated);

    auto k8s = follow("events2_timestamps_statistics_linstor_k8s.txt");
    CHECK(k8s.initial_state_complete());
    REQUIRE(k8s.resources().size() == 1);
    CHECK(k8s.resources().begin()->second.connections.begin()->second.name == "kubelet-b");

    auto sync = follow("events2_sync_statistics.txt");
    const auto &p = sync.resources().at("some-resource").connections.at(1).peer_devices.at(0);
    CHECK(p.replication == "SyncSource");
    REQUIRE(p.done);
    CHECK(*p.done == Approx(37.5));
    CHECK(p.out_of_sync_kib == 2500);
}

TEST_CASE("hostile events2 lines are refused and change nothing", "[drbd]")
{
    Events2Tracker t;
    CHECK(t.apply("exists resource name:r role:Primary"));
    CHECK_FALSE(t.apply(""));
    CHECK_FALSE(t.apply("explode resource name:r"));
    CHECK_FALSE(t.apply("change resource role:Secondary")); // no name
    CHECK_FALSE(t.apply("change device name:r volume:zero disk:Failed"));
    CHECK(t.last_error().find("volume 'zero' is not a number") != std::string::npos);
    CHECK_FALSE(t.apply("change resource name:r nonsense"));
    CHECK_FALSE(t.apply(std::string(100000, 'x')));
    CHECK(t.resources().at("r").role == "Primary");
    CHECK(t.resources().at("r").devices.empty());
    CHECK(t.apply("destroy resource name:r"));
    CHECK(t.resources().empty());
}

TEST_CASE("/proc/drbd of DRBD 8.3 (Remus, protocol D)", "[drbd]")
{
    const auto p = parse_proc_drbd(fixture("proc_drbd_remus_8.3.11_protocol_D.txt"));
    CHECK(p.version == "8.3.11");
    REQUIRE(p.minors.size() == 1);
    CHECK(p.minors[0].minor == 1);
    CHECK(p.minors[0].connection == "Connected");
    CHECK(p.minors[0].role == "Secondary");
    CHECK(p.minors[0].peer_role == "Primary");
    CHECK(p.minors[0].disk == "UpToDate");
    CHECK(p.minors[0].peer_disk == "UpToDate");
    CHECK(p.minors[0].protocol == 'D');
    CHECK_THROWS_WITH(parse_proc_drbd("hello"), Catch::Contains("no version line"));
}

// ---- probing through drbdsetup (a test double replays recorded outputs) ----

namespace {

const std::string kFake = std::string(UNDERSTUDY_SOURCE_DIR) + "/tests/support/fake-drbdsetup";
std::string fixture_path(const std::string &name)
{
    return std::string(UNDERSTUDY_SOURCE_DIR) + "/tests/fixtures/drbd/" + name;
}

struct FakeDrbd {
    FakeDrbd(const std::string &status, const std::string &show)
    {
        setenv("FAKE_DRBD_STATUS", fixture_path(status).c_str(), 1);
        setenv("FAKE_DRBD_SHOW", fixture_path(show).c_str(), 1);
        unsetenv("FAKE_DRBD_FAIL");
    }
    ~FakeDrbd()
    {
        unsetenv("FAKE_DRBD_STATUS");
        unsetenv("FAKE_DRBD_SHOW");
        unsetenv("FAKE_DRBD_FAIL");
    }
};

} // namespace

TEST_CASE("the replication protocol comes from drbdsetup show; D is Remus's checkpoint protocol", "[drbd]")
{
    CHECK(parse_show_protocol(fixture("drbdsetup_show_8.3_protocol_C.txt")) == 'C');
    CHECK(parse_show_protocol(fixture("drbdsetup_show_9_standalone_connected.txt")) == 'C'); // DRBD's default
    CHECK(parse_show_protocol(fixture("remus_global_common.conf.protoD")) == 'D');
    CHECK(parse_show_protocol("net { verify-alg \"md5\"; protocolX; }") == 'C');
}

TEST_CASE("probing a resource: its state, its protocol and what that means after a failover", "[drbd]")
{
    FakeDrbd fake("status_json_two_resources_quorum.json", "drbdsetup_show_9_standalone_connected.txt");
    auto p = probe_resource("1-single-0", kFake);
    CHECK(p.verdict.replicated);
    CHECK(p.protocol == 'C');
    CHECK_FALSE(p.checkpoint_barriers);
    CHECK(p.consistency.find("up to one epoch ahead of memory") != std::string::npos);

    setenv("FAKE_DRBD_SHOW", fixture_path("remus_global_common.conf.protoD").c_str(), 1);
    p = probe_resource("1-single-0", kFake);
    CHECK(p.checkpoint_barriers);
    CHECK(p.consistency.find("committed with each checkpoint") != std::string::npos);

    CHECK_THROWS_WITH(probe_resource("r9", kFake), Catch::Contains("does not list resource r9"));
    setenv("FAKE_DRBD_FAIL", "r9: No such resource", 1);
    CHECK_THROWS_WITH(probe_resource("r9", kFake), Catch::Contains("exited 10: r9: No such resource"));
    CHECK_THROWS_WITH(probe_resource("r0", "/nonexistent/drbdsetup"), Catch::Contains("is drbd-utils installed"));
    CHECK_THROWS_WITH(probe_resource("--all", kFake), Catch::Contains("is not a DRBD resource name"));
    CHECK_THROWS_WITH(probe_resource("a b", kFake), Catch::Contains("is not a DRBD resource name"));
}

// ---- promotion, the disk guard and following events2 ------------------------

TEST_CASE("promotion runs drbdadm primary and passes DRBD's refusal on", "[drbd]")
{
    const std::string fake_adm = std::string(UNDERSTUDY_SOURCE_DIR) + "/tests/support/fake-drbdadm";
    const auto log = std::filesystem::temp_directory_path() / ("drbdadm-" + std::to_string(getpid()));
    std::filesystem::remove(log);
    setenv("FAKE_DRBDADM_LOG", log.c_str(), 1);
    promote_resource("web01-disk", fake_adm);
    std::ifstream in(log);
    std::string line;
    std::getline(in, line);
    CHECK(line == "primary web01-disk");
    setenv("FAKE_DRBDADM_FAIL", "web01-disk: State change failed: (-1) Multiple primaries not allowed by config", 1);
    CHECK_THROWS_WITH(promote_resource("web01-disk", fake_adm),
                      Catch::Contains("refused (exit 11): web01-disk: State change failed") &&
                          Catch::Contains("peer is still Primary"));
    CHECK_THROWS_WITH(promote_resource("--force", fake_adm), Catch::Contains("is not a DRBD resource name"));
    unsetenv("FAKE_DRBDADM_FAIL");
    unsetenv("FAKE_DRBDADM_LOG");
    std::filesystem::remove(log);
}

TEST_CASE("a guest is protected only if its writable disks are replicated, unless the operator allows it", "[drbd]")
{
    FakeDrbd fake("status_json_two_resources_quorum.json", "drbdsetup_show_9_standalone_connected.txt");
    auto probe = [](const std::string &r) { return probe_resource(r, kFake); };
    std::vector<GuestDisk> disks{{"xvda", "1-single-0", true, true}, {"xvdc", "/srv/iso/debian.iso", false, false}};
    auto check = check_replicated_disks("web01", disks, false, probe);
    auto notes = check.notes;
    REQUIRE(notes.size() == 2);
    REQUIRE(check.replicated.size() == 1);
    CHECK(check.replicated[0].resource.name == "1-single-0");
    CHECK(notes[0].find("DRBD resource 1-single-0 replicates; protocol C") != std::string::npos);
    CHECK(notes[1].find("read-only") != std::string::npos);

    disks.push_back({"xvdb", "/var/lib/xen/images/web01-data.img", false, true});
    CHECK_THROWS_WITH(check_replicated_disks("web01", disks, false, probe),
                      Catch::Contains("refusing to protect web01") &&
                          Catch::Contains("disk xvdb (/var/lib/xen/images/web01-data.img) is not on DRBD") &&
                          Catch::Contains("--allow-unreplicated-disk"));
    notes = check_replicated_disks("web01", disks, true, probe).notes;
    CHECK(notes.back().find("UNREPLICATED (allowed by the operator): disk xvdb") != std::string::npos);

    // A resource that is StandAlone (a possible split brain) does not count.
    setenv("FAKE_DRBD_STATUS", fixture_path("status_json_syncsource_nan.json").c_str(), 1);
    std::vector<GuestDisk> missing{{"xvda", "1-single-0", true, true}};
    CHECK_THROWS_WITH(check_replicated_disks("web01", missing, false, probe),
                      Catch::Contains("does not list resource 1-single-0"));
}

TEST_CASE("events2 is followed: each change of the verdict is reported, and its end", "[drbd]")
{
    setenv("FAKE_DRBD_EVENTS", fixture_path("events2_diff_transitions.txt").c_str(), 1);
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<ReplicationVerdict> seen;
    std::string ended;
    {
        Events2Follower follower(
            "some-resource", kFake,
            [&](const ReplicationVerdict &v) {
                std::lock_guard lock(mutex);
                seen.push_back(v);
                cv.notify_all();
            },
            [&](const std::string &why) {
                std::lock_guard lock(mutex);
                ended = why;
                cv.notify_all();
            });
        std::unique_lock lock(mutex);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !ended.empty(); }));
        CHECK(follower.verdict().replicated);
    }
    // The recording: created StandAlone (suspected split brain), then
    // Connected with an UpToDate peer.
    REQUIRE(seen.size() >= 2);
    CHECK_FALSE(seen.front().replicated);
    CHECK(std::any_of(seen.begin(), seen.end(), [](const ReplicationVerdict &v) {
        return v.split_brain_suspected && v.reason.find("StandAlone") != std::string::npos;
    }));
    CHECK(seen.back().replicated);
    CHECK(ended.find("drbdsetup events2 some-resource ended (exit 0)") != std::string::npos);

    // While events2 runs, destroying the follower stops it without an "ended".
    setenv("FAKE_DRBD_EVENTS_HOLD", "1", 1);
    ended.clear();
    {
        Events2Follower follower("some-resource", kFake, [](const ReplicationVerdict &) {},
                                 [&](const std::string &why) { ended = why; });
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    CHECK(ended.empty());
    unsetenv("FAKE_DRBD_EVENTS_HOLD");
    unsetenv("FAKE_DRBD_EVENTS");
}

TEST_CASE("protocol D: a checkpoint goes down the DRBD device at each pause and its ack is awaited", "[drbd]")
{
    std::vector<unsigned long> calls;
    int send_result = 0, wait_result = 0, wait_errno = 0;
    auto ioctl = [&](int, unsigned long request) {
        calls.push_back(request);
        if (request == kDrbdSendCheckpoint)
            return send_result;
        errno = wait_errno;
        return wait_result;
    };
    CheckpointBarrier barrier("/dev/null", ioctl); // stands in for /dev/drbd0: the ioctls go to the seam
    barrier.on_pause(understudy::Epoch{5});
    CHECK(calls == std::vector<unsigned long>{kDrbdSendCheckpoint, kDrbdWaitCheckpointAck});
    calls.clear();
    send_result = 1; // committed at once: nothing to wait for
    barrier.on_pause(understudy::Epoch{6});
    CHECK(calls == std::vector<unsigned long>{kDrbdSendCheckpoint});
    send_result = 0;
    wait_result = -1;
    wait_errno = EIO;
    CHECK_THROWS_WITH(barrier.on_pause(understudy::Epoch{7}), Catch::Contains("DRBD checkpoint barrier on /dev/null for epoch 7: "
                                                                  "no ack from the peer: Input/output error"));
    CHECK_THROWS_WITH(CheckpointBarrier("/dev/drbd-none-9"), Catch::Contains("cannot open /dev/drbd-none-9"));
    CHECK(drbd_device(3) == "/dev/drbd3");
}
