// Replication stream throughput: the real Replicator shipping a guest to a
// real BackupServer over 127.0.0.1 (a checkpoint in which the guest changed
// every page, buffers warm, timed from the end of its pause to the backup's
// ack, so the shipping, the backup's checks and its commit; and the cold full
// copy to a new standby, timed from start to protected), next to a plain TCP
// and a plain TLS transfer of the same number of bytes over the same link,
// measured in the same run. Needs no hypervisor (the guest is the MemoryGuest
// test double). The link is whatever 127.0.0.1 is where it runs: bench/run
// also runs it in a network namespace whose loopback is shaped to 1 and 10
// Gbit/s, to stand for a real replication link; `link` names it.
//
// Usage: stream_throughput_bench [MiB] [output-dir] [link]
#include <cctype>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <thread>

#include "bench/bench_output.h"
#include "checkpoint/backup_server.h"
#include "checkpoint/replicator.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/socket_link.h"
#include "checkpoint/stream/tls_link.h"
#include "tests/support/memory_guest.h"

using namespace understudy;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::optional<TlsSettings> tls_or_not(bool tls)
{
    if (!tls)
        return std::nullopt;
    return TlsSettings{std::vector<std::uint8_t>(32, 0x5a), {}, {}, {}, {}};
}

std::unique_ptr<Link> open_link(std::uint16_t port, const std::optional<TlsSettings> &tls, TlsContext *client)
{
    Endpoint to{"127.0.0.1", port};
    auto fd = connect_tcp(to, 5s);
    tune_stream_socket(fd.get(), 10s);
    if (tls)
        return client->handshake(std::move(fd), to.to_string(), 5s);
    return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 10s);
}

// Seconds to move `bytes` from one end of a link to the other, in 1 MiB writes.
double raw_transfer(std::uint64_t bytes, bool tls)
{
    auto settings = tls_or_not(tls);
    TcpListener listener({"127.0.0.1", 0});
    std::unique_ptr<TlsContext> server_tls, client_tls;
    if (settings) {
        server_tls = std::make_unique<TlsContext>(*settings, TlsContext::Role::server);
        client_tls = std::make_unique<TlsContext>(*settings, TlsContext::Role::client);
    }
    std::thread receiver([&] {
        std::string peer;
        UniqueFd fd;
        while (!fd)
            fd = listener.accept(1s, &peer);
        tune_stream_socket(fd.get(), 10s);
        std::unique_ptr<Link> link = server_tls ? std::unique_ptr<Link>(server_tls->handshake(std::move(fd), peer, 5s))
                                                : std::make_unique<SocketLink>(std::move(fd), peer, 10s);
        std::vector<std::uint8_t> buf(1 << 20);
        for (std::uint64_t got = 0; got < bytes;) {
            auto n = std::min<std::uint64_t>(buf.size(), bytes - got);
            link->read({buf.data(), n}, 10s);
            got += n;
        }
        std::uint8_t done = 1;
        link->write({&done, 1});
    });
    auto link = open_link(listener.port(), settings, client_tls.get());
    std::vector<std::uint8_t> chunk(1 << 20, 0xa5);
    const auto t0 = Clock::now();
    for (std::uint64_t sent = 0; sent < bytes;) {
        auto n = std::min<std::uint64_t>(chunk.size(), bytes - sent);
        link->write({chunk.data(), n});
        sent += n;
    }
    std::uint8_t done;
    link->read({&done, 1}, 10s);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    receiver.join();
    return seconds;
}

struct StreamRun {
    double cold_seconds; // the full copy to a new standby, until protected
    std::uint64_t cold_bytes;
    double warm_seconds; // a checkpoint carrying every page, buffers warm
    std::uint64_t warm_bytes;
};

// Dirties every page of the guest (as the guest would).
void touch_all(testing::MemoryGuest &guest, std::uint8_t value)
{
    for (std::uint64_t p = 1; p < guest.memory_size() / kPageSize; ++p)
        guest.write(p * kPageSize + 64, {&value, 1});
}

// The Replicator's full copy of `guest` until the backup committed the first
// checkpoint; then checkpoints in which the guest changed every page.
StreamRun stream_transfer(testing::MemoryGuest &guest, bool tls)
{
    auto settings = tls_or_not(tls);
    StandbyRegistry registry;
    BackupSettings backup;
    backup.listen = {"127.0.0.1", 0};
    backup.tls = settings;
    BackupServer server(
        backup, registry,
        [](const proto::Hello &hello, std::string *) -> std::unique_ptr<StandbyGuest> {
            return std::make_unique<StandbyImage>(hello.guest_id(), hello.memory_size(), 0, "");
        },
        nullptr);
    server.start();
    std::shared_ptr<TlsContext> client;
    if (settings)
        client = std::make_shared<TlsContext>(*settings, TlsContext::Role::client);
    ReplicationSettings rs;
    rs.interval = 3600s;   // only the first checkpoint and those asked for
    rs.precopy_rounds = 0; // one full copy, then the first checkpoint
    const auto port = server.port();
    Replicator replicator(
        guest, [port, settings, client] { return open_link(port, settings, client.get()); }, rs, nullptr);
    StreamRun run{};
    const auto t0 = Clock::now();
    replicator.start();
    if (!replicator.wait_protected(120s))
        throw std::runtime_error("stream_throughput_bench: not protected within 120 s");
    run.cold_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    run.cold_bytes = replicator.status().bytes_sent;
    for (int i = 0; i < 3; ++i) { // the last one with every buffer warm
        touch_all(guest, static_cast<std::uint8_t>(i));
        const auto before = replicator.status().bytes_sent;
        const auto t1 = Clock::now();
        replicator.checkpoint_now(120s);
        const auto s = replicator.status();
        run.warm_seconds = std::chrono::duration<double>(Clock::now() - t1).count() -
                           static_cast<double>(s.pause_last_us) / 1e6;
        run.warm_bytes = s.bytes_sent - before;
    }
    replicator.stop("benchmark over");
    server.stop();
    return run;
}

} // namespace

int main(int argc, char **argv)
{
    const std::uint64_t mib = argc > 1 ? std::max(16, std::atoi(argv[1])) : 256;
    const char *dir = argc > 2 ? argv[2] : nullptr;
    const std::string link = argc > 3 ? argv[3] : "loopback";
    for (char c : link)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
            std::cerr << "stream_throughput_bench: link name '" << link << "' may hold only letters, digits, - and _\n";
            return 2;
        }
    testing::MemoryGuest guest("bench", mib << 20, 0);
    std::ostringstream json, dat;
    json.precision(1);
    json << std::fixed << "{\n  \"benchmark\": \"stream_throughput\",\n  \"link\": \"" << link << "\",\n  \"guest_mib\": "
         << mib << ",\n  \"results\": [\n";
    dat << "# mode stream_MiB_s raw_MiB_s\n";
    bool first = true;
    for (bool tls : {false, true}) {
        std::vector<double> cold, warm, raw;
        std::uint64_t bytes = 0;
        for (int run = 0; run < 3; ++run) {
            auto s = stream_transfer(guest, tls);
            bytes = s.warm_bytes;
            cold.push_back(static_cast<double>(s.cold_bytes) / (1 << 20) / s.cold_seconds);
            warm.push_back(static_cast<double>(s.warm_bytes) / (1 << 20) / s.warm_seconds);
            raw.push_back(static_cast<double>(s.warm_bytes) / (1 << 20) / raw_transfer(s.warm_bytes, tls));
        }
        const double c = bench::percentile(cold, 0.5), w = bench::percentile(warm, 0.5),
                     r = bench::percentile(raw, 0.5);
        json << (first ? "" : ",\n") << "    {\"mode\": \"" << (tls ? "tls" : "tcp") << "\", \"bytes\": " << bytes
             << ", \"full_sync_mib_s_p50\": " << c << ", \"checkpoint_all_pages_mib_s_p50\": " << w
             << ", \"raw_" << (tls ? "tls" : "tcp") << "_mib_s_p50\": " << r << ", \"stream_vs_raw\": "
             << std::setprecision(3) << (r > 0 ? w / r : 0) << std::setprecision(1) << ", \"target\": 0.8}";
        dat << '"' << (tls ? "TLS" : "TCP") << ' ' << link << "\" " << w << ' ' << r << '\n';
        first = false;
    }
    json << "\n  ]\n}\n";
    bench::emit(link == "loopback" ? "stream_throughput" : "stream_throughput_" + link, json.str(), dat.str(), dir);
    return 0;
}
