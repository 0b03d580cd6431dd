// Faults on the backup (ARCHITECTURE.md §3, §7): a commit that fails half-way
// (a full or failing disk, no memory) and a resync under way when the standby
// must take over. Whatever happens, the standby is one whole epoch: memory
// and disk of the same checkpoint, checked by their SHA-256 against what the
// primary's guest held at that checkpoint's pause.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <random>

#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "tests/support/backup_kill_trials.h"
#include "tests/support/faulty_standby.h"
#include "tests/support/log_lines.h"
#include "tests/unit/replication_fixture.h"

using namespace understudy;
using namespace std::chrono_literals;
using testing::FaultyStandby;

namespace {

template <class Pred> bool wait_until(Pred pred, std::chrono::milliseconds timeout)
{
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

// A backup whose copies are FaultyStandby; new copies can be refused for a
// while (the test looks at the old one), and the test reaches each copy.
struct FaultyBackup {
    testing::LogLines log;
    StandbyRegistry registry;
    std::mutex mutex;
    std::vector<FaultyStandby *> copies; // each valid while the registry or a stream holds it
    std::vector<std::string> events;
    std::atomic<bool> accept_new{true};
    std::atomic<bool> hold_new{false}; // new copies stall in their pre-copy after writing the disk
    BackupServer server;

    FaultyBackup()
        : server(settings(), registry,
                 [this](const proto::Hello &hello, std::string *refusal) -> std::unique_ptr<StandbyGuest> {
                     if (!accept_new) {
                         *refusal = "TEST: no new copies for now";
                         return nullptr;
                     }
                     auto copy = std::make_unique<FaultyStandby>(hello.guest_id(), hello.memory_size(),
                                                                 hello.disk_bytes(),
                                                                 testing::replica_dir() / (hello.guest_id() + ".disk"));
                     if (hold_new)
                         copy->hold_after_disk_write();
                     std::lock_guard lock(mutex);
                     copies.push_back(copy.get());
                     return copy;
                 },
                 std::ref(log))
    {
        server.set_event_sink([this](const std::string &guest, const std::string &kind, const std::string &reason) {
            std::lock_guard lock(mutex);
            events.push_back(guest + " " + kind + ": " + reason);
        });
        server.start();
    }
    static BackupSettings settings()
    {
        BackupSettings s;
        s.listen = {"127.0.0.1", 0};
        return s;
    }
    FaultyStandby *copy(std::size_t i)
    {
        std::lock_guard lock(mutex);
        return i < copies.size() ? copies[i] : nullptr;
    }
    bool has_event(const std::string &text)
    {
        std::lock_guard lock(mutex);
        for (const auto &e : events)
            if (e.find(text) != std::string::npos)
                return true;
        return false;
    }
};

// The committed copy equals what the guest held at the pause of its epoch.
void require_whole_epoch(StandbyRegistry &registry, const std::string &guest, const testing::CheckpointTruth &truth)
{
    const auto s = registry.status(guest);
    REQUIRE(s);
    REQUIRE(s->consistent);
    const auto at = truth.at(s->epoch);
    REQUIRE(at);
    INFO("standby at epoch " << s->epoch);
    bool found = registry.inspect(guest, [&](const StandbyGuest &standby) {
        auto &image = dynamic_cast<const StandbyImage &>(standby);
        const auto [memory, disk] = testing::standby_digests(image);
        CHECK(memory == at->memory);
        CHECK(disk == at->disk);
        REQUIRE(image.cpu());
        CHECK(testing::cpu_counter(*image.cpu()) == at->counter);
    });
    REQUIRE(found);
}

} // namespace

TEST_CASE("a commit that fails on the backup leaves the standby at the last whole epoch", "[replication][fault]")
{
    auto fault = GENERATE(FaultyStandby::Fault::no_space_on_write, FaultyStandby::Fault::io_error_on_sync,
                          FaultyStandby::Fault::no_memory_for_cpu);
    INFO("fault " << static_cast<int>(fault));
    FaultyBackup backup;
    testing::MemoryGuest guest("disk01", 4 << 20, 64 << 10);
    guest.start_workload(16, 200us);
    testing::CheckpointTruth truth(guest);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.retry_interval = 100ms;
    Replicator replicator(guest, testing::connect_to(backup.server.port(), std::nullopt), settings, std::ref(backup.log));
    replicator.add_participant(truth);
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    REQUIRE(wait_until([&] { return backup.registry.status("disk01")->checkpoints >= 3; }, 10s));

    backup.accept_new = false; // the resync must not replace the copy under test
    backup.copy(0)->arm(fault);
    REQUIRE(wait_until([&] { return !backup.registry.status("disk01")->receiving; }, 10s));
    INFO(backup.log.all());
    CHECK(backup.copy(0)->fired());
    const auto s = *backup.registry.status("disk01");
    CHECK(s.commit_failures == 1);
    CHECK(s.consistent);
    CHECK_FALSE(s.damaged);
    CHECK(s.last_error.find("commit of epoch " + std::to_string(s.epoch + 1)) != std::string::npos);
    require_whole_epoch(backup.registry, "disk01", truth);
    CHECK(backup.has_event("disk01 commit_failed"));
    CHECK(backup.has_event("standby stays at epoch " + std::to_string(s.epoch)));
    // The primary saw its backup lost, with the backup's reason.
    REQUIRE(wait_until([&] { return replicator.status().backup_losses >= 1; }, 10s));
    CHECK(replicator.status().state != ProtectionState::protected_);
    CHECK(backup.log.contains("UNPROTECTED, lost the backup: backup 127.0.0.1"));

    // New copies allowed again: the resync builds one that equals the guest.
    backup.accept_new = true;
    REQUIRE(replicator.wait_protected(20s));
    replicator.freeze(10s);
    require_whole_epoch(backup.registry, "disk01", truth);
    replicator.thaw();
    replicator.stop("test over");
}

TEST_CASE("a failed commit that cannot put the disk back marks the standby damaged; it is never run",
          "[replication][fault]")
{
    FaultyBackup backup;
    testing::MemoryGuest guest("disk02", 4 << 20, 64 << 10);
    guest.start_workload(16, 200us);
    testing::CheckpointTruth truth(guest);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.retry_interval = 100ms;
    Replicator replicator(guest, testing::connect_to(backup.server.port(), std::nullopt), settings, std::ref(backup.log));
    replicator.add_participant(truth);
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    backup.accept_new = false;
    backup.copy(0)->arm(FaultyStandby::Fault::disk_gone);
    REQUIRE(wait_until([&] { return !backup.registry.status("disk02")->receiving; }, 10s));
    INFO(backup.log.all());
    const auto s = *backup.registry.status("disk02");
    CHECK(s.damaged);
    CHECK_FALSE(s.consistent);
    CHECK(s.damaged_reason.find("putting the overwritten sectors back failed too") != std::string::npos);
    CHECK(backup.has_event("disk02 standby_damaged"));

    // A new stream builds a new copy beside it, which replaces it once whole.
    backup.accept_new = true;
    REQUIRE(replicator.wait_protected(20s));
    CHECK_FALSE(backup.registry.status("disk02")->damaged);
    replicator.freeze(10s);
    require_whole_epoch(backup.registry, "disk02", truth);
    replicator.thaw();
    replicator.stop("test over");
}

TEST_CASE("a damaged standby is not handed out for a takeover", "[replication][fault]")
{
    FaultyBackup backup;
    testing::MemoryGuest guest("disk03", 4 << 20, 64 << 10);
    guest.start_workload(16, 200us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.retry_interval = 100ms;
    Replicator replicator(guest, testing::connect_to(backup.server.port(), std::nullopt), settings, std::ref(backup.log));
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    backup.accept_new = false;
    backup.copy(0)->arm(FaultyStandby::Fault::disk_gone);
    REQUIRE(wait_until([&] { return backup.registry.status("disk03")->damaged; }, 10s));
    CHECK(backup.registry.take("disk03") == nullptr);
    replicator.stop("test over");
}

TEST_CASE("a resync leaves the committed standby's memory and disk alone until its own first checkpoint",
          "[replication][fault]")
{
    FaultyBackup backup;
    testing::MemoryGuest guest("disk04", 4 << 20, 64 << 10);
    guest.start_workload(16, 200us);
    testing::CheckpointTruth truth(guest);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.retry_interval = 100ms;
    Replicator replicator(guest, testing::connect_to(backup.server.port(), std::nullopt), settings, std::ref(backup.log));
    replicator.add_participant(truth);
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    REQUIRE(wait_until([&] { return backup.registry.status("disk04")->checkpoints >= 5; }, 10s));

    // The stream is lost; the resync's copy stalls in its pre-copy right
    // after it wrote the disk image (a slow disk).
    backup.accept_new = false;
    replicator.drop_backup("test: the link broke");
    REQUIRE(wait_until([&] { return !backup.registry.status("disk04")->receiving; }, 10s));
    const auto committed = *backup.registry.status("disk04");
    backup.hold_new = true;
    backup.accept_new = true;
    REQUIRE(wait_until([&] { return backup.copy(1) != nullptr; }, 10s));
    REQUIRE(wait_until([&] { return backup.copy(1)->holding(); }, 20s));
    INFO(backup.log.all());

    // A takeover now: the copy handed out is the committed one, whole.
    CHECK(backup.registry.status("disk04")->epoch == committed.epoch);
    require_whole_epoch(backup.registry, "disk04", truth);
    auto standby = backup.registry.take("disk04");
    REQUIRE(standby);
    const auto at = truth.at(committed.epoch);
    REQUIRE(at);
    const auto [memory, disk] = testing::standby_digests(dynamic_cast<const StandbyImage &>(*standby));
    CHECK(memory == at->memory);
    CHECK(disk == at->disk);
    backup.copy(1)->open();
    replicator.stop("test over");
}

TEST_CASE("the backup's process killed at random moments of its commits: after each restart and resync the standby "
          "equals the frozen guest, memory and disk",
          "[replication][fault][kill]")
{
    const auto dir = testing::replica_dir() / "killed-backup";
    const auto r = testing::run_backup_kill_trials(UNDERSTUDY_TEST_BACKUP, dir, 5, std::random_device{}());
    INFO(r.trials << " trials in " << r.seconds << " s: " << r.exact << " exact, " << r.mismatched << " mismatched, "
                  << r.not_protected << " not protected; " << r.first_failure);
    CHECK(r.exact == r.trials);
    std::filesystem::remove_all(dir);
}
