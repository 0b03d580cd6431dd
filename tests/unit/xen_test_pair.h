// What the Xen backend's tests share (TEST support, not a double): a
// primary and a backup in one process around the libxenctrl test double,
// and Xen's own stream checker.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/stream/tcp.h"
#include "checkpoint/xen/xen_guest.h"
#include "checkpoint/xen/xen_standby.h"
#include "tests/support/log_lines.h"
#include "tests/support/xen_double/xen_double.h"

namespace understudy::xen::testing {

using namespace std::chrono_literals;
namespace xd = understudy::testing::xen_double;
using understudy::testing::LogLines;

inline XlConfig web_config(std::uint64_t memory_mib, const std::string &type = "hvm")
{
    XlConfig c;
    c.name = "web01";
    c.type = type;
    c.memory_mib = memory_mib;
    c.vcpus = 1;
    c.nics.push_back({"00:16:3e:00:00:01", "xenbr0", "", "", ""});
    return c;
}

// A primary (the double's domain, protected by a Replicator) and a backup
// (a BackupServer whose standbys are XenStandby) in one process.
struct Pair {
    LogLines log;
    StandbyRegistry registry;
    std::unique_ptr<BackupServer> server;
    std::shared_ptr<XenSession> xen;
    std::uint64_t standby_memory_mib;

    std::string type;
    // Xen's lib and run directories: where libxl (the double) has QEMU save
    // its state, and where QEMU's QMP sockets (the double's) are.
    std::filesystem::path xen_dir =
        std::filesystem::temp_directory_path() / ("understudy-xen-lib-" + std::to_string(getpid()));

    explicit Pair(std::uint64_t standby_mib = 16, std::string domain_type = "hvm")
        : standby_memory_mib(standby_mib), type(std::move(domain_type))
    {
        xd::reset();
        std::filesystem::create_directories(xen_dir);
        xd::set_xen_dirs(xen_dir.string(), xen_dir.string());
        xen = XenSession::open(std::ref(log));
        xen->set_dirs({xen_dir.string(), xen_dir.string()});
        BackupSettings backup;
        backup.listen = {"127.0.0.1", 0};
        server = std::make_unique<BackupServer>(
            backup, registry,
            [this](const proto::Hello &hello, std::string *) -> std::unique_ptr<StandbyGuest> {
                return std::make_unique<XenStandby>(
                    web_config(standby_memory_mib, type), hello.memory_size(), [this] { return xen; }, nullptr);
            },
            std::ref(log));
        server->start();
    }
    ~Pair()
    {
        server->stop();
        xd::reset();
        std::filesystem::remove_all(xen_dir);
    }
    Replicator::Connect connect()
    {
        auto port = server->port();
        return [port]() -> std::unique_ptr<Link> {
            Endpoint to{"127.0.0.1", port};
            auto fd = connect_tcp(to, 2s);
            tune_stream_socket(fd.get(), 2s);
            return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 2s);
        };
    }
    ReplicationSettings settings()
    {
        ReplicationSettings s;
        s.interval = 10ms;
        s.backend = "xen";
        return s;
    }
};

// Waits until the replicator has given up on the guest.
inline std::string wait_for_error(Replicator &replicator)
{
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
        auto status = replicator.status();
        if (!status.last_error.empty())
            return status.last_error;
        std::this_thread::sleep_for(5ms);
    }
    return "";
}

// Where Xen's own stream checker is (Debian's xen-utils-4.17, unpacked by
// scripts/setup); "" if it is not there.
inline std::string xen_stream_verifier()
{
    const char *dir = std::getenv("UNDERSTUDY_XEN_TOOLS");
    const std::string root = dir ? dir : "/opt/understudy/xen-utils-4.17";
    const auto script = root + "/usr/lib/xen-4.17/bin/verify-stream-v2";
    return std::filesystem::exists(script) ? script : "";
}

// Runs Xen's verify-stream-v2 on a libxl stream; checks it accepts it and
// mentions `expect`. Says SKIPPED where the checker is not unpacked.
inline void check_with_xen_verifier(const std::vector<std::uint8_t> &stream, const std::string &expect)
{
    const auto verifier = xen_stream_verifier();
    if (verifier.empty()) {
        WARN("SKIPPED: Xen's verify-stream-v2 is not unpacked here (scripts/setup does it); the stream was read "
             "only by the test double");
        return;
    }
    const auto file = std::filesystem::temp_directory_path() / ("understudy-stream-" + std::to_string(getpid()));
    REQUIRE(!stream.empty());
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char *>(stream.data()), static_cast<std::streamsize>(stream.size()));
    const auto root = std::filesystem::path(verifier).parent_path().parent_path();
    const auto command = "PYTHONPATH=" + (root / "lib/python").string() + " python3 " + verifier + " -v -f libxl -i " +
                         file.string() + " > " + file.string() + ".out 2>&1";
    const int rc = std::system(command.c_str());
    std::ifstream report(file.string() + ".out");
    const std::string said((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
    std::filesystem::remove(file);
    std::filesystem::remove(file.string() + ".out");
    INFO("verify-stream-v2 said:\n" << said);
    CHECK(rc == 0);
    CHECK(said.find("Libxl Header: little endian") != std::string::npos);
    CHECK(said.find(expect) != std::string::npos);
}

// The backup builds the domain from its standby: the activated guest and
// the new domain's domid.
inline std::pair<std::unique_ptr<Guest>, std::uint32_t> activate_standby(Pair &pair)
{
    auto standby = pair.registry.take("web01");
    REQUIRE(standby);
    auto guest = standby->activate();
    const auto domid = xd::domid_of("web01");
    REQUIRE(domid != 0);
    return {std::move(guest), domid};
}

} // namespace understudy::xen::testing
