// What a checkpoint costs on the kvm backend, with the real Replicator
// shipping to a real BackupServer over loopback:
//  - pause time per checkpoint for K = 256 ... 16384 dirty pages, next to the
//    harvest of the dirty log plus a memcpy of K pages, measured in the same
//    run on the same guest (the target: pause <= 200 us + 1.5 x that);
//  - bytes on the wire per checkpoint with and without compression while the
//    demo guest's workload dirties pages;
//  - checkpoints per second sustained at a 25 ms interval with the workload
//    dirtying about 1024 pages per epoch.
// Needs root and /dev/kvm (exit 77 if not).
//
// Usage: checkpoint_bench [rounds] [output-dir]
#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "bench/bench_output.h"
#include "checkpoint/backup_server.h"
#include "checkpoint/kvm/kvm_guest.h"
#include "checkpoint/replicator.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/socket_link.h"
#include "dom0d/cli/net_args.h"
#include "tests/support/bench_guest.h"
#include "tests/support/kvm_requirements.h"
#include "tests/support/test_network.h"

using namespace understudy;
using namespace understudy::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double micros(Clock::duration d)
{
    return std::chrono::duration<double, std::micro>(d).count();
}

struct Pair {
    StandbyRegistry registry;
    BackupServer server;
    Replicator replicator;

    Pair(Guest &guest, ReplicationSettings settings)
        : server(
              [] {
                  BackupSettings b;
                  b.listen = {"127.0.0.1", 0};
                  return b;
              }(),
              registry,
              [](const proto::Hello &hello, std::string *) -> std::unique_ptr<StandbyGuest> {
                  return std::make_unique<StandbyImage>(hello.guest_id(), hello.memory_size(), 0, "");
              },
              nullptr),
          replicator(
              guest,
              [port = server.port()]() -> std::unique_ptr<Link> {
                  Endpoint to{"127.0.0.1", port};
                  auto fd = connect_tcp(to, 5s);
                  tune_stream_socket(fd.get(), 10s);
                  return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 10s);
              },
              settings, nullptr)
    {
        server.start();
        replicator.start();
        if (!replicator.wait_protected(300s))
            throw std::runtime_error("checkpoint_bench: the guest was not protected within 300 s");
    }
    ~Pair()
    {
        replicator.stop("benchmark over");
        server.stop();
    }
};

} // namespace

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? std::max(3, std::atoi(argv[1])) : 15;
    const char *dir = argc > 2 ? argv[2] : nullptr;
    if (auto missing = missing_kvm_requirements(); !missing.empty()) {
        std::cerr << "SKIPPED: checkpoint_bench needs a usable KVM host: " << missing << "\n";
        return kSkipExitStatus;
    }
    TestNetwork net("ckpt");
    auto config = bench_guest_config(net, UNDERSTUDY_DEMO_GUEST);
    auto guest = kvm::KvmGuest::boot(config);
    auto udp = net.guest_udp_socket();
    auto ask = [&](const std::string &request) {
        if (!udp_request(udp.get(), request, 5000ms, 20))
            throw std::runtime_error("checkpoint_bench: no reply to '" + request + "'");
    };
    ask("get");

    const std::vector<std::uint64_t> ks = {256, 1024, 4096, 16384};
    struct Row {
        std::vector<double> harvest, memcpy_k, pause;
        std::uint64_t pages_min = ~0ull;
    };
    std::vector<Row> rows(ks.size());

    // Baseline, before protection: harvest the log and memcpy K pages.
    guest->enable_dirty_log();
    DirtyBitmap bitmap(guest->memory().pages());
    std::vector<std::uint8_t> src(16384 * kPageSize, 1), dst(16384 * kPageSize, 2);
    for (std::size_t i = 0; i < ks.size(); ++i) {
        for (int r = 0; r < rounds; ++r) {
            guest->harvest_dirty(bitmap);
            bitmap.clear();
            ask("dirty 0 " + std::to_string(ks[i]));
            guest->pause();
            auto t0 = Clock::now();
            guest->harvest_dirty(bitmap);
            auto t1 = Clock::now();
            guest->resume();
            bitmap.clear();
            auto t2 = Clock::now();
            std::memcpy(dst.data(), src.data(), ks[i] * kPageSize);
            auto t3 = Clock::now();
            rows[i].harvest.push_back(micros(t1 - t0));
            rows[i].memcpy_k.push_back(micros(t3 - t2));
        }
    }

    // The real thing: on-demand checkpoints after the guest dirtied K pages.
    {
        ReplicationSettings settings;
        settings.interval = 3600s; // only the checkpoints asked for below
        Pair pair(*guest, settings);
        for (std::size_t i = 0; i < ks.size(); ++i) {
            for (int r = 0; r < rounds; ++r) {
                pair.replicator.checkpoint_now(30s); // start from a clean log
                ask("dirty 0 " + std::to_string(ks[i]));
                pair.replicator.checkpoint_now(30s);
                auto s = pair.replicator.status();
                rows[i].pause.push_back(static_cast<double>(s.pause_last_us));
                rows[i].pages_min = std::min(rows[i].pages_min, s.dirty_pages_last);
            }
        }
    }

    // Bytes on the wire per checkpoint for the demo guest's workload.
    struct Wire {
        std::string codec;
        double bytes_per_checkpoint, page_bytes_per_checkpoint, ratio;
    };
    std::vector<Wire> wire;
    ask("rate 4000");
    for (const char *codec : {"none", "lz4", "zstd", "xor+lz4", "xor+zstd"}) {
        ReplicationSettings settings;
        settings.codec = parse_compression(codec);
        Pair pair(*guest, settings);
        auto a = pair.replicator.status();
        std::this_thread::sleep_for(3s);
        auto b = pair.replicator.status();
        const double n = static_cast<double>(std::max<std::uint64_t>(1, b.checkpoints - a.checkpoints));
        wire.push_back({codec, static_cast<double>(b.bytes_sent - a.bytes_sent) / n,
                        static_cast<double>(b.page_bytes - a.page_bytes) / n,
                        b.payload_bytes > a.payload_bytes
                            ? static_cast<double>(b.page_bytes - a.page_bytes) /
                                  static_cast<double>(b.payload_bytes - a.payload_bytes)
                            : 1.0});
    }

    // Sustained rate: 25 ms interval, about 1024 dirty pages per epoch.
    ask("rate 40960");
    double per_second = 0, dirty_avg = 0;
    std::uint64_t waits = 0;
    {
        ReplicationSettings settings;
        Pair pair(*guest, settings);
        auto a = pair.replicator.status();
        const auto t0 = Clock::now();
        std::this_thread::sleep_for(5s);
        auto b = pair.replicator.status();
        per_second = static_cast<double>(b.checkpoints - a.checkpoints) /
                     std::chrono::duration<double>(Clock::now() - t0).count();
        dirty_avg = b.dirty_pages_avg;
        waits = b.sender_waits - a.sender_waits;
    }
    ask("rate 0");

    std::ostringstream json, dat;
    json.precision(1);
    const char *host = std::getenv("UNDERSTUDY_BENCH_HOST"); // bench/run: "nested-qemu-tcg" when nested
    json << std::fixed << "{\n  \"benchmark\": \"checkpoint\",\n  \"backend\": \"kvm\",\n  \"host\": \""
         << (host ? host : "kvm") << "\",\n  \"guest_mib\": 128,\n"
         << "  \"rounds\": " << rounds << ",\n  \"pause\": [\n";
    dat << "# dirty_pages pause_p50_us pause_p99_us harvest_plus_memcpy_us target_us\n";
    for (std::size_t i = 0; i < ks.size(); ++i) {
        const double baseline = bench::percentile(rows[i].harvest, 0.5) + bench::percentile(rows[i].memcpy_k, 0.5);
        const double target = 200 + 1.5 * baseline;
        const double p50 = bench::percentile(rows[i].pause, 0.5), p99 = bench::percentile(rows[i].pause, 0.99);
        json << "    {\"dirty_pages\": " << ks[i] << ", \"pages_in_checkpoint_min\": " << rows[i].pages_min
             << ", \"pause_us_p50\": " << p50 << ", \"pause_us_p99\": " << p99
             << ", \"harvest_us_p50\": " << bench::percentile(rows[i].harvest, 0.5)
             << ", \"memcpy_us_p50\": " << bench::percentile(rows[i].memcpy_k, 0.5)
             << ", \"target_us\": " << target << ", \"meets_target\": " << (p50 <= target ? "true" : "false") << "}"
             << (i + 1 < ks.size() ? "," : "") << "\n";
        dat << ks[i] << ' ' << p50 << ' ' << p99 << ' ' << baseline << ' ' << target << '\n';
    }
    json << "  ],\n  \"wire_bytes_per_checkpoint\": [\n";
    for (std::size_t i = 0; i < wire.size(); ++i)
        json << "    {\"compression\": \"" << wire[i].codec << "\", \"bytes\": " << wire[i].bytes_per_checkpoint
             << ", \"page_bytes\": " << wire[i].page_bytes_per_checkpoint << ", \"ratio\": " << wire[i].ratio << "}"
             << (i + 1 < wire.size() ? "," : "") << "\n";
    json << "  ],\n  \"sustained\": {\"interval_ms\": 25, \"dirty_pages_per_checkpoint_avg\": " << dirty_avg
         << ", \"checkpoints_per_s\": " << per_second << ", \"target_per_s\": 40, \"sender_waits\": " << waits
         << "}\n}\n";
    bench::emit("checkpoint", json.str(), dat.str(), dir);
    return 0;
}
