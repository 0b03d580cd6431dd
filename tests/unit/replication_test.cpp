// The engine end to end without a hypervisor: a MemoryGuest (test double)
// replicated by the real Replicator over real loopback TCP (and TLS) to a
// real BackupServer.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>
#include <fstream>
#include <mutex>

#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/sha256.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/stream/tls_link.h"
#include "tests/support/bit_flip_proxy.h"
#include "tests/support/log_lines.h"
#include "tests/support/memory_guest.h"
#include "tests/unit/replication_fixture.h"

using namespace understudy;
using namespace std::chrono_literals;

namespace {

using testing::LogLines;
using testing::connect_to;
using testing::replica_dir;
using testing::test_psk;

StandbyFactory image_factory()
{
    return [](const proto::Hello &hello, std::string *) -> std::unique_ptr<StandbyGuest> {
        return std::make_unique<StandbyImage>(hello.guest_id(), hello.memory_size(), hello.disk_bytes(),
                                              replica_dir() / (hello.guest_id() + ".disk"));
    };
}

// Compares the frozen guest with the committed standby copy.
void require_identical(const testing::MemoryGuest &guest, const StandbyRegistry &registry)
{
    bool found = registry.inspect(guest.name(), [&](const StandbyGuest &standby) {
        auto &image = dynamic_cast<const StandbyImage &>(standby);
        REQUIRE(image.cpu());
        CHECK(std::memcmp(image.memory().data(), guest.memory().data(), guest.memory().size()) == 0);
        CHECK(testing::cpu_counter(*image.cpu()) == guest.counter());
        CHECK(testing::stored_counter(image.memory()) == guest.counter());
        if (guest.disk_bytes()) {
            std::vector<std::uint8_t> disk(guest.disk_bytes());
            std::ifstream in(image.replica_path(), std::ios::binary);
            in.read(reinterpret_cast<char *>(disk.data()), static_cast<std::streamsize>(disk.size()));
            CHECK(disk == std::vector<std::uint8_t>(guest.disk().begin(), guest.disk().end()));
            CHECK(testing::stored_counter(disk) == guest.counter());
        }
    });
    REQUIRE(found);
}

} // namespace

TEST_CASE("the backup's standby equals the guest at every frozen epoch", "[replication]")
{
    auto compression = GENERATE(std::string("none"), std::string("lz4"), std::string("xor+zstd"), std::string("xor+lz4"));
    INFO("compression " << compression);
    LogLines log;
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    BackupServer server(backup, registry, image_factory(), std::ref(log));
    server.start();

    testing::MemoryGuest guest("web01", 8 << 20, 256 << 10);
    guest.start_workload(32, 200us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.codec = parse_compression(compression);
    Replicator replicator(guest, connect_to(server.port(), std::nullopt), settings, std::ref(log));
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(60ms);
        auto epoch = replicator.freeze(10s);
        INFO("frozen at epoch " << epoch.value << "\n" << log.all());
        auto states = registry.status();
        REQUIRE(states.size() == 1);
        CHECK(states[0].consistent);
        CHECK(states[0].epoch == epoch.value);
        require_identical(guest, registry);
        replicator.thaw();
    }
    auto status = replicator.status();
    CHECK(status.checkpoints >= 3);
    CHECK(status.pause_p50_us > 0);
    CHECK(status.page_bytes >= guest.memory_size()); // every page went at least once
    CHECK(status.bytes_sent > 0);
    if (compression != "none")
        CHECK(status.compression_ratio() > 1.0);
    replicator.stop("test over");
    server.stop();
}

TEST_CASE("TLS: the pair's key opens a stream; a peer with another key cannot change the standby", "[replication][tls]")
{
    LogLines log;
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    backup.tls = TlsSettings{test_psk(0x11), {}, {}, {}, {}};
    BackupServer server(backup, registry, image_factory(), std::ref(log));
    server.start();

    testing::MemoryGuest guest("db01", 4 << 20, 0);
    guest.start_workload(8, 500us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    std::vector<std::uint8_t> committed_memory;
    {
        Replicator replicator(guest, connect_to(server.port(), TlsSettings{test_psk(0x11), {}, {}, {}, {}}), settings,
                              std::ref(log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        replicator.freeze(10s);
        require_identical(guest, registry);
        committed_memory.assign(guest.memory().begin(), guest.memory().end());
        replicator.stop("switching keys"); // also resumes the frozen guest
    }
    const auto before = registry.status().at(0);
    REQUIRE(before.consistent);

    testing::MemoryGuest intruder("db01", 4 << 20, 0);
    intruder.start_workload(8, 500us);
    Replicator wrong(intruder, connect_to(server.port(), TlsSettings{test_psk(0x22), {}, {}, {}, {}}), settings,
                     std::ref(log));
    wrong.start();
    CHECK_FALSE(wrong.wait_protected(1500ms));
    auto status = wrong.status();
    CHECK(status.state != ProtectionState::protected_);
    CHECK(status.last_error.find("TLS handshake") != std::string::npos);
    wrong.stop("test over");
    CHECK(log.contains("refused stream from 127.0.0.1"));

    const auto after = registry.status().at(0);
    CHECK(after.epoch == before.epoch);
    CHECK(after.checkpoints == before.checkpoints);
    registry.inspect("db01", [&](const StandbyGuest &standby) {
        auto &image = dynamic_cast<const StandbyImage &>(standby);
        CHECK(std::memcmp(image.memory().data(), committed_memory.data(), committed_memory.size()) == 0);
    });
    server.stop();
}

TEST_CASE("TLS: one bit flipped on the link ends the stream before anything of it is committed", "[replication][tls]")
{
    // On TLS, epochs carry no SHA-256 of their own: TLS authenticates every
    // record. A flipped bit must still never reach the standby.
    LogLines log;
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    backup.tls = TlsSettings{test_psk(0x33), {}, {}, {}, {}};
    BackupServer server(backup, registry, image_factory(), std::ref(log));
    server.start();
    testing::BitFlipProxy proxy(server.port());

    testing::MemoryGuest guest("ledger", 4 << 20, 64 << 10);
    guest.start_workload(16, 200us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.retry_interval = 200ms;
    Replicator replicator(guest, connect_to(proxy.port(), TlsSettings{test_psk(0x33), {}, {}, {}, {}}), settings,
                          std::ref(log));
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    const auto before = registry.status().at(0);

    proxy.arm(20000); // inside one of the next epochs
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (replicator.status().backup_losses == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    // The backup says why on its own thread, maybe after the primary saw
    // the stream end.
    while (!log.contains("SSL routines") && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    INFO(log.all());
    REQUIRE(proxy.flipped());
    CHECK(replicator.status().backup_losses == 1);
    CHECK(log.contains("SSL routines")); // "decryption failed or bad record mac"
    const auto after_flip = registry.status().at(0);
    CHECK(after_flip.consistent); // the previous epoch stays committed
    CHECK(after_flip.epoch >= before.epoch);

    // The primary resyncs over the same path and the copy is exact again.
    REQUIRE(replicator.wait_protected(20s));
    replicator.freeze(10s);
    require_identical(guest, registry);
    replicator.thaw();
    replicator.stop("test over");
    server.stop();
}

TEST_CASE("losing the backup leaves the guest running unprotected until a full resync", "[replication][loss]")
{
    LogLines log;
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    auto server = std::make_unique<BackupServer>(backup, registry, image_factory(), std::ref(log));
    server->start();
    const auto port = server->port();

    testing::MemoryGuest guest("app01", 4 << 20, 64 << 10);
    guest.start_workload(8, 500us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.ack_timeout = 500ms;
    settings.retry_interval = 200ms;
    Replicator replicator(guest, connect_to(port, std::nullopt), settings, std::ref(log));
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));

    server.reset(); // the backup host goes away
    StandbyRegistry registry2;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (replicator.status().state != ProtectionState::unprotected && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    auto lost = replicator.status();
    CHECK(lost.state == ProtectionState::unprotected);
    CHECK(lost.backup_losses == 1);
    CHECK(log.contains("UNPROTECTED, lost the backup"));
    const auto counter = guest.counter();
    std::this_thread::sleep_for(100ms);
    CHECK(guest.counter() > counter); // the guest did not wait for a backup

    backup.listen.port = port;
    BackupServer again(backup, registry2, image_factory(), std::ref(log));
    again.start();
    REQUIRE(replicator.wait_protected(20s));
    CHECK(replicator.status().resyncs == 1);
    replicator.freeze(10s);
    require_identical(guest, registry2);
    replicator.thaw();
    replicator.stop("test over");
}

namespace {

// What the primary's guest held at the pause of each checkpoint epoch,
// written by the (killed) primary process into memory shared with the test.
struct EpochTruth {
    std::atomic<std::uint64_t> counter;
    Sha256Digest memory;
};
constexpr std::size_t kTruthEpochs = 4096;

class RecordTruth final : public CheckpointParticipant {
  public:
    RecordTruth(const testing::MemoryGuest &guest, EpochTruth *truth) : guest_(guest), truth_(truth) {}
    void on_pause(Epoch epoch) override
    {
        if (epoch.value >= kTruthEpochs)
            return;
        Sha256 sha;
        sha.update(guest_.memory());
        truth_[epoch.value].memory = sha.finish();
        truth_[epoch.value].counter = guest_.counter();
    }

  private:
    const testing::MemoryGuest &guest_;
    EpochTruth *truth_;
};

} // namespace

TEST_CASE("a primary killed at random points mid-stream leaves the standby at the last whole epoch", "[replication][kill]")
{
    auto *truth = static_cast<EpochTruth *>(mmap(nullptr, sizeof(EpochTruth) * kTruthEpochs, PROT_READ | PROT_WRITE,
                                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    REQUIRE(truth != MAP_FAILED);
    std::mt19937 rng(std::random_device{}());
    int consistent_runs = 0;
    for (int run = 0; run < 12; ++run) {
        std::memset(static_cast<void *>(truth), 0, sizeof(EpochTruth) * kTruthEpochs);
        LogLines log;
        StandbyRegistry registry;
        BackupSettings backup;
        backup.listen = {"127.0.0.1", 0};
        BackupServer server(backup, registry, image_factory(), std::ref(log));
        const auto port = server.port();
        const pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // The primary: replicate until killed.
            testing::MemoryGuest guest("killme", 4 << 20, 64 << 10);
            guest.start_workload(64, 100us);
            RecordTruth recorder(guest, truth);
            ReplicationSettings settings;
            settings.interval = 5ms;
            settings.codec = parse_compression(run % 2 ? "xor+lz4" : "none");
            Replicator replicator(guest, connect_to(port, std::nullopt), settings, nullptr);
            replicator.add_participant(recorder);
            replicator.start();
            pause();
            _exit(0);
        }
        server.start();
        if (run % 2) {
            // Odd runs: once the standby is consistent, so mid-checkpoint,
            // however slow this machine is today.
            for (int i = 0; i < 2000; ++i) {
                auto states = registry.status();
                if (!states.empty() && states[0].consistent)
                    break;
                std::this_thread::sleep_for(10ms);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
        } else {
            // Even runs: anywhere from the full copy on.
            std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
        }
        kill(child, SIGKILL);
        int wstatus = 0;
        waitpid(child, &wstatus, 0);
        // Let the session notice the end of the stream.
        for (int i = 0; i < 100 && !registry.status().empty() && registry.status()[0].receiving; ++i)
            std::this_thread::sleep_for(10ms);
        server.stop();
        auto states = registry.status();
        REQUIRE(states.size() == 1);
        if (!states[0].consistent)
            continue; // killed during the full copy: no standby yet, nothing to check
        ++consistent_runs;
        const auto epoch = states[0].epoch;
        INFO("run " << run << ": standby at epoch " << epoch << "\n" << log.all());
        REQUIRE(epoch > 0);
        REQUIRE(epoch < kTruthEpochs);
        registry.inspect("killme", [&](const StandbyGuest &standby) {
            auto &image = dynamic_cast<const StandbyImage &>(standby);
            Sha256 sha;
            sha.update(image.memory());
            CHECK(sha.finish() == truth[epoch].memory);
            CHECK(testing::cpu_counter(*image.cpu()) == truth[epoch].counter.load());
            CHECK(testing::stored_counter(image.memory()) == truth[epoch].counter.load());
            std::vector<std::uint8_t> sector(512);
            std::ifstream in(image.replica_path(), std::ios::binary);
            in.read(reinterpret_cast<char *>(sector.data()), 512);
            CHECK(testing::stored_counter(sector) == truth[epoch].counter.load());
        });
    }
    munmap(truth, sizeof(EpochTruth) * kTruthEpochs);
    CHECK(consistent_runs >= 6); // every odd run at least
}

namespace {

// A CA and certificates for host-a, host-b and host-c, made with openssl(1)
// in a scratch directory; empty if openssl cannot.
std::filesystem::path make_certificates()
{
    const auto dir = replica_dir() / "certs";
    std::filesystem::create_directories(dir);
    const std::string d = dir.string();
    std::string script = "cd " + d + " && umask 077 && "
                         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
                         "-out ca.pem -subj /CN=pair-ca -days 2";
    for (const char *h : {"host-a", "host-b", "host-c"})
        script += std::string(" && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ") + h +
                  ".key -out " + h + ".csr -subj /CN=" + h + " && printf 'subjectAltName=DNS:" + h + "\\n' > " + h +
                  ".ext && openssl x509 -req -in " + h + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " + h +
                  ".pem -days 2 -extfile " + h + ".ext";
    if (std::system((script + " >/dev/null 2>&1").c_str()) != 0)
        return {};
    return dir;
}

TlsSettings certificate_of(const std::filesystem::path &dir, const std::string &host, const std::string &peer)
{
    return TlsSettings{{}, dir / (host + ".pem"), dir / (host + ".key"), dir / "ca.pem", peer};
}

} // namespace

TEST_CASE("certificates: the peer's must be for the configured name, not only signed by the pair's CA",
          "[replication][tls]")
{
    const auto certs = make_certificates();
    if (certs.empty()) {
        WARN("SKIPPED: openssl(1) could not make test certificates");
        return;
    }
    LogLines log;
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    backup.tls = certificate_of(certs, "host-b", "host-a");
    BackupServer server(backup, registry, image_factory(), std::ref(log));
    server.start();
    ReplicationSettings settings;
    settings.interval = 10ms;
    settings.retry_interval = 200ms;

    // The right primary, host-a, protects.
    testing::MemoryGuest guest("certs01", 4 << 20, 0);
    guest.start_workload(8, 500us);
    {
        Replicator replicator(guest, connect_to(server.port(), certificate_of(certs, "host-a", "host-b")), settings,
                              std::ref(log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        replicator.stop("test: next");
    }
    // The backup may still commit what was in flight: until its stream ends.
    for (int i = 0; i < 500 && registry.status("certs01") && registry.status("certs01")->receiving; ++i)
        std::this_thread::sleep_for(10ms);
    const auto before = registry.status("certs01");
    REQUIRE(before);
    REQUIRE_FALSE(before->receiving);

    // host-c holds a certificate of the same CA: the backup refuses it.
    testing::MemoryGuest intruder("certs01", 4 << 20, 0);
    intruder.start_workload(8, 500us);
    Replicator wrong(intruder, connect_to(server.port(), certificate_of(certs, "host-c", "host-b")), settings,
                     std::ref(log));
    wrong.start();
    CHECK_FALSE(wrong.wait_protected(1500ms));
    wrong.stop("test over");
    INFO(log.all());
    CHECK(log.contains("refused stream from 127.0.0.1"));
    CHECK(registry.status("certs01")->checkpoints == before->checkpoints);

    // A backup presenting host-c's certificate: the primary refuses it.
    StandbyRegistry registry2;
    backup.tls = certificate_of(certs, "host-c", "host-a");
    BackupServer impostor(backup, registry2, image_factory(), std::ref(log));
    impostor.start();
    Replicator fooled(guest, connect_to(impostor.port(), certificate_of(certs, "host-a", "host-b")), settings,
                      std::ref(log));
    fooled.start();
    CHECK_FALSE(fooled.wait_protected(1500ms));
    CHECK(fooled.status().last_error.find("hostname mismatch") != std::string::npos);
    fooled.stop("test over");
    CHECK(registry2.status().empty());
}

TEST_CASE("an initial sync converges on a busy disk, holding bounded memory for the guest's writes",
          "[replication][disk]")
{
    LogLines log;
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    BackupServer server(backup, registry, image_factory(), std::ref(log));
    server.start();

    // 256 KiB of disk writes every 500 us (up to 500 MB/s) into a 16 MiB
    // hot set of a 160 MiB disk, all through the initial sync: more than the
    // backup takes in one epoch (256 MiB) is written before it ends.
    testing::MemoryGuest guest("busydisk", 8 << 20, 160 << 20);
#if defined(UNDERSTUDY_TSAN)
    guest.set_disk_workload(32 << 10, 16 << 20); // ThreadSanitizer ships some ten times slower
#else
    guest.set_disk_workload(256 << 10, 16 << 20);
#endif
    guest.start_workload(8, 500us);
    ReplicationSettings settings;
    settings.interval = 10ms;
    Replicator replicator(guest, connect_to(server.port(), std::nullopt), settings, std::ref(log));
    replicator.start();
    INFO(log.all());
    REQUIRE(replicator.wait_protected(60s));
    // The log of writes with their data never held more than its limit:
    // the sync marked regions instead (the old log held every write made
    // during the whole sync, and the backup refused the first checkpoint
    // once that passed 256 MiB, forever).
    INFO("written during the sync: about " << (guest.counter() * (256 << 10) >> 20) << " MiB; most held at once: "
                                            << (guest.disk_log_high_water() >> 10) << " KiB");
    CHECK(guest.disk_log_high_water() <= kDiskLogLimitBytes);
    replicator.freeze(10s);
    require_identical(guest, registry);
    replicator.thaw();
    CHECK(replicator.status().resyncs == 0);
    replicator.stop("test over");
}

TEST_CASE("the disk write log marks regions while syncing, then records writes, and falls back when too much is held",
          "[disk]")
{
    DiskWriteLog log;
    log.start(1 << 20); // 2048 sectors: 16 regions of 128
    std::vector<std::uint8_t> sector(512, 7);
    log.record(0, sector);
    log.record(130, sector);
    log.record(131, sector);
    log.record(2047, sector);
    DiskRegions regions;
    log.take_regions(regions, false);
    REQUIRE(regions.ranges.size() == 2);
    CHECK(regions.ranges[0].sector == 0);
    CHECK(regions.ranges[0].sectors == 256); // regions 0 and 1 merged
    CHECK(regions.ranges[1].sector == 1920);
    CHECK(regions.ranges[1].sectors == 128);
    log.take_regions(regions, false);
    CHECK(regions.empty()); // taken: marked again only by new writes

    log.record(5, sector);
    log.take_regions(regions, true); // from now on with data
    CHECK(regions.ranges.size() == 1);
    log.record(9, sector);
    EpochDiskWrites writes;
    log.take(writes);
    REQUIRE(writes.writes.size() == 1);
    CHECK(writes.writes[0].sector == 9);
    CHECK_FALSE(writes.incomplete);

    // More than the log holds: it falls back to regions, says the epoch is
    // incomplete, and the regions cover every write it dropped.
    std::vector<std::uint8_t> big(1 << 20, 1);
    for (std::uint64_t i = 0; i <= kDiskLogLimitBytes >> 20; ++i)
        log.record(0, big);
    log.take(writes);
    CHECK(writes.incomplete);
    CHECK(writes.empty());
    log.take_regions(regions, true);
    REQUIRE(regions.ranges.size() == 1);
    CHECK(regions.ranges[0].sectors >= 2048);
    log.take(writes);
    CHECK_FALSE(writes.incomplete);
    CHECK(log.held_bytes_high_water() <= kDiskLogLimitBytes);
}
