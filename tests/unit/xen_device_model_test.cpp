// An HVM domain's device model for real: Debian's Xen QEMU (qemu-system-xen,
// the binary libxl starts for HVM domains) run under QEMU's qtest
// accelerator by the libxenctrl TEST DOUBLE (device_model.h), while the
// Xen backend's real code checkpoints it through QMP and Xen's restore path
// (the double's libxl) starts a new one from the committed state.
#include <catch2/catch.hpp>

#include "checkpoint/xen/device_model_state.h"
#include "tests/unit/xen_test_pair.h"

using namespace understudy;
using namespace understudy::xen;
using namespace understudy::xen::testing;

namespace {

constexpr unsigned kCmosByte = 0x40; // RTC NVRAM, which no one else writes here

// Why the real device model cannot run here ("" if it can).
std::string missing_device_model()
{
    if (xd::real_device_model_binary().empty())
        return "Debian's Xen device model (package qemu-system-xen, /usr/libexec/xen-qemu-system-i386) is not "
               "installed; scripts/setup installs it";
    return "";
}

// A running HVM domain whose device model is Debian's Xen QEMU (after the
// Pair, which resets the double).
std::uint32_t domain_with_real_qemu()
{
    xd::use_real_device_model(xd::real_device_model_binary());
    xd::DomainSpec spec;
    spec.name = "web01";
    spec.pages = 4096;
    const auto domid = xd::create_domain(spec);
    xd::start_workload(domid, 50us);
    return domid;
}

// Waits until QEMU's run state is `status`; checks it got there.
void wait_for_status(xd::RealDeviceModel &qemu, const std::string &status)
{
    const auto until = std::chrono::steady_clock::now() + 5s;
    auto now = qemu.status();
    while (now != status && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(1ms);
        now = qemu.status();
    }
    CHECK(now == status);
}

} // namespace

TEST_CASE("Xen: a real device model (Debian's Xen QEMU) is stopped and saved with every checkpoint and runs on; "
          "the domain Xen restores on the backup gets a QEMU that loaded the committed epoch's device state",
          "[xen][qemu]")
{
    if (auto missing = missing_device_model(); !missing.empty()) {
        WARN("SKIPPED: " + missing);
        return;
    }
    // pause: understudy asks QEMU through QMP; suspend: libxl (the double's)
    // has QEMU save while it suspends the domain.
    const auto way = GENERATE(CheckpointWay::pause, CheckpointWay::suspend);
    INFO((way == CheckpointWay::pause ? "checkpoint = pause" : "checkpoint = suspend"));
    Pair pair;
    const auto domid = domain_with_real_qemu();
    auto *qemu = xd::real_device_model(domid);
    REQUIRE(qemu);
    std::uint8_t committed = 0;
    {
        XenGuest guest(pair.xen, domid, way);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        for (std::uint8_t round = 1; round <= 3; ++round) {
            // The device changes between checkpoints.
            qemu->write_cmos(kCmosByte, static_cast<std::uint8_t>(0x10 + round));
            const auto epoch = replicator.freeze(10s);
            INFO("frozen at epoch " << epoch.value << "\n" << pair.log.all());
            CHECK(xd::suspended(domid) == (way == CheckpointWay::suspend));
            // QEMU's devices are stopped with the domain, as libxl stops
            // them to save it.
            CHECK(qemu->status() == "paused");
            pair.registry.inspect("web01", [](const StandbyGuest &standby) {
                const auto &image = dynamic_cast<const StandbyImage &>(standby);
                REQUIRE(image.devices());
                const auto &state = image.devices()->xen_device_model();
                CHECK(device_model_state_problem(state) == "");
                CHECK(state.size() > 1000); // QEMU's devices, not a stand-in's line
            });
            committed = static_cast<std::uint8_t>(0x10 + round);
            if (round < 3) {
                replicator.thaw();
                wait_for_status(*qemu, "running"); // and run on with it
            }
        }
        CHECK(replicator.status().checkpoints >= 3);
        // After the last acked checkpoint the device changes again, and then
        // the primary dies: that change is lost, as the guest's memory
        // written since is.
        qemu->write_cmos(kCmosByte, 0x99);
        xd::stop_workload(domid);
        replicator.stop("test: the primary dies");
        CHECK_FALSE(xd::log_dirty_enabled(domid));
        CHECK(qemu->status() == "running"); // let go with its domain
        // Each state was written into a descriptor passed to QEMU (add-fd, as
        // libxl does); running again, QEMU holds none of them (it closes
        // removed fd sets only while it runs).
        CHECK(xd::device_model_fdsets(domid) == 0);
    }
    xd::destroy_domain(domid); // its QEMU goes with it
    auto [guest, new_domid] = activate_standby(pair);
    INFO(xd::last_restore_error());
    CHECK(xd::restored(new_domid));
    auto *restored = xd::real_device_model(new_domid);
    REQUIRE(restored);
    CHECK(restored->status() == "running");
    CHECK(restored->read_cmos(kCmosByte) == committed);
    check_with_xen_verifier(xd::last_restore_stream(), "Libxl Record: Emulator context");
}

TEST_CASE("Xen: device state that is QEMU's in its header but that QEMU cannot load makes the failover fail with "
          "Xen's error and where QEMU's words are, and leaves no domain",
          "[xen][qemu]")
{
    if (auto missing = missing_device_model(); !missing.empty()) {
        WARN("SKIPPED: " + missing);
        return;
    }
    Pair pair;
    xd::DomainSpec spec;
    spec.name = "web01";
    spec.pages = 4096;
    const auto domid = xd::create_domain(spec); // its device model: the stand-in ...
    xd::start_workload(domid, 50us);
    // ... which saves a header the standby accepts and a body no QEMU can load.
    xd::replace_device_model_state(std::string("QEVM\0\0\0\3", 8) + std::string(64, '\x5a'));
    {
        XenGuest guest(pair.xen, domid);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        replicator.freeze(10s);
        replicator.stop("test: the primary dies");
    }
    xd::destroy_domain(domid);
    xd::use_real_device_model(xd::real_device_model_binary()); // the backup's QEMU is real
    auto standby = pair.registry.take("web01");
    REQUIRE(standby);
    CHECK_THROWS_WITH(standby->activate(), Catch::Contains("libxl_domain_create_restore for web01 failed") &&
                                               Catch::Contains("/var/log/xen/qemu-dm-web01.log"));
    // QEMU's own words, as the double's libxl reports them.
    CHECK_THAT(xd::last_restore_error(),
               Catch::Contains("the device model did not start from its saved state") && Catch::Contains("exited"));
    CHECK(xd::domid_of("web01") == 0);
}
