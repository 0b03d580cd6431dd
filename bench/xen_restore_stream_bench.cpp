// Writing a standby as Xen's restore stream at failover (restore_stream.h),
// through a local socket to a reader that discards it, as libxl reads it.
// Baseline, in the same run: the same guest memory sent raw through the
// same kind of socket. Two memories: all pages with data, and half of them
// zero (sent as XALLOC, without data). Medians of 7 alternating rounds.
// Prints JSON.
// Usage: xen_restore_stream_bench [MIB] [OUTPUT_DIR]
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <sstream>
#include <thread>

#include "bench/bench_output.h"
#include "checkpoint/pfn.h"
#include "checkpoint/unique_fd.h"
#include "checkpoint/xen/restore_stream.h"

using namespace understudy;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRounds = 7; // median of

// Sends through a socketpair while a thread reads and drops; returns the
// seconds `write` took and the bytes that crossed.
std::pair<double, std::uint64_t> through_socket(const std::function<void(int fd)> &write)
{
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
        throw std::runtime_error("socketpair");
    UniqueFd out(ends[0]), in(ends[1]);
    std::uint64_t bytes = 0;
    std::thread reader([&] {
        std::vector<char> buffer(1 << 20);
        for (;;) {
            const auto n = ::read(in.get(), buffer.data(), buffer.size());
            if (n <= 0)
                break;
            bytes += static_cast<std::uint64_t>(n);
        }
    });
    const auto t0 = Clock::now();
    write(out.get());
    ::shutdown(out.get(), SHUT_WR);
    reader.join();
    return {std::chrono::duration<double>(Clock::now() - t0).count(), bytes};
}

void send_all(int fd, std::span<const std::uint8_t> bytes)
{
    while (!bytes.empty()) {
        const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0)
            throw std::runtime_error("send");
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
}

} // namespace

int main(int argc, char **argv)
{
    const std::uint64_t mib = argc > 1 ? std::stoull(argv[1]) : 256;
    const char *dir = argc > 2 ? argv[2] : nullptr;
    const std::uint64_t pages = mib << 8;
    std::vector<std::uint8_t> memory(pages * kPageSize);
    std::mt19937_64 rng(7);
    proto::XenCpuState state;
    state.set_domain_type("hvm");
    state.set_hvm_context(std::string(4096, '\1'));
    state.set_cpuid_policy(std::string(24 * 64, '\2'));

    std::ostringstream json, dat;
    json << "{\"benchmark\":\"xen_restore_stream\",\"guest_mib\":" << mib << ",\"results\":[";
    dat << "# zero_fraction stream_MiB_per_s raw_MiB_per_s\n";
    bool first = true;
    for (const double zero_fraction : {0.0, 0.5}) {
        for (std::uint64_t p = 0; p < pages; ++p) {
            auto *page = memory.data() + p * kPageSize;
            if (std::uniform_real_distribution<>(0, 1)(rng) < zero_fraction) {
                std::memset(page, 0, kPageSize);
            } else {
                for (std::size_t i = 0; i < kPageSize; i += 8) {
                    const auto v = rng();
                    std::memcpy(page + i, &v, 8);
                }
            }
        }
        xen::RestoreSource source;
        source.state = &state;
        source.pages = pages;
        source.page = [&](std::uint64_t pfn) {
            return std::span<const std::uint8_t>(memory.data() + pfn * kPageSize, kPageSize);
        };
        std::vector<double> stream_times, raw_times;
        std::uint64_t stream_bytes = 0, raw_bytes = 0;
        for (int round = 0; round < kRounds; ++round) { // alternating, so that noise hits both alike
            auto [ss, sb] = through_socket(
                [&](int fd) { xen::write_restore_stream(source, [&](auto bytes) { send_all(fd, bytes); }); });
            auto [rs, rb] = through_socket([&](int fd) { send_all(fd, memory); });
            stream_times.push_back(ss);
            raw_times.push_back(rs);
            stream_bytes = sb;
            raw_bytes = rb;
        }
        const double stream_s = bench::percentile(stream_times, 0.5), raw_s = bench::percentile(raw_times, 0.5);
        const double stream_rate = static_cast<double>(mib) / stream_s, raw_rate = static_cast<double>(mib) / raw_s;
        json << (first ? "" : ",") << "{\"zero_fraction\":" << zero_fraction << ",\"stream_s\":" << stream_s
             << ",\"stream_bytes\":" << stream_bytes << ",\"stream_MiB_per_s\":" << stream_rate
             << ",\"raw_s\":" << raw_s << ",\"raw_bytes\":" << raw_bytes << ",\"raw_MiB_per_s\":" << raw_rate
             << ",\"stream_vs_raw\":" << stream_s / raw_s << "}";
        dat << zero_fraction << " " << stream_rate << " " << raw_rate << "\n";
        first = false;
    }
    json << "]}\n";
    bench::emit("xen_restore_stream", json.str(), dat.str(), dir);
}
