// understudyd's configuration file: what an operator writes is checked key by
// key, and mistakes are named.
#include <catch2/catch.hpp>

#include <fstream>

#include "dom0d/daemon/daemon.h"
#include "dom0d/daemon/daemon_config.h"
#include "dom0d/daemon/prometheus_text.h"

using namespace understudy;
using namespace understudy::daemon;

namespace {

std::filesystem::path key_file()
{
    auto path = std::filesystem::temp_directory_path() / ("understudy-key-" + std::to_string(getpid()));
    std::ofstream(path) << std::string(64, 'a') << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path;
}

std::string base()
{
    return "[daemon]\nnode = a\n[replication]\npsk_file = " + key_file().string() + "\n";
}

} // namespace

TEST_CASE("a complete configuration is read with its defaults", "[config]")
{
    auto c = parse_daemon_config(base() + "listen = 10.0.0.2\ninterval_ms = 40\ncompression = xor+zstd\n"
                                          "[guest web]\nkernel = /k.elf\nmemory_mib = 32\ntap = t0\n"
                                          "disk = /d.img\nautostart = no\n",
                                 "test.conf");
    CHECK(c.node == "a");
    REQUIRE(c.listen);
    CHECK(c.listen->port == kDefaultStreamPort);
    CHECK(c.replication.interval == std::chrono::milliseconds(40));
    CHECK(c.replication.codec.xor_delta);
    CHECK(c.replication.codec.compressor == proto::PageBatch::ZSTD);
    REQUIRE(c.tls);
    CHECK(c.tls->psk.size() == 32);
    REQUIRE(c.guests.size() == 1);
    CHECK(c.guests[0].name == "web");
    CHECK(c.guests[0].vm.memory_bytes == (32u << 20));
    CHECK_FALSE(c.guests[0].autostart);
    CHECK(c.guest("web") != nullptr);
    CHECK(c.output.capacity_bytes == (16u << 20));
    CHECK(c.output.policy == FullBufferPolicy::drop_newest);
    auto d = parse_daemon_config(base() + "output_buffer_mib = 2\noutput_buffer_policy = drop-oldest\n", "t.conf");
    CHECK(d.output.capacity_bytes == (2u << 20));
    CHECK(d.output.policy == FullBufferPolicy::drop_oldest);
}

TEST_CASE("configuration mistakes are refused with the file, section and key", "[config]")
{
    CHECK_THROWS_WITH(parse_daemon_config(base() + "intervall_ms = 5\n", "x.conf"),
                      Catch::Contains("[replication]: unknown key 'intervall_ms'"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "interval_ms = 0\n", "x.conf"),
                      Catch::Contains("interval_ms: '0' is not a number from 1"));
    CHECK_THROWS_WITH(parse_daemon_config("[replication]\n", "x.conf"), Catch::Contains("needs psk_file"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "insecure = yes\n", "x.conf"),
                      Catch::Contains("insecure = yes together with a key"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "compression = gzip\n", "x.conf"),
                      Catch::Contains("compression 'gzip'"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "output_buffer_policy = block\n", "x.conf"),
                      Catch::Contains("output_buffer_policy: output buffer policy 'block': expected drop-newest or drop-oldest"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "output_buffer_mib = 0\n", "x.conf"),
                      Catch::Contains("output_buffer_mib: '0' is not a number from 1"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest w]\nmemory_mib = 8\n", "x.conf"),
                      Catch::Contains("[guest w].kernel: missing"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest b@d]\nkernel = /k\n", "x.conf"),
                      Catch::Contains("guest name must be"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest w]\nkernel = /k\nip = 300.1.1.1/24\n", "x.conf"),
                      Catch::Contains("[guest w]"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[gust w]\nkernel = /k\n", "x.conf"), Catch::Contains("unknown section [gust w]"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "listen = host:99999\n", "x.conf"),
                      Catch::Contains("not a number from 1 to 65535"));
    CHECK_THROWS_WITH(parse_daemon_config("[replication]\npsk_file = /nonexistent/key\n", "x.conf"),
                      Catch::Contains("cannot open"));
    CHECK_THROWS_WITH(load_daemon_config("/nonexistent/understudyd.conf"), Catch::Contains("cannot open"));
}

TEST_CASE("status renders as valid Prometheus text", "[metrics]")
{
    proto::StatusReply s;
    s.set_node("host \"a\"");
    auto *g = s.add_guests();
    g->set_name("web");
    g->set_role("primary");
    g->set_state("protected");
    g->set_checkpoints(42);
    g->set_pause_p50_us(310);
    auto *b = s.add_standbys();
    b->set_guest("db");
    b->set_consistent(true);
    auto text = prometheus_text(s);
    CHECK_THAT(text, Catch::Contains("understudy_info{node=\"host \\\"a\\\"\",insecure=\"false\"} 1\n"));
    CHECK_THAT(text, Catch::Contains("understudy_guest_protected{guest=\"web\",role=\"primary\"} 1\n"));
    CHECK_THAT(text, Catch::Contains("# TYPE understudy_checkpoints_total counter\n"));
    CHECK_THAT(text, Catch::Contains("understudy_checkpoints_total{guest=\"web\",role=\"primary\"} 42\n"));
    CHECK_THAT(text, Catch::Contains("understudy_pause_seconds{guest=\"web\",quantile=\"0.5\"} 0.00031\n"));
    CHECK_THAT(text, Catch::Contains("understudy_standby_consistent{guest=\"db\"} 1\n"));
    // Every line is a comment or `name{labels} value`.
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        INFO(line);
        CHECK((line.rfind("# ", 0) == 0 || (line.find("} ") != std::string::npos && line.find('{') != std::string::npos)));
    }
}

TEST_CASE("[heartbeat] re-protection and uplink tracking are checked", "[config]")
{
    const std::string hb = "[heartbeat]\npeer_node = b\npaths = 10.0.0.2\nwitness = 10.0.0.1\n";
    auto c = parse_daemon_config(base() + hb, "t.conf");
    REQUIRE(c.failover);
    CHECK_FALSE(c.failover->reprotect_automatic); // by default only on command
    CHECK_FALSE(c.failover->track_interface);

    c = parse_daemon_config(base() + hb + "reprotect = auto\npeer_stream = 10.1.0.2\ntrack_interface = eth1\n",
                            "t.conf");
    CHECK(c.failover->reprotect_automatic);
    REQUIRE(c.failover->peer_stream);
    CHECK(c.failover->peer_stream->port == kDefaultStreamPort);
    CHECK(c.failover->track_interface == std::string("eth1"));

    auto error_of = [&](const std::string &extra, const std::string &head = "") {
        try {
            (void)parse_daemon_config(base() + (head.empty() ? hb : head) + extra, "t.conf");
        } catch (const ConfigError &e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK(error_of("reprotect = auto\n").find("needs peer_stream") != std::string::npos);
    CHECK(error_of("reprotect = sometimes\n").find("is not auto or manual") != std::string::npos);
    CHECK(error_of("track_interface = ../etc\n").find("not an interface name") != std::string::npos);
    CHECK(error_of("track_interface = a-name-far-too-long\n").find("not an interface name") != std::string::npos);
    CHECK(error_of("track_interface = eth1\n", "[heartbeat]\npeer_node = b\npaths = 10.0.0.2\n")
              .find("needs a witness") != std::string::npos);
}

TEST_CASE("a Xen guest section names its xl.cfg, which is read and checked at start", "[config][xen]")
{
    const auto dir = std::filesystem::temp_directory_path() / ("understudy-xlcfg-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "web01.cfg") << "name = \"web01\"\ntype = \"hvm\"\nmemory = 512\n"
                                        "vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]\n"
                                        "disk = [ 'drbd:web01-disk,xvda,w' ]\n";
    auto c = parse_daemon_config(base() + "[guest web01]\nbackend = xen\nxl_config = " + (dir / "web01.cfg").string() +
                                     "\nallow_unreplicated_disk = yes\n",
                                 "x.conf");
    REQUIRE(c.guests.size() == 1);
    CHECK(c.guests[0].backend == "xen");
    REQUIRE(c.guests[0].xl);
    CHECK(c.guests[0].xl->memory_mib == 512);
    CHECK(c.guests[0].xl->disks.at(0).drbd());
    CHECK(c.guests[0].allow_unreplicated_disk);
    CHECK_FALSE(c.guests[0].autostart);
    CHECK(c.guests[0].checkpoint_way == xen::CheckpointWay::pause); // the default
    CHECK(c.xen_lib_dir == "/var/lib/xen"); // where libxl saves QEMU's state
    CHECK(parse_daemon_config("[daemon]\nnode = a\nxen_lib_dir = /usr/local/var/lib/xen\n[replication]\npsk_file = " +
                                  key_file().string() + "\n",
                              "x.conf")
              .xen_lib_dir == "/usr/local/var/lib/xen");
    CHECK_THROWS_WITH(parse_daemon_config("[daemon]\nnode = a\nxen_lib_dir = var/lib/xen\n[replication]\npsk_file = " +
                                              key_file().string() + "\n",
                                          "x.conf"),
                      Catch::Contains("xen_lib_dir: 'var/lib/xen' is not an absolute path"));
    CHECK(c.xen_run_dir == "/var/run/xen"); // where QEMU's QMP sockets are
    CHECK_THROWS_WITH(parse_daemon_config("[daemon]\nnode = a\nxen_run_dir = run/xen\n[replication]\npsk_file = " +
                                              key_file().string() + "\n",
                                          "x.conf"),
                      Catch::Contains("xen_run_dir: 'run/xen' is not an absolute path"));
    const std::string web01 = "[guest web01]\nbackend = xen\nxl_config = " + (dir / "web01.cfg").string() + "\n";
    CHECK(parse_daemon_config(base() + web01 + "checkpoint = suspend\n", "x.conf").guests.at(0).checkpoint_way ==
          xen::CheckpointWay::suspend);
    {
        std::ofstream(dir / "legacy.cfg") << "name = \"legacy\"\ntype = \"pv\"\nmemory = 256\n"
                                             "vif = [ 'mac=00:16:3e:00:00:09,bridge=xenbr0' ]\n";
        const std::string legacy = "[guest legacy]\nbackend = xen\nxl_config = " + (dir / "legacy.cfg").string() + "\n";
        CHECK(parse_daemon_config(base() + legacy, "x.conf").guests.at(0).checkpoint_way ==
              xen::CheckpointWay::suspend); // a PV guest's default
        CHECK_THROWS_WITH(parse_daemon_config(base() + legacy + "checkpoint = pause\n", "x.conf"),
                          Catch::Contains("pause cannot protect legacy, a PV guest") &&
                              Catch::Contains("use checkpoint = suspend"));
    }
    CHECK_THROWS_WITH(parse_daemon_config(base() + web01 + "checkpoint = freeze\n", "x.conf"),
                      Catch::Contains("[guest web01] (backend = xen).checkpoint: 'freeze' is neither pause") &&
                          Catch::Contains("nor suspend"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest web01]\nbackend = xen\n", "x.conf"),
                      Catch::Contains("[guest web01] (backend = xen).xl_config: missing"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest web01]\nbackend = xen\nxl_config = " +
                                              (dir / "web01.cfg").string() + "\nkernel = /k.elf\n",
                                          "x.conf"),
                      Catch::Contains("unknown key 'kernel'"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest db]\nbackend = xen\nxl_config = " +
                                              (dir / "web01.cfg").string() + "\n",
                                          "x.conf"),
                      Catch::Contains("names the domain 'web01', not 'db'"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest web01]\nbackend = xen\nxl_config = /nonexistent.cfg\n",
                                          "x.conf"),
                      Catch::Contains("cannot open /nonexistent.cfg"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest web01]\nbackend = qemu\n", "x.conf"),
                      Catch::Contains("'qemu' is not kvm or xen"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("protecting an xl domain where there is no Xen says so", "[xen]")
{
    if (std::filesystem::exists("/dev/xen/privcmd") || std::filesystem::exists("/proc/xen/privcmd")) {
        WARN("SKIPPED: this host runs Xen");
        return;
    }
    Daemon daemon(parse_daemon_config(base(), "x.conf"), [](const std::string &) {});
    proto::ControlRequest r;
    r.mutable_protect()->set_guest("web01");
    r.mutable_protect()->set_peer("10.0.0.2");
    auto reply = daemon.handle(r);
    CHECK_FALSE(reply.ok());
    CHECK_THAT(reply.error(), Catch::Contains("guest web01 is not one of a's kvm guests, and no Xen domain can be "
                                              "looked up here: cannot open libxenctrl") &&
                                  Catch::Contains("Dom0"));
}

TEST_CASE("a key file that group or others may read is refused, saying how to fix it", "[config]")
{
    const auto path = std::filesystem::temp_directory_path() / ("understudy-open-key-" + std::to_string(getpid()));
    std::ofstream(path) << std::string(64, 'a') << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                           std::filesystem::perms::group_read | std::filesystem::perms::others_read);
    CHECK_THROWS_WITH(parse_daemon_config("[replication]\npsk_file = " + path.string() + "\n", "x.conf"),
                      Catch::Contains("mode 0644") && Catch::Contains("chmod 600"));
    std::filesystem::permissions(path, std::filesystem::perms::owner_read);
    CHECK_NOTHROW(parse_daemon_config("[daemon]\nnode = a\n[replication]\npsk_file = " + path.string() + "\n", "x.conf"));
    std::filesystem::remove(path);
}

TEST_CASE("inline comments end a value; quotes keep ; and #", "[config]")
{
    auto c = parse_daemon_config("[daemon]\nnode = xen-a # xen-b on the other host\nmetrics = 127.0.0.1:9464 ; off if omitted\n"
                                 "[replication] ; the stream\npsk_file = " + key_file().string() +
                                     "\ninterval_ms = 40 # forty\n"
                                     "[heartbeat]\npeer_node = xen-b\npaths = 10.0.0.2\nwitness = 10.0.0.1\n"
                                     "fence_command = \"/bin/true ; logger fenced # really\" ; the comment\n",
                                 "x.conf");
    CHECK(c.node == "xen-a");
    CHECK(c.replication.interval == std::chrono::milliseconds(40));
    REQUIRE(c.metrics);
    CHECK(c.metrics->to_string() == "127.0.0.1:9464");
    REQUIRE(c.failover);
    CHECK(*c.failover->fence_command == "/bin/true ; logger fenced # really");
    // Without whitespace before it, ; is part of the value (a shell command's).
    auto d = parse_daemon_config(base() + "[heartbeat]\npeer_node = b\npaths = 10.0.0.2\nwitness = 10.0.0.1\n"
                                          "fence_command = /bin/true;/bin/true\n",
                                 "x.conf");
    CHECK(*d.failover->fence_command == "/bin/true;/bin/true");
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[heartbeat]\nfence_command = \"/bin/true\n", "x.conf"),
                      Catch::Contains("x.conf:6: the value of 'fence_command' opens a quote it does not close"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[guest web]\nkernel = ; none yet\n", "x.conf"),
                      Catch::Contains("[guest web].kernel: empty value"));
}

TEST_CASE("values that cannot be right are refused at start", "[config]")
{
    CHECK_THROWS_WITH(parse_daemon_config("[daemon]\nnode = xen a\n[replication]\npsk_file = " + key_file().string() +
                                              "\n",
                                          "x.conf"),
                      Catch::Contains("[daemon].node: 'xen a' is not a node name"));
    const std::string hb = "[heartbeat]\npeer_node = b\npaths = 10.0.0.2\nwitness = 10.0.0.1\n";
    CHECK_THROWS_WITH(parse_daemon_config(base() + hb + "fence_command = /usr/local/sbin/no-such-fence --host b\n",
                                          "x.conf"),
                      Catch::Contains("[heartbeat].fence_command: '/usr/local/sbin/no-such-fence' is not an "
                                      "executable file") &&
                          Catch::Contains("every takeover would fail"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + hb + "fence_command = no-such-fence-program b\n", "x.conf"),
                      Catch::Contains("'no-such-fence-program' is not a program on PATH"));
    CHECK_NOTHROW(parse_daemon_config(base() + hb + "fence_command = true\n", "x.conf"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + "[heartbeat]\npeer_node = b c\npaths = 10.0.0.2\n", "x.conf"),
                      Catch::Contains("peer_node: 'b c' is not a node name"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + hb + "after_split_brain = whatever\n", "x.conf"),
                      Catch::Contains("after_split_brain: 'whatever' is neither disconnect"));
    CHECK_THROWS_WITH(parse_daemon_config(base() + hb + "allow_unguarded_takeover = yes\n", "x.conf"),
                      Catch::Contains("allow_unguarded_takeover: a witness or fence_command is configured"));
}
