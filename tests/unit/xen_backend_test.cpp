// The Xen backend's real code (checkpoint/xen) against the libxenctrl TEST
// DOUBLE (tests/support/xen_double): a domain whose memory a workload keeps
// writing is protected by the real Replicator over loopback TCP to a real
// BackupServer holding a XenStandby; errors from Xen calls are injected.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

extern "C" {
#include <xen/hvm/params.h>
}

#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/unique_fd.h"
#include "checkpoint/xen/xen_guest.h"
#include "checkpoint/xen/qmp_client.h"
#include "checkpoint/xen/xen_standby.h"
#include "tests/support/log_lines.h"
#include "tests/support/xen_double/fake_qmp.h"
#include "tests/support/xen_double/xen_double.h"
#include "tests/unit/xen_test_pair.h"

using namespace understudy;
using namespace understudy::xen;
using namespace std::chrono_literals;
namespace xd = understudy::testing::xen_double;
using namespace understudy::xen::testing;

namespace {

std::uint32_t make_domain(std::uint64_t pages = 4096, std::vector<std::uint64_t> holes = {2000, 2001, 2002},
                          const std::string &type = "hvm")
{
    xd::DomainSpec spec;
    spec.name = "web01";
    spec.type = type;
    spec.pages = pages;
    spec.holes = std::move(holes);
    auto domid = xd::create_domain(spec);
    xd::start_workload(domid, 50us);
    return domid;
}

void require_standby_equals_domain(StandbyRegistry &registry, std::uint32_t domid)
{
    const auto memory = xd::memory(domid);
    bool found = registry.inspect("web01", [&](const StandbyGuest &standby) {
        auto &image = dynamic_cast<const StandbyImage &>(standby);
        REQUIRE(image.memory().size() == memory.size());
        CHECK(std::memcmp(image.memory().data(), memory.data(), memory.size()) == 0);
        REQUIRE(image.cpu());
        REQUIRE(image.cpu()->has_xen());
        const auto &x = image.cpu()->xen();
        CHECK(x.domain_type() == "hvm");
        CHECK(xd::rip_in_context(x.hvm_context()) == xd::counter(domid));
        CHECK(xd::stored_counter_in(image.memory().data()) == xd::counter(domid));
        bool store_pfn = false;
        for (const auto &p : x.params())
            store_pfn |= p.index() == HVM_PARAM_STORE_PFN && p.value() == 4095;
        CHECK(store_pfn);
    });
    REQUIRE(found);
}

// A domain protected by a Replicator toward the pair's backup, up to its
// first acked epoch.
struct Protection {
    XenGuest guest;
    Replicator replicator;
    Protection(Pair &pair, std::uint32_t domid)
        : guest(pair.xen, domid), replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log))
    {
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
    }
};

// Protects the domain up to one frozen acked checkpoint, ends protection,
// and destroys the domain, as when the primary dies.
void committed_then_lost(Pair &pair, std::uint32_t domid)
{
    {
        Protection protection(pair, domid);
        protection.replicator.freeze(10s);
        protection.replicator.stop("test over");
    }
    xd::destroy_domain(domid);
}

// The domain built from the standby runs on from where the standby was: its
// vCPU's steps go on from the restored counter.
void check_runs_on(std::uint32_t domid)
{
    const auto resumed_at = xd::counter(domid);
    xd::start_workload(domid, 50us);
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (xd::counter(domid) == resumed_at && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
    CHECK(xd::counter(domid) > resumed_at);
}

// The CPU state of a one-vCPU HVM domain, as far as a standby checks it.
proto::CpuState plausible_hvm_state()
{
    proto::CpuState cpu;
    cpu.mutable_xen()->set_domain_type("hvm");
    cpu.mutable_xen()->set_vcpus(1);
    cpu.mutable_xen()->set_hvm_context(std::string(64, '\0'));
    return cpu;
}

// The domain Xen's restore built holds the committed memory, but for the
// rings Xen's restore clears (console, xenstore), and its vCPU is where the
// committed memory says it was; its xenstore page is where it was.
void check_restored_as_committed(std::uint32_t domid, const std::vector<std::uint8_t> &committed)
{
    auto expected = committed;
    std::memset(expected.data() + 4094 * kPageSize, 0, 2 * kPageSize);
    const auto filled = xd::memory(domid);
    REQUIRE(filled.size() == expected.size());
    CHECK(std::memcmp(filled.data(), expected.data(), filled.size()) == 0);
    CHECK(xd::counter(domid) == xd::stored_counter_in(committed.data()));
    CHECK(xd::params(domid).at(HVM_PARAM_STORE_PFN) == 4095);
}

} // namespace

TEST_CASE("Xen: the standby equals the domain's memory and CPU state at every acked epoch, and fails over",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    std::vector<std::uint8_t> committed;
    std::string device_model;
    {
        XenGuest guest(pair.xen, find_domain(*pair.xen, "web01"));
        CHECK(guest.memory_size() == 4096 * kPageSize);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        CHECK(xd::log_dirty_enabled(domid));
        CHECK(guest.mapping_mode() == "one mapping of all memory, kept across epochs");
        CHECK(pair.log.contains("3 of 4096 frames are not RAM"));
        for (int round = 0; round < 3; ++round) {
            const auto before = xd::counter(domid);
            std::this_thread::sleep_for(40ms);
            auto epoch = replicator.freeze(10s);
            INFO("frozen at epoch " << epoch.value << "\n" << pair.log.all());
            CHECK(pair.registry.status().at(0).epoch == epoch.value);
            CHECK(xd::counter(domid) > before); // the workload ran in between
            CHECK(xd::shut_down(domid)); // Xen's suspend shutdown, not a pause
            CHECK(xd::pause_count(domid) == 0);
            CHECK_FALSE(xd::device_model_running(domid)); // QEMU stopped with it
            require_standby_equals_domain(pair.registry, domid);
            // Verification through log-dirty PEEK: frozen, nothing written
            // since the checkpoint's harvest.
            CHECK(guest.pages_written_since_harvest() == std::optional<std::uint64_t>(0));
            replicator.thaw();
        }
        CHECK(replicator.status().checkpoints >= 3);
        // QEMU wrote each state into a descriptor passed to it (add-fd), and
        // was told to close every one of them (remove-fd).
        CHECK(xd::device_model_fdsets(domid) == 0);

        CHECK(xd::calls()["xc_logdirty_control"] >= 3);
        CHECK(xd::calls()["xenforeignmemory_map"] == 1); // mapped once, kept across epochs
        replicator.freeze(10s);
        require_standby_equals_domain(pair.registry, domid);
        xd::stop_workload(domid); // the domain stays as the standby has it
        committed = xd::memory(domid);
        device_model = xd::device_model_state(domid);
        CHECK_THAT(device_model, Catch::StartsWith("QEVM") && Catch::EndsWith("(qmp)"));
        replicator.stop("test: unprotect");
        CHECK_FALSE(xd::log_dirty_enabled(domid));
        CHECK(xd::pause_count(domid) == 0);
        CHECK_FALSE(xd::shut_down(domid));
        CHECK(xd::device_model_running(domid));
    }
    // The primary dies; the backup builds the domain from its standby.
    xd::destroy_domain(domid);
    auto [guest, new_domid] = activate_standby(pair);
    CHECK(new_domid != domid);
    CHECK(xd::restored(new_domid)); // by Xen's restore
    CHECK(xd::context_loaded(new_domid));
    CHECK(xd::pause_count(new_domid) == 0); // unpaused
    // Its device model starts from QEMU's state at the committed epoch, saved
    // through QMP while the domain was paused.
    CHECK(xd::emulator_context(new_domid) == device_model);
    check_restored_as_committed(new_domid, committed);
    // The CPU it had on the primary, and its TSC, as of the committed epoch.
    CHECK(xd::cpu_policy_set(new_domid));
    CHECK(xd::cpuid_leaf1_ecx(new_domid) == xd::DomainSpec{}.cpuid_leaf1_ecx);
    CHECK(xd::tsc_info(new_domid) ==
          xd::TscInfo{0, xd::DomainSpec{}.tsc_khz, 1, xd::stored_counter_in(committed.data()) * 1000});
    CHECK(guest->name() == "web01");
    // It runs on from where the standby was.
    check_runs_on(new_domid);
}

TEST_CASE("Xen: log-dirty PEEK counts the pages written since the last harvest and leaves the log as it is",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    XenGuest guest(pair.xen, domid);
    CHECK_FALSE(guest.pages_written_since_harvest()); // no log yet: nothing to tell
    guest.enable_dirty_log();
    DirtyBitmap harvested(guest.memory_size() / kPageSize);
    guest.harvest_dirty(harvested);
    harvested.clear();
    std::this_thread::sleep_for(20ms); // the workload writes
    guest.pause();
    const auto peeked = guest.pages_written_since_harvest();
    REQUIRE(peeked);
    CHECK(*peeked > 0);
    CHECK(guest.pages_written_since_harvest() == peeked); // PEEK cleared nothing
    guest.harvest_dirty(harvested);
    CHECK(harvested.count() == *peeked); // the harvest found what PEEK saw
    CHECK(guest.pages_written_since_harvest() == std::optional<std::uint64_t>(0));
    guest.resume();
    guest.disable_dirty_log();
}

TEST_CASE("Xen: checkpoint = suspend: each epoch suspends the guest and cancels the suspend; the copy activated "
          "on the backup is restored by Xen with its device model's state and returns from the suspend as resumed",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    std::string device_model;
    {
        XenGuest guest(pair.xen, domid, CheckpointWay::suspend);
        CHECK(guest.checkpoint_way() == CheckpointWay::suspend);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        for (int round = 0; round < 3; ++round) {
            std::this_thread::sleep_for(30ms);
            replicator.freeze(10s);
            INFO(pair.log.all());
            CHECK(xd::suspended(domid)); // suspended by its drivers, not paused
            CHECK(xd::pause_count(domid) == 0);
            require_standby_equals_domain(pair.registry, domid);
            pair.registry.inspect("web01", [](const StandbyGuest &standby) {
                auto &image = dynamic_cast<const StandbyImage &>(standby);
                CHECK(xd::rax_in_context(image.cpu()->xen().hvm_context()) == 0);
            });
            const auto at = xd::counter(domid);
            replicator.thaw();
            const auto until = std::chrono::steady_clock::now() + 5s;
            while (xd::counter(domid) == at && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(1ms);
            CHECK(xd::counter(domid) > at); // it runs on after each checkpoint
        }
        CHECK(xd::suspend_count(domid) >= 3);
        replicator.freeze(10s);
        xd::stop_workload(domid);
        device_model = xd::device_model_state(domid); // QEMU's, as of the committed epoch
        CHECK_THAT(device_model, Catch::StartsWith("QEVM"));
        replicator.stop("test: unprotect");
        CHECK_FALSE(xd::suspended(domid));
        CHECK(xd::suspend_result(domid) == 1); // its last suspend was cancelled: it goes on here
        CHECK_FALSE(xd::log_dirty_enabled(domid));
    }
    xd::destroy_domain(domid);
    auto [activated, new_domid] = activate_standby(pair);
    // Its suspend returns 0 there: the guest knows it runs in a new domain and
    // reconnects its PV frontends to the backends of this host.
    CHECK(xd::suspend_result(new_domid) == 0);
    // Built by Xen's own restore, its device model started from QEMU's state
    // of the committed epoch.
    CHECK(xd::restored(new_domid));
    CHECK(xd::emulator_context(new_domid) == device_model);
    check_with_xen_verifier(xd::last_restore_stream(), "Libxl Record: Emulator context");
    CHECK_FALSE(xd::suspended(new_domid));
    check_runs_on(new_domid);
}

TEST_CASE("Xen: checkpoint = suspend on a guest that does not suspend stops protection with the reason, and the "
          "guest runs on",
          "[xen]")
{
    Pair pair;
    xd::DomainSpec spec;
    spec.name = "web01";
    spec.pv_drivers = false;
    const auto domid = xd::create_domain(spec);
    xd::start_workload(domid, 50us);
    XenGuest guest(pair.xen, domid, CheckpointWay::suspend);
    Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
    replicator.start();
    const auto error = wait_for_error(replicator);
    INFO(pair.log.all());
    CHECK_THAT(error, Catch::Contains("libxl_domain_suspend_only of domain " + std::to_string(domid)) &&
                          Catch::Contains("-8 guest_timedout") && Catch::Contains("did not suspend in time") &&
                          Catch::Contains("use checkpoint = pause"));
    CHECK_FALSE(xd::suspended(domid));
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    const auto at = xd::counter(domid);
    std::this_thread::sleep_for(20ms);
    CHECK(xd::counter(domid) > at);
    replicator.stop("test over");
}

TEST_CASE("Xen: checkpoint = suspend: a resume that fails stops protection, and the domain is resumed when the guest "
          "is let go",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    {
        XenGuest guest(pair.xen, domid, CheckpointWay::suspend);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        xd::fail_call("libxl_domain_resume", EIO, 0, 1);
        const auto error = wait_for_error(replicator);
        INFO(pair.log.all());
        CHECK_THAT(error, Catch::Contains("libxl_domain_resume of domain " + std::to_string(domid)) &&
                              Catch::Contains("the domain stays suspended"));
        CHECK(xd::suspended(domid));
        CHECK_FALSE(xd::log_dirty_enabled(domid));
        replicator.stop("test over");
    }
    CHECK_FALSE(xd::suspended(domid)); // the second try, as the guest is let go
    const auto at = xd::counter(domid);
    std::this_thread::sleep_for(20ms);
    CHECK(xd::counter(domid) > at);
}

TEST_CASE("Xen: a backup whose CPUs cannot run the domain refuses it when protection starts, not at failover",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain(); // its highest CPUID leaf is 0xd
    xd::set_host_cpu(0x7, 0xffffffff); // the backup's CPUs stop at leaf 7
    XenGuest guest(pair.xen, domid);
    Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
    replicator.start();
    const std::string refusal = "CpuState refused: a domain this host cannot run: its CPU policy (CPUID leaves, "
                                "MSRs) is beyond what this host's CPUs can give a hvm domain";
    const auto until = std::chrono::steady_clock::now() + 30s; // after the full copy of its memory
    while (!pair.log.contains(refusal) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(10ms);
    INFO(pair.log.all());
    CHECK(pair.log.contains(refusal));
    CHECK_FALSE(replicator.wait_protected(200ms));
    const auto standbys = pair.registry.status();
    CHECK((standbys.empty() || !standbys.at(0).consistent)); // nothing committed
    replicator.stop("test over");
    CHECK_FALSE(xd::log_dirty_enabled(domid));
}

TEST_CASE("Xen: CPU features the backup lacks are masked at failover, and the log names them", "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    committed_then_lost(pair, domid);
    xd::set_host_cpu(0x16, 0x7ffafbff & ~(1u << 28)); // this host has no AVX (leaf 1 ecx bit 28)
    auto standby = pair.registry.take("web01");
    REQUIRE(standby);
    auto guest = standby->activate();
    const auto new_domid = xd::domid_of("web01");
    CHECK(xd::cpuid_leaf1_ecx(new_domid) == (0x7ffafbffu & ~(1u << 28)));
    INFO(pair.log.all());
    CHECK(pair.log.contains("domain web01: CPUID leaf 0x1 differs on this host: ecx 0x7ffafbff -> 0x6ffafbff"));
}

TEST_CASE("Xen: a standby refuses a malformed CPU policy, TSC mode or map of frames that are not RAM", "[xen]")
{
    XenStandby standby(web_config(16), 4096 * kPageSize, [] { return std::shared_ptr<XenSession>(); }, nullptr);
    proto::CpuState cpu = plausible_hvm_state();
    cpu.mutable_xen()->set_cpuid_policy(std::string(24 * 3, '\0'));
    cpu.mutable_xen()->set_msr_policy(std::string(16, '\0'));
    cpu.mutable_xen()->mutable_tsc()->set_mode(2);
    CHECK(standby.cpu_problem(cpu).empty());
    auto bad = cpu;
    bad.mutable_xen()->set_cpuid_policy(std::string(25, '\0'));
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("a CPUID policy of 25 bytes"));
    bad = cpu;
    bad.mutable_xen()->set_msr_policy(std::string(16 * 5000, '\0'));
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("an MSR policy of 80000 bytes"));
    bad = cpu;
    bad.mutable_xen()->mutable_tsc()->set_mode(7);
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("TSC mode 7, which Xen does not have"));
    bad = cpu;
    auto *range = bad.mutable_xen()->add_not_ram();
    range->set_first(4000);
    range->set_count(200);
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("frames 4000+200 marked not RAM, outside the guest's 4096"));
    range->set_count(96);
    CHECK(standby.cpu_problem(bad).empty());
}

TEST_CASE("Xen: a PVH standby becomes a domain through Xen's own restore, from a stream Xen's checker accepts",
          "[xen]")
{
    Pair pair(16, "pvh");
    const auto domid = make_domain(4096, {2000, 2001, 2002}, "pvh");
    std::vector<std::uint8_t> committed;
    {
        XenGuest guest(pair.xen, domid);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        std::this_thread::sleep_for(30ms);
        replicator.freeze(10s);
        xd::stop_workload(domid);
        committed = xd::memory(domid);
        replicator.stop("test: the primary dies");
    }
    xd::destroy_domain(domid);
    auto [guest, new_domid] = activate_standby(pair);
    INFO(pair.log.all() << "\nrestore: " << xd::last_restore_error());
    CHECK(xd::restored(new_domid));
    CHECK(xd::calls()["libxl_domain_create_new"] == 0);
    CHECK(pair.log.contains("restored paused as domain " + std::to_string(new_domid) + " by Xen's restore"));
    CHECK(xd::pause_count(new_domid) == 0); // unpaused after the restore
    // Every RAM frame populated, the three that are not RAM left out.
    CHECK(xd::populated_frames(new_domid) == 4096 - 3);
    check_restored_as_committed(new_domid, committed);
    CHECK(xd::cpu_policy_set(new_domid));
    CHECK(xd::tsc_info(new_domid).khz == xd::DomainSpec{}.tsc_khz);
    check_runs_on(new_domid);

    // The same bytes through Xen's own checker of migration streams.
    check_with_xen_verifier(xd::last_restore_stream(), "Libxc Record: HVM context");
}

TEST_CASE("Xen: frames the guest balloons in are replicated, and frames it gives back are left out of the restore",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain(); // frames 2000-2002 are not RAM
    std::vector<std::uint8_t> committed;
    {
        XenGuest guest(pair.xen, domid);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        // Its balloon driver takes 2000-2002 and gives back 3000-3009.
        std::vector<std::uint64_t> out;
        for (std::uint64_t p = 3000; p < 3010; ++p)
            out.push_back(p);
        xd::balloon(domid, out, {2000, 2001, 2002});
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (!pair.log.contains("its memory changed from 4093 to 4086 pages") &&
               std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(5ms);
        INFO(pair.log.all());
        CHECK(pair.log.contains("its memory changed from 4093 to 4086 pages (ballooning)"));
        // The workload's writes go round all frames every 4095 steps: then it
        // has written its new frames too.
        const auto from = xd::counter(domid);
        while (xd::counter(domid) < from + 4100 && std::chrono::steady_clock::now() < until + 20s)
            std::this_thread::sleep_for(5ms);
        replicator.freeze(10s);
        xd::stop_workload(domid);
        committed = xd::memory(domid);
        bool written = false;
        for (std::uint64_t p = 2000; p < 2003; ++p)
            for (std::size_t i = 0; i < kPageSize; ++i)
                written |= committed[p * kPageSize + i] != 0;
        CHECK(written); // the test means something: the guest used its new frames
        // The standby has what the guest wrote into its new frames.
        pair.registry.inspect("web01", [&](const StandbyGuest &standby) {
            auto &image = dynamic_cast<const StandbyImage &>(standby);
            CHECK(std::memcmp(image.memory().data() + 2000 * kPageSize, committed.data() + 2000 * kPageSize,
                              3 * kPageSize) == 0);
        });
        replicator.stop("test: the primary dies");
    }
    xd::destroy_domain(domid);
    auto [guest, new_domid] = activate_standby(pair);
    CHECK(xd::populated_frames(new_domid) == 4096 - 10); // what the guest had given back stays out
    const auto filled = xd::memory(new_domid);
    CHECK(std::memcmp(filled.data() + 2000 * kPageSize, committed.data() + 2000 * kPageSize, 3 * kPageSize) == 0);
}

TEST_CASE("Xen: an error from any Xen call stops protection with a clear message and leaves log-dirty off", "[xen]")
{
    struct Case {
        const char *call;
        int error;
        const char *says;
    };
    auto c = GENERATE(Case{"xc_logdirty_control", EPERM, "xc_logdirty_control(CLEAN) on domain"},
                      Case{"xc_domain_hvm_getcontext", ENOMEM, "Xen or Dom0 is out of memory"},
                      Case{"xc_domain_shutdown", ESRCH, "the domain no longer exists"},
                      Case{"xc_domain_resume", EPERM, "xc_domain_resume on domain"},
                      Case{"xc_hvm_param_get", EPERM, "must run as root in Dom0"});
    INFO(c.call << " fails with " << std::strerror(c.error));
    Pair pair;
    const auto domid = make_domain();
    Protection protection(pair, domid);
    auto &replicator = protection.replicator;
    xd::fail_call(c.call, c.error);
    const auto error = wait_for_error(replicator);
    INFO(pair.log.all());
    CHECK(error.find(c.says) != std::string::npos);
    CHECK(error.find(std::strerror(c.error)) != std::string::npos);
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    CHECK(xd::pause_count(domid) == 0); // left running
    replicator.stop("test over");
    CHECK(xd::exists(domid));
    if (std::string(c.call) != "xc_domain_resume")
        CHECK_FALSE(xd::shut_down(domid));
}

TEST_CASE("Xen: an HVM domain is not left stopped when Xen cannot say whether it stopped for a checkpoint",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    XenGuest guest(pair.xen, domid);
    xd::fail_call("xc_domain_getinfo", EIO, 0, 1); // the call that waits for the suspend shutdown
    CHECK_THROWS_WITH(guest.pause(), Catch::Contains("xc_domain_getinfo on domain " + std::to_string(domid)));
    CHECK_FALSE(xd::shut_down(domid)); // resumed: it runs on
    guest.pause(); // and the next checkpoint works
    CHECK(xd::shut_down(domid));
    guest.resume();
    CHECK_FALSE(xd::shut_down(domid));
}

TEST_CASE("Xen: checkpoint = pause waits for a vCPU inside an emulated I/O to complete it (Xen's suspend "
          "shutdown), so that no I/O is half done at a checkpoint; one that never completes fails the checkpoint "
          "and the domain runs on",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    Protection protection(pair, domid);
    auto &replicator = protection.replicator;
    replicator.freeze(10s);
    xd::stop_workload(domid);
    replicator.thaw();
    xd::begin_emulated_io(domid); // an ioreq QEMU has not answered yet
    std::atomic<bool> frozen{false};
    std::thread freezer([&] {
        replicator.freeze(10s);
        frozen = true;
    });
    std::this_thread::sleep_for(200ms);
    CHECK_FALSE(frozen); // no checkpoint while the I/O is half done
    const auto committed_before = pair.registry.status().at(0).epoch;
    xd::end_emulated_io(domid);
    freezer.join();
    CHECK(frozen);
    CHECK(xd::shut_down(domid));
    CHECK(pair.registry.status().at(0).epoch > committed_before);
    replicator.thaw();

    xd::begin_emulated_io(domid); // and this one never completes
    const auto error = wait_for_error(replicator);
    INFO(pair.log.all());
    CHECK_THAT(error, Catch::Contains("did not stop for a checkpoint within 2 s") &&
                          Catch::Contains("emulated I/O its device model (QEMU) does not complete"));
    CHECK_FALSE(xd::shut_down(domid)); // resumed: it runs on
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    xd::end_emulated_io(domid);
    replicator.stop("test over");
}

TEST_CASE("Xen: a device model state that cannot be had (QEMU refuses, it is too large for a checkpoint, or it "
          "is not QEMU's) stops protection with the reason, and the domain runs on",
          "[xen]")
{
    const std::string trouble = GENERATE(as<std::string>(), "refused", "too large", "not QEMU's", "no stop");
    INFO(trouble);
    Pair pair;
    const auto domid = make_domain();
    Protection protection(pair, domid);
    auto &replicator = protection.replicator;
    if (trouble == "refused")
        xd::fail_call("qmp:xen-save-devices-state", EIO);
    else if (trouble == "no stop")
        xd::fail_call("qmp:stop", EIO);
    else if (trouble == "too large")
        xd::pad_device_model_state(2 << 20);
    else
        xd::replace_device_model_state("Error: disk full\n");
    const auto error = wait_for_error(replicator);
    INFO(pair.log.all());
    if (trouble == "refused")
        CHECK_THAT(error, Catch::Contains("domain web01: saving its device model's state: QEMU refused "
                                          "xen-save-devices-state (QMP socket " +
                                          (pair.xen_dir / ("qmp-libxl-" + std::to_string(domid))).string() +
                                          "): GenericError: Failed to save device state"));
    else if (trouble == "no stop")
        CHECK_THAT(error, Catch::Contains("domain web01: stopping its device model for the checkpoint: QEMU refused "
                                          "stop") &&
                              Catch::Contains("GenericError: Could not stop"));
    else if (trouble == "too large")
        CHECK_THAT(error, Catch::Contains("domain web01: its device model state (") &&
                              Catch::Contains("bytes, more than the 1044480 a checkpoint carries"));
    else
        CHECK_THAT(error, Catch::Contains("domain web01: what its device model saved through its QMP monitor is "
                                          "not QEMU device state (no QEVM magic at its start)"));
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    CHECK(xd::pause_count(domid) == 0);
    CHECK(xd::device_model_running(domid));
    replicator.stop("test over");
}

TEST_CASE("Xen: QEMU that does not continue after a checkpoint stops protection with the reason and what to do; the "
          "domain runs, and its device model is continued when protection ends",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    {
        Protection protection(pair, domid);
        xd::fail_call("qmp:cont", EIO, 0, 1); // once
        const auto error = wait_for_error(protection.replicator);
        INFO(pair.log.all());
        CHECK_THAT(error, Catch::Contains("domain web01: its device model did not continue after the checkpoint: "
                                          "QEMU refused cont") &&
                              Catch::Contains("its emulated devices stay stopped until QEMU continues") &&
                              Catch::Contains("`xl qemu-monitor-command web01 cont`"));
        CHECK(xd::pause_count(domid) == 0); // its vCPUs run
        CHECK_FALSE(xd::device_model_running(domid));
        protection.replicator.stop("test over");
        CHECK_FALSE(xd::log_dirty_enabled(domid));
    }
    CHECK(xd::device_model_running(domid)); // the second try, as the guest is let go
}

TEST_CASE("Xen: enabling log-dirty is refused: protection does not start, and says why", "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    XenGuest guest(pair.xen, domid);
    xd::fail_call("xc_shadow_control", EPERM, 0, 1);
    Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
    replicator.start();
    const auto error = wait_for_error(replicator);
    CHECK(error.find("xc_shadow_control(ENABLE_LOGDIRTY) on domain " + std::to_string(domid) +
                     " failed: Operation not permitted") != std::string::npos);
    CHECK_FALSE(replicator.wait_protected(100ms));
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    CHECK(xd::pause_count(domid) == 0);
    replicator.stop("test over");
}

TEST_CASE("Xen: a domain that vanishes mid-epoch ends protection cleanly", "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    {
        XenGuest guest(pair.xen, domid);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        // Destroyed by someone else while paused, just before the harvest.
        xd::vanish_on_call("xc_logdirty_control", domid, 2);
        const auto error = wait_for_error(replicator);
        INFO(pair.log.all());
        CHECK(error.find("on domain " + std::to_string(domid) + " failed: No such process (the domain no longer exists") !=
              std::string::npos);
        CHECK_FALSE(xd::exists(domid));
        replicator.stop("test over");
    } // the guest's destructor copes with the domain being gone
    CHECK(pair.log.contains("resuming after a failed checkpoint failed too"));
}

TEST_CASE("Xen: log-dirty already on (video RAM tracking) is taken over", "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    xd::enable_log_dirty_behind_our_back(domid);
    Protection protection(pair, domid);
    auto &replicator = protection.replicator;
    CHECK(pair.log.contains("turning it off and enabling it again"));
    replicator.freeze(10s);
    require_standby_equals_domain(pair.registry, domid);
    replicator.stop("test over");
}

TEST_CASE("Xen: when all memory cannot be mapped at once, pages are mapped per batch, with the same result", "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    xd::limit_map_pages(1024);
    Protection protection(pair, domid);
    auto &replicator = protection.replicator;
    CHECK(pair.log.contains("mapping 1024 pages per batch in each epoch instead"));
    CHECK(protection.guest.mapping_mode() == "a mapping per batch of 1024 pages");
    for (int round = 0; round < 2; ++round) {
        std::this_thread::sleep_for(30ms);
        replicator.freeze(10s);
        require_standby_equals_domain(pair.registry, domid);
        replicator.thaw();
    }
    replicator.stop("test over");
}

TEST_CASE("Xen: domains are found by name or domid; unknown names are refused with the reason", "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    CHECK(find_domain(*pair.xen, "web01") == domid);
    CHECK(find_domain(*pair.xen, std::to_string(domid)) == domid);
    CHECK_THROWS_WITH(find_domain(*pair.xen, "db99"), Catch::Contains("no running domain named db99"));
    CHECK_THROWS_WITH(find_domain(*pair.xen, "999"), Catch::Contains("no running domain with domid 999"));
    CHECK_THROWS_WITH(find_domain(*pair.xen, "0"), Catch::Contains("Dom0 itself"));
    CHECK_THROWS_WITH(find_domain(*pair.xen, "--peer"), Catch::Contains("no running domain named --peer"));
    xd::fail_call("xc_interface_open", EACCES, 0, 1);
    CHECK_THROWS_WITH(XenSession::open(nullptr), Catch::Contains("cannot open libxenctrl") &&
                                                     Catch::Contains("Dom0"));
}

TEST_CASE("Xen: a device model stub domain is not protected itself, and its HVM domain only with checkpoint = "
          "suspend, each refusal saying why",
          "[xen]")
{
    Pair pair;
    const auto domid = make_domain();
    xd::DomainSpec stub;
    stub.name = "web01-dm";
    stub.type = "pv";
    stub.pages = 256;
    stub.stubdom_for = domid;
    const auto stub_domid = xd::create_domain(stub);
    CHECK_THROWS_WITH(XenGuest(pair.xen, stub_domid, CheckpointWay::suspend),
                      Catch::Contains("domain web01-dm is the device model stub domain of domain " +
                                      std::to_string(domid) + ": protect that domain"));
    CHECK_THROWS_WITH(XenGuest(pair.xen, domid, CheckpointWay::pause),
                      Catch::Contains("HVM domain web01 runs its device model in stub domain " +
                                      std::to_string(stub_domid)) &&
                          Catch::Contains("use checkpoint = suspend"));
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    XenGuest suspended(pair.xen, domid, CheckpointWay::suspend); // libxl saves the stub domain's QEMU
    CHECK(suspended.checkpoint_way() == CheckpointWay::suspend);
}

TEST_CASE("Xen: a standby whose xl.cfg gives the domain less memory is refused by Xen's restore, and nothing is left "
          "behind",
          "[xen]")
{
    Pair pair(8); // 8 MiB on the backup, 16 MiB on the primary
    const auto domid = make_domain();
    committed_then_lost(pair, domid);
    auto standby = pair.registry.take("web01");
    REQUIRE(standby);
    CHECK_THROWS_WITH(standby->activate(), Catch::Contains("libxl_domain_create_restore for web01 failed"));
    CHECK_THAT(xd::last_restore_error(), Catch::Contains("out of memory"));
    CHECK(xd::domid_of("web01") == 0); // Xen's restore left no domain
}

TEST_CASE("Xen: a standby needs a fixed MAC for every vif", "[xen]")
{
    auto config = web_config(16);
    CHECK(standby_config_problem(config).empty());
    config.nics[0].mac.clear();
    CHECK_THAT(standby_config_problem(config), Catch::Contains("has no mac="));
    config = web_config(16);
    config.type = "pv";
    CHECK(standby_config_problem(config).empty()); // 64-bit PV guests are protected too
}

TEST_CASE("Xen: a standby refuses CPU state that is not its domain's, before anything is committed", "[xen]")
{
    XenStandby standby(web_config(16), 4096 * kPageSize, [] { return std::shared_ptr<XenSession>(); }, nullptr);
    proto::CpuState cpu = plausible_hvm_state();
    cpu.mutable_xen()->add_params()->set_index(HVM_PARAM_STORE_PFN);
    CHECK(standby.cpu_problem(cpu).empty());
    auto bad = cpu;
    bad.mutable_xen()->add_params()->set_index(HVM_PARAM_STORE_EVTCHN);
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("HVM parameter 2, which is not one a checkpoint carries"));
    bad = cpu;
    bad.mutable_xen()->set_vcpus(64);
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("64 vCPUs, while its xl.cfg here gives it 1"));
    bad = cpu;
    bad.mutable_xen()->set_domain_type("pvh");
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("a pvh domain, while web01 is hvm here"));
    bad = cpu;
    bad.mutable_xen()->set_hvm_context(std::string(17 << 20, '\0'));
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("an HVM context of"));
    bad.Clear();
    bad.mutable_kvm();
    CHECK_THAT(standby.cpu_problem(bad), Catch::Contains("not the state of a Xen domain"));
}

TEST_CASE("Xen: the QMP client says why QEMU's monitor could not save the devices: no socket, not QMP, silence; "
          "a monitor held open between commands still answers",
          "[xen]")
{
    const auto dir = std::filesystem::temp_directory_path() / ("understudy-qmp-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const auto socket = (dir / "qmp-libxl-7").string();
    const auto file = (dir / "state").string();
    auto save = [&](std::chrono::milliseconds timeout) {
        QmpMonitor(socket, timeout).execute("xen-save-devices-state", R"({"filename":)" + qmp_string(file) + "}");
    };
    CHECK_THROWS_WITH(save(1s),
                      Catch::Contains("cannot connect to QEMU's QMP socket " + socket) &&
                          Catch::Contains("No such file or directory"));
    {
        // Something that answers, but is not QEMU's monitor: it never greets.
        UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener.get(), 1) == 0);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK_THROWS_WITH(save(300ms),
                          Catch::Contains("QEMU did not answer in time"));
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
        ::unlink(socket.c_str());
    }
    {
        // A monitor that refuses the save says so with QEMU's words.
        xd::FakeQmp qmp(socket, [](const std::string &, const google::protobuf::Struct &) {
            return std::string(R"({"error": {"class": "GenericError", "desc": "No space left on device"}})");
        });
        CHECK_THROWS_WITH(save(2s),
                          Catch::Contains("QEMU refused xen-save-devices-state") &&
                              Catch::Contains("GenericError: No space left on device"));
    }
    {
        // Held open longer than its timeout between commands, a monitor still
        // gets answers: the timeout is per command.
        xd::FakeQmp qmp(socket, [](const std::string &command, const google::protobuf::Struct &) {
            return std::string(command == "stop" || command == "cont" ? R"({"return": {}})"
                                                                      : R"({"error": {"class": "CommandNotFound"}})");
        });
        QmpMonitor monitor(socket, 200ms);
        CHECK_NOTHROW(monitor.execute("stop"));
        std::this_thread::sleep_for(400ms);
        CHECK_NOTHROW(monitor.execute("cont"));
        CHECK_THROWS_WITH(monitor.execute("quit"), Catch::Contains("QEMU refused quit"));
        // A descriptor passed with add-fd makes an fd set; remove-fd ends it.
        UniqueFd passed(::memfd_create("qmp-test", MFD_CLOEXEC));
        const int id = monitor.add_fd(passed.get());
        CHECK(qmp.fdsets() == 1);
        monitor.remove_fd_set(id);
        CHECK(qmp.fdsets() == 0);
        CHECK_THROWS_WITH(monitor.add_fd(-1), Catch::Contains("QEMU refused add-fd") &&
                                                  Catch::Contains("No file descriptor supplied via SCM_RIGHTS"));
        CHECK_THROWS_WITH(monitor.remove_fd_set(id), Catch::Contains("not found"));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("Xen: a standby takes only QEMU's device state for an HVM domain, and none for PVH or PV", "[xen]")
{
    const std::string qemu = std::string("QEVM\0\0\0\3", 8) + "\x04 sections";
    auto problem = [](const std::string &type, const std::string &state) {
        XenStandby standby(web_config(16, type), 4096 * kPageSize, [] { return std::shared_ptr<XenSession>(); },
                           nullptr);
        proto::DeviceState devices;
        devices.set_format(1);
        devices.set_xen_device_model(state);
        return standby.devices_problem(devices);
    };
    CHECK(problem("hvm", qemu) == "");
    CHECK_THAT(problem("hvm", ""), Catch::Contains("no device model (QEMU) state for HVM domain web01"));
    CHECK_THAT(problem("hvm", "QEVM"), Catch::Contains("4 bytes, too short for QEMU device state"));
    CHECK_THAT(problem("hvm", "<html>Internal Server Error</html>"),
               Catch::Contains("device model state of web01: not QEMU device state (no QEVM magic at its start)"));
    CHECK_THAT(problem("hvm", std::string("QEVM\0\0\0\2", 8) + "old"),
               Catch::Contains("a file format version other than 3"));
    CHECK_THAT(problem("hvm", qemu + std::string(1 << 20, '\0')), Catch::Contains("more than the 1044480"));
    CHECK(problem("pvh", "") == "");
    CHECK_THAT(problem("pvh", qemu), Catch::Contains("device model state for web01, a pvh domain, which has none"));
    CHECK_THAT(problem("pv", qemu), Catch::Contains("a pv domain, which has none"));
}

TEST_CASE("Xen: an HVM standby without device model state is not activated, and its disks are not promoted", "[xen]")
{
    bool promoted = false;
    XenStandby standby(web_config(16), 4096 * kPageSize, [] { return std::shared_ptr<XenSession>(); },
                       [&] { promoted = true; });
    standby.load_cpu(plausible_hvm_state());
    CHECK_THROWS_WITH(standby.activate(), Catch::Contains("holds no device model (QEMU) state"));
    CHECK_FALSE(promoted);
}

TEST_CASE("Xen: a PVH domain is known as PVH though libxl_domain_info says HVM; the initial copy leaves out frames "
          "that are not RAM",
          "[xen]")
{
    // Real Xen 4.17: libxl_domain_info reports HVM for PVH; a 128 MiB PVH
    // domain's frames run to its special pages below 4 GiB.
    Pair pair;
    const auto domid = make_domain();
    CHECK(describe_domain(*pair.xen, domid).type == "hvm");
    xd::reset();
    xd::DomainSpec spec;
    spec.name = "web02";
    spec.type = "pvh";
    spec.pages = 4096;
    spec.holes = {100, 101, 3000};
    const auto pvh = xd::create_domain(spec);
    CHECK(describe_domain(*pair.xen, pvh).type == "pvh");

    XenGuest guest(pair.xen, pvh);
    guest.enable_dirty_log(); // finds what is not RAM
    const auto frames = guest.frames_to_copy();
    CHECK(frames.size() == 4096 - 3);
    for (const auto skipped : {100ull, 101ull, 3000ull})
        CHECK(std::find(frames.begin(), frames.end(), Pfn{skipped}) == frames.end());
    CHECK(frames.front() == Pfn{0});
    CHECK(frames.back() == Pfn{4095});
    guest.disable_dirty_log();
}

TEST_CASE("Xen: an HVM or PVH standby costs the backup only the frames written to it, not its whole frame span",
          "[xen]")
{
    // A 128 MiB PVH domain on real Xen spans 4080 MiB of frames; a backup
    // Dom0 of 1 GiB could not hold that committed up front.
    auto rss_kib = [] {
        std::ifstream status("/proc/self/status");
        std::string line;
        while (std::getline(status, line))
            if (line.rfind("VmRSS:", 0) == 0)
                return std::stoull(line.substr(6));
        return 0ull;
    };
    const auto before = rss_kib();
    XenStandby standby(web_config(128, "pvh"), 64ull << 30, nullptr, nullptr);
    CHECK(standby.memory_size() == 64ull << 30);
    CHECK(rss_kib() < before + (64u << 10)); // less than 64 MiB more
}
