// understudyd with the Xen backend, against the libxenctrl TEST DOUBLE and
// the drbdsetup/drbdadm TEST DOUBLES (tests/support): two real Daemons in one
// process, a real TLS stream over loopback, real tap redirect of the domain's
// "vif" (a veth on a bridge, in a network namespace of the test's own).
#include <catch2/catch.hpp>

#include <algorithm>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
extern "C" {
#include <xenctrl.h>
}
#include <fstream>
#include <thread>

#include "dom0d/cli/control_commands.h"
#include "checkpoint/xen/hypervisor_caps.h"
#include "dom0d/daemon/daemon.h"
#include "tests/support/xen_double/xen_double.h"

using namespace understudy;
using namespace understudy::daemon;
using namespace std::chrono_literals;
namespace xd = understudy::testing::xen_double;

namespace {

bool sh(const std::string &command)
{
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

std::string source(const std::string &path)
{
    return std::string(UNDERSTUDY_SOURCE_DIR) + "/" + path;
}

struct Scratch {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("understudy-xen-daemon-" + std::to_string(getpid()));
    Scratch() { std::filesystem::create_directories(dir); }
    ~Scratch() { std::filesystem::remove_all(dir); }
};

std::string config_text(const Scratch &s, const std::string &node, bool listen, const std::string &guest_extra = "",
                        const std::string &type = "hvm")
{
    std::ofstream(s.dir / "key") << std::string(64, 'b') << "\n";
    std::filesystem::permissions(s.dir / "key", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::ofstream(s.dir / "web01.cfg") << "name = \"web01\"\ntype = \"" << type << "\"\nmemory = 16\nvcpus = 1\n"
                                          "vif = [ 'mac=00:16:3e:00:00:01,bridge=br0,ip=10.77.0.5' ]\n"
                                          "disk = [ 'drbd:1-single-0,xvda,w' ]\n";
    return "[daemon]\nnode = " + node + "\ncontrol_socket = " + (s.dir / (node + ".sock")).string() +
           "\nstate_dir = " + (s.dir / node).string() + "\ndrbdsetup = " + source("tests/support/fake-drbdsetup") +
           "\ndrbdadm = " + source("tests/support/fake-drbdadm") + "\nnetbuf_setup = " + source("scripts/netbuf-setup") +
           "\nxen_lib_dir = " + s.dir.string() + "\nxen_run_dir = " + s.dir.string() +
           "\n[replication]\npsk_file = " + (s.dir / "key").string() + "\ninterval_ms = 20\n" +
           (listen ? "listen = 127.0.0.1:7300\n" : "") + "[guest web01]\nbackend = xen\nxl_config = " +
           (s.dir / "web01.cfg").string() + "\n" + guest_extra;
}

proto::ControlResponse protect(Daemon &d, const std::string &guest, std::uint16_t port, bool allow = false)
{
    proto::ControlRequest r;
    r.mutable_protect()->set_guest(guest);
    r.mutable_protect()->set_peer("127.0.0.1:" + std::to_string(port));
    r.mutable_protect()->set_allow_unreplicated_disk(allow);
    return d.handle(r);
}

proto::ControlResponse guest_request(Daemon &d, const std::string &what, const std::string &guest)
{
    proto::ControlRequest r;
    if (what == "unprotect")
        r.mutable_unprotect()->set_guest(guest);
    else if (what == "freeze")
        r.mutable_freeze()->set_guest(guest);
    else if (what == "thaw")
        r.mutable_thaw()->set_guest(guest);
    else if (what == "checksum")
        r.mutable_checksum()->set_guest(guest);
    else if (what == "activate")
        r.mutable_activate()->set_guest(guest);
    return d.handle(r);
}

// Frames seen on `iface` (this thread's namespace) until `for_how_long`.
std::vector<std::vector<std::uint8_t>> capture(int fd, std::chrono::milliseconds for_how_long)
{
    std::vector<std::vector<std::uint8_t>> frames;
    const auto until = std::chrono::steady_clock::now() + for_how_long;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            break;
        std::vector<std::uint8_t> frame(2048);
        const auto n = ::recv(fd, frame.data(), frame.size(), 0);
        if (n > 0) {
            frame.resize(static_cast<std::size_t>(n));
            frames.push_back(std::move(frame));
        }
    }
    return frames;
}

// A gratuitous ARP from `mac` for `ip`: ARP, sender and target address both ip.
bool is_gratuitous_arp(const std::vector<std::uint8_t> &f, const std::uint8_t (&mac)[6], const char *ip)
{
    in_addr a{};
    inet_pton(AF_INET, ip, &a);
    const auto *addr = reinterpret_cast<const std::uint8_t *>(&a.s_addr);
    return f.size() >= 42 && f[12] == 0x08 && f[13] == 0x06 && std::equal(mac, mac + 6, f.begin() + 6) &&
           std::equal(mac, mac + 6, f.begin() + 22) && std::equal(addr, addr + 4, f.begin() + 28) &&
           std::equal(addr, addr + 4, f.begin() + 38);
}

// Domain web01 as config_text's xl.cfg describes it, 4 MiB.
xd::DomainSpec web01_as_configured(const std::string &type)
{
    xd::DomainSpec spec;
    spec.name = "web01";
    spec.type = type;
    spec.pages = 1024;
    spec.vif_macs = {"00:16:3e:00:00:01"};
    spec.disk_targets = {"1-single-0"};
    return spec;
}

bool wait_protected(Daemon &d, const std::string &guest)
{
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
        auto s = d.status(guest);
        if (s.guests_size() == 1 && s.guests(0).state() == "protected")
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

} // namespace

TEST_CASE("understudyd protects an xl domain by name and by domid, and its backup runs it after a failover",
          "[xen][daemon]")
{
    // An HVM domain checkpointed by suspending it through its PV drivers, or
    // by pausing it (then QEMU's state comes through its QMP monitor), with
    // the double's stand-in for QEMU or Debian's real Xen QEMU; a 64-bit PV
    // domain, suspended by default.
    const std::string variant = GENERATE("suspend", "pause", "pause, real QEMU", "pv");
    const bool pv = variant == "pv";
    const bool real_qemu = variant == "pause, real QEMU";
    const std::string way = pv ? "suspend" : real_qemu ? "pause" : variant;
    const std::string type = pv ? "pv" : "hvm";
    INFO("domain " << type << ", checkpoint = " << way << (real_qemu ? ", real QEMU" : ""));
    if (real_qemu && xd::real_device_model_binary().empty()) {
        WARN("SKIPPED: Debian's Xen device model (package qemu-system-xen) is not installed; scripts/setup installs "
             "it");
        return;
    }
    if (geteuid() != 0 || !sh("command -v tc") || !sh("command -v ip")) {
        WARN("SKIPPED: needs root, ip and tc (the vif's tap redirect)");
        return;
    }
    const std::string ns = "us-xd" + std::to_string(getpid());
    REQUIRE(sh("ip netns add " + ns));
    struct NsGuard {
        std::string ns;
        ~NsGuard() { sh("ip netns del " + ns); }
    } guard{ns};
    const std::string n = "ip -n " + ns + " ";
    REQUIRE(sh(n + "link set lo up && " + n + "link add br0 type bridge && " + n + "link set br0 up && " + n +
               "link add vif1.0 type veth peer name guest0 && " + n + "link set vif1.0 master br0 up && " + n +
               "link set guest0 up"));
    if (!sh("ip netns exec " + ns + " " + source("scripts/netbuf-setup") + " add vif1.0") ||
        !sh("ip netns exec " + ns + " " + source("scripts/netbuf-setup") + " remove vif1.0")) {
        WARN("SKIPPED: this kernel's tc lacks the u32 classifier, clsact or the mirred action");
        return;
    }
    setenv("FAKE_DRBD_STATUS", source("tests/fixtures/drbd/status_json_two_resources_quorum.json").c_str(), 1);
    setenv("FAKE_DRBD_SHOW", source("tests/fixtures/drbd/drbdsetup_show_9_standalone_connected.txt").c_str(), 1);
    setenv("FAKE_DRBD_EVENTS", source("tests/fixtures/drbd/events2_diff_transitions.txt").c_str(), 1);
    Scratch scratch;
    const auto adm_log = scratch.dir / "drbdadm.log";
    setenv("FAKE_DRBDADM_LOG", adm_log.c_str(), 1);

    std::string failure;
    std::thread([&] {
        const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            failure = "cannot enter " + ns;
            return;
        }
        ::close(fd);
        try {
            xd::reset();
            xd::DomainSpec spec;
            spec.name = "web01";
            spec.type = type;
            spec.pages = 4096;
            spec.vif_macs = {"00:16:3e:00:00:01"};
            spec.disk_targets = {"1-single-0", "/srv/other.img"}; // one disk more than the xl.cfg lists
            auto wrong = xd::create_domain(spec);
            Daemon probe(parse_daemon_config(config_text(scratch, "p", false, "", type), "p.conf"), [](const std::string &) {});
            auto refused = protect(probe, "web01", 7300);
            CHECK_THAT(refused.error(), Catch::Contains("does not run as") &&
                                            Catch::Contains("disks 1-single-0, /srv/other.img; the file lists") &&
                                            Catch::Contains("disks 1-single-0"));
            xd::reset(); // the domain as the xl.cfg describes it
            xd::set_xen_dirs(scratch.dir.string(), scratch.dir.string()); // as xen_lib_dir, xen_run_dir
            if (real_qemu)
                xd::use_real_device_model(xd::real_device_model_binary());
            spec.disk_targets = {"1-single-0"};
            (void)wrong;
            const auto domid = xd::create_domain(spec);
            REQUIRE(domid == 1); // its vif is vif1.0
            xd::start_workload(domid, 50us);

            Daemon backup(parse_daemon_config(config_text(scratch, "b", true, "", type), "b.conf"),
                          [&](const std::string &l) { if (std::getenv("UNDERSTUDY_TEST_LOG")) fprintf(stderr, "b: %s\n", l.c_str()); });
            backup.start();
            // A PV domain's checkpoint way is left to its default.
            Daemon primary(parse_daemon_config(config_text(scratch, "a", false, pv ? "" : "checkpoint = " + way + "\n",
                                                           type),
                                               "a.conf"),
                           [&](const std::string &l) { if (std::getenv("UNDERSTUDY_TEST_LOG")) fprintf(stderr, "a: %s\n", l.c_str()); });
            primary.start();
            const auto port = backup.stream_port();

            // An unknown domain, and a disk that does not replicate: refused, and why.
            auto r = protect(primary, "db99", port);
            CHECK_FALSE(r.ok());
            CHECK_THAT(r.error(), Catch::Contains("no running domain named db99"));
            setenv("FAKE_DRBD_FAIL", "1-single-0: No such resource", 1);
            r = protect(primary, "web01", port);
            CHECK_FALSE(r.ok());
            CHECK_THAT(r.error(), Catch::Contains("refusing to protect web01") &&
                                      Catch::Contains("No such resource") &&
                                      Catch::Contains("--allow-unreplicated-disk"));
            CHECK_FALSE(xd::log_dirty_enabled(domid));
            unsetenv("FAKE_DRBD_FAIL");

            // By name: protected, output held on its vif, log-dirty on.
            r = protect(primary, "web01", port);
            INFO(r.error());
            REQUIRE(r.ok());
            REQUIRE(wait_protected(primary, "web01"));
            CHECK(xd::log_dirty_enabled(domid));
            CHECK(sh("ip link show nb-vif1.0"));
            auto status = primary.status("web01").guests(0);
            CHECK(status.role() == "primary");
            CHECK(status.output().way() == "tap-redirect");
            CHECK(status.output().holding());
            CHECK(status.backend() == "xen");
            CHECK(status.checkpoint_way() == way);
            if (way == "suspend") {
                CHECK(xd::suspend_count(domid) > 0);
                CHECK(xd::pause_count(domid) == 0);
            } else {
                CHECK(xd::suspend_count(domid) == 0);
            }
            REQUIRE(status.disks_size() == 1);
            CHECK_THAT(status.disks(0), Catch::Contains("DRBD resource 1-single-0 replicates; protocol C") &&
                                            Catch::Contains("up to one epoch ahead of memory"));
            // What `understudy status` prints for it.
            const auto table = cli::status_table(primary.status());
            INFO(table);
            CHECK_THAT(table, Catch::Contains("web01") && Catch::Contains("primary"));
            CHECK_THAT(table, Catch::Contains(way == "suspend" ? "  checkpoint: suspend (through the guest's PV drivers)"
                                                               : "  checkpoint: pause (stopped by Xen, unnoticed by the guest)"));
            CHECK_THAT(table, Catch::Contains("  disk xvda (1-single-0): DRBD resource 1-single-0 replicates; protocol C"));
            CHECK_THAT(table, Catch::Contains("  output (tap-redirect): held until acked"));

            // Unprotect: log-dirty off, the redirect gone; then again by domid.
            REQUIRE(guest_request(primary, "unprotect", "web01").ok());
            CHECK_FALSE(xd::log_dirty_enabled(domid));
            CHECK_FALSE(sh("ip link show nb-vif1.0"));
            CHECK(xd::pause_count(domid) == 0);
            r = protect(primary, "1", port);
            REQUIRE(r.ok());
            CHECK_THAT(r.message(), Catch::Contains("Xen domain web01 (domid 1)"));
            REQUIRE(wait_protected(primary, "web01"));

            // At a frozen checkpoint the standby equals the domain.
            if (real_qemu) // and QEMU's devices travel with it
                xd::real_device_model(domid)->write_cmos(0x40, 0x77);
            REQUIRE(guest_request(primary, "freeze", "web01").ok());
            const auto here = guest_request(primary, "checksum", "web01");
            const auto there = guest_request(backup, "checksum", "web01");
            REQUIRE(here.ok());
            REQUIRE(there.ok());
            CHECK(here.checksum().memory_sha256() == there.checksum().memory_sha256());
            // Log-dirty PEEK on the frozen domain: nothing written since the checkpoint.
            CHECK(here.checksum().has_pages_written_since_checkpoint());
            CHECK(here.checksum().pages_written_since_checkpoint() == 0);
            CHECK_FALSE(there.checksum().has_pages_written_since_checkpoint());
            CHECK(here.checksum().cpu_sha256() == there.checksum().cpu_sha256());
            CHECK(here.checksum().epoch() == there.checksum().epoch());
            // (A PV domain's memory as Xen's save sends it: page tables in pfns.)
            const auto committed = pv ? xd::normalised_memory(domid) : xd::memory(domid);

            // The primary dies with its domain; the backup runs it.
            primary.stop();
            xd::destroy_domain(domid);
            r = guest_request(backup, "activate", "web01");
            INFO(r.error());
            REQUIRE(r.ok());
            const auto new_domid = xd::domid_of("web01");
            REQUIRE(new_domid != 0);
            CHECK(xd::context_loaded(new_domid));
            CHECK(xd::pause_count(new_domid) == 0);
            if (way == "suspend")
                CHECK(xd::suspend_result(new_domid) == 0); // it returns from its suspend as moved, and reconnects
            CHECK(xd::restored(new_domid)); // by Xen's restore
            if (pv) {
                // The same memory once its page tables are normalised again,
                // but for what Xen's restore rewrites for the new machine
                // frames: the p2m's pages and the start info page.
                const auto filled = xd::normalised_memory(new_domid);
                REQUIRE(filled.size() == committed.size());
                auto rewritten = xd::p2m_pages(new_domid);
                rewritten.push_back(xd::restored_vcpu0(new_domid).start_info_pfn);
                std::uint64_t differing = 0;
                for (std::uint64_t pfn = 0; pfn < 4096; ++pfn)
                    if (std::find(rewritten.begin(), rewritten.end(), pfn) == rewritten.end() &&
                        std::memcmp(filled.data() + pfn * 4096, committed.data() + pfn * 4096, 4096) != 0)
                        ++differing;
                CHECK(differing == 0);
                CHECK(xd::restored_vcpu0(new_domid).rip == xd::stored_counter_in(committed.data()));
            } else {
                if (real_qemu) { // the restored QEMU loaded its state of the committed epoch
                    auto *qemu = xd::real_device_model(new_domid);
                    REQUIRE(qemu);
                    CHECK(qemu->status() == "running");
                    CHECK(qemu->read_cmos(0x40) == 0x77);
                } else {
                    CHECK_THAT(xd::emulator_context(new_domid), // QEMU starts from its state
                               Catch::StartsWith("QEVM") &&
                                   Catch::EndsWith(way == "suspend" ? "(libxl suspend)" : "(qmp)"));
                }
                auto expected = committed; // but for the console and xenstore rings, cleared by Xen's restore
                std::memset(expected.data() + 4094 * 4096, 0, 2 * 4096);
                const auto filled = xd::memory(new_domid);
                REQUIRE(filled.size() == expected.size());
                CHECK(std::memcmp(filled.data(), expected.data(), filled.size()) == 0);
            }
            CHECK(backup.status("web01").guests(0).role() == "activated");

            // Its announcement: gratuitous ARPs for the vif's ip= with its
            // MAC, on the vif's bridge (what the failover controller calls
            // after a takeover).
            {
                UniqueFd packets(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
                REQUIRE(packets);
                sockaddr_ll at{};
                at.sll_family = AF_PACKET;
                at.sll_protocol = htons(ETH_P_ALL);
                at.sll_ifindex = static_cast<int>(if_nametoindex("guest0")); // the far end of the vif
                REQUIRE(::bind(packets.get(), reinterpret_cast<sockaddr *>(&at), sizeof at) == 0);
                backup.announce("web01");
                const std::uint8_t mac[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
                const auto frames = capture(packets.get(), 500ms);
                const auto garps = std::count_if(frames.begin(), frames.end(), [&](const auto &f) {
                    return is_gratuitous_arp(f, mac, "10.77.0.5");
                });
                CHECK(garps == 3);
                proto::ControlRequest events;
                events.mutable_events();
                bool said = false;
                const auto reply = backup.handle(events);
                for (const auto &e : reply.events().events())
                    said |= e.kind() == "announced" &&
                            e.reason().find("3 gratuitous ARPs for 10.77.0.5 on br0") != std::string::npos;
                CHECK(said);
            }
            std::ifstream adm(adm_log);
            std::string call;
            std::getline(adm, call);
            CHECK(call == "primary 1-single-0"); // DRBD promoted before the domain was created
            backup.stop();
            xd::reset();
        } catch (const std::exception &e) {
            failure = e.what();
            xd::reset();
        } catch (...) {
            failure = "a REQUIRE failed (above)";
            xd::reset();
        }
    }).join();
    unsetenv("FAKE_DRBD_STATUS");
    unsetenv("FAKE_DRBD_SHOW");
    unsetenv("FAKE_DRBD_EVENTS");
    unsetenv("FAKE_DRBDADM_LOG");
    INFO(failure);
    CHECK(failure.empty());
}

TEST_CASE("heartbeats keep flowing while understudyd waits on a hung drbdsetup with its lock held; no takeover",
          "[xen][daemon][heartbeat]")
{
    // Two understudyd on 127.0.0.1 and 127.0.0.2 with heartbeats only. The
    // primary's `protect` waits 3 s on drbdsetup (probing the domain's DRBD
    // disk) holding the daemon's lock: six heartbeat timeouts.
    Scratch scratch;
    const std::uint16_t port = static_cast<std::uint16_t>(20000 + getpid() % 20000);
    auto heartbeat = [&](const std::string &peer, const std::string &me, const std::string &peer_ip) {
        return "[heartbeat]\npeer_node = " + peer + "\nlisten = " + me + ":" + std::to_string(port) + "\npaths = " +
               peer_ip + ":" + std::to_string(port) + "\ninterval_ms = 50\ntimeout_ms = 500\n"
               "allow_unguarded_takeover = yes\n";
    };
    Daemon a(parse_daemon_config(config_text(scratch, "a", false) + heartbeat("b", "127.0.0.1", "127.0.0.2"), "a.conf"),
             [](const std::string &) {});
    Daemon b(parse_daemon_config(config_text(scratch, "b", true) + heartbeat("a", "127.0.0.2", "127.0.0.1"), "b.conf"),
             [](const std::string &) {});
    a.start();
    b.start();
    auto alive = [](Daemon &d) { return d.status().pair().peer_alive(); };
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!(alive(a) && alive(b)) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(20ms);
    REQUIRE((alive(a) && alive(b)));

    xd::reset();
    xd::create_domain(web01_as_configured("hvm"));
    setenv("FAKE_DRBD_HANG", "3", 1);
    setenv("FAKE_DRBD_FAIL", "TEST: a hung drbdsetup, then an error", 1);
    proto::ControlResponse protected_;
    std::thread protecting([&] { protected_ = protect(a, "web01", b.stream_port()); });
    bool a_heard = true, b_heard = true;
    const auto hang_ends = std::chrono::steady_clock::now() + 2800ms;
    std::this_thread::sleep_for(200ms); // protect is in drbdsetup by now
    while (std::chrono::steady_clock::now() < hang_ends) {
        a_heard = a_heard && alive(a);
        b_heard = b_heard && alive(b);
        std::this_thread::sleep_for(20ms);
    }
    protecting.join();
    unsetenv("FAKE_DRBD_HANG");
    unsetenv("FAKE_DRBD_FAIL");
    CHECK_FALSE(protected_.ok());
    CHECK(b_heard); // the primary's heartbeats went on while its lock was held
    CHECK(a_heard);
    const auto events = b.handle([] {
        proto::ControlRequest r;
        r.mutable_events()->set_after(0);
        return r;
    }());
    for (const auto &e : events.events().events())
        CHECK(e.kind() != "peer_silent");
    a.stop();
    b.stop();
    xd::reset();
}

TEST_CASE("a PV domain on a Xen without shadow paging is refused at protect, before anything starts, with the "
          "capability and the way out named",
          "[xen][daemon]")
{
    // Debian 12's Xen 4.17: pv, hvm and hap, no shadow paging.
    Scratch scratch;
    xd::reset();
    xd::set_hypervisor_caps(XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_hap);
    const auto domid = xd::create_domain(web01_as_configured("pv"));
    Daemon primary(parse_daemon_config(config_text(scratch, "a", false, "", "pv"), "a.conf"), [](const std::string &) {});
    const auto r = protect(primary, "web01", 7399);
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.error(), Catch::Contains("PV guest") && Catch::Contains("shadow paging") &&
                              Catch::Contains("virt_caps pv hvm hap;") && Catch::Contains("CONFIG_SHADOW_PAGING=y") &&
                              Catch::Contains("PVH"));
    CHECK(xd::calls().count("xc_shadow_control") == 0); // log-dirty was never tried
    CHECK(xd::pause_count(domid) == 0);
    CHECK(primary.status("web01").guests_size() == 0);

    // The same domain as PVH on that Xen tracks its dirty pages with HAP.
    auto xen = xen::XenSession::open([](const std::string &) {});
    const auto caps = xen::read_hypervisor_caps(*xen);
    CHECK(xen::log_dirty_problem(caps, "pvh", "web01").empty());
    CHECK(xen::log_dirty_problem(caps, "hvm", "web01").empty());
    // Without HAP either, an HVM domain cannot be tracked; a backup without
    // HVM support cannot run an HVM or PVH standby, one without PV no PV one.
    xd::set_hypervisor_caps(XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_hvm);
    CHECK_THAT(xen::log_dirty_problem(xen::read_hypervisor_caps(*xen), "hvm", "web01"),
               Catch::Contains("neither") && Catch::Contains("virt_caps pv hvm)"));
    xd::set_hypervisor_caps(XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_shadow);
    CHECK_THAT(xen::domain_type_problem(xen::read_hypervisor_caps(*xen), "pvh", "web01"),
               Catch::Contains("cannot run HVM or PVH domains") && Catch::Contains("could never be started here"));
    CHECK(xen::domain_type_problem(xen::read_hypervisor_caps(*xen), "pv", "web01").empty());
    xd::set_hypervisor_caps(XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_hap);
    CHECK_THAT(xen::domain_type_problem(xen::read_hypervisor_caps(*xen), "pv", "web01"),
               Catch::Contains("cannot run PV domains"));
    xd::reset();
}
