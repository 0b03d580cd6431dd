// How long does it take, with the guest paused, to harvest the dirty log and
// copy K dirty pages out of a running demo guest? Printed next to a plain
// memcpy of the same number of pages, measured in the same run.
//
// Prints one JSON object on stdout. Needs root and /dev/kvm (exit 77 if not).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <sstream>
#include <vector>

#include "checkpoint/kvm/kvm_guest.h"
#include "dom0d/cli/net_args.h"
#include "tests/support/bench_guest.h"
#include "tests/support/kvm_requirements.h"
#include "tests/support/test_network.h"

using namespace understudy;
using namespace understudy::testing;
using Clock = std::chrono::steady_clock;

namespace {

double micros(Clock::duration d)
{
    return std::chrono::duration<double, std::micro>(d).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double percentile(std::vector<double> v, double p)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Row {
    std::uint64_t dirty_pages;
    std::uint64_t pages_found_min;
    std::vector<double> pause_call, harvest, copy, memcpy_baseline;
};

} // namespace

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
    if (auto missing = missing_kvm_requirements(); !missing.empty()) {
        std::cerr << "SKIPPED: dirty_harvest_bench needs a usable KVM host: " << missing << "\n";
        return kSkipExitStatus;
    }
    TestNetwork net("bench");
    auto config = bench_guest_config(net, UNDERSTUDY_DEMO_GUEST);
    auto guest = kvm::KvmGuest::boot(config);
    auto udp = net.guest_udp_socket();
    if (!udp_request(udp.get(), "get", std::chrono::milliseconds(2000), 20)) {
        std::cerr << "dirty_harvest_bench: the guest does not answer\n";
        return 1;
    }
    guest->enable_dirty_log();

    const std::uint64_t pages = guest->memory().pages();
    DirtyBitmap bitmap(pages);
    std::vector<Pfn> pfns;
    std::vector<std::uint8_t> staging(16384 * kPageSize), source(16384 * kPageSize);
    std::memset(staging.data(), 1, staging.size()); // fault both in before timing
    std::memset(source.data(), 2, source.size());

    std::vector<Row> rows;
    for (std::uint64_t k : {256ull, 1024ull, 4096ull, 16384ull}) {
        Row row{k, ~0ull, {}, {}, {}, {}};
        for (int r = 0; r < rounds; ++r) {
            bitmap.clear();
            guest->harvest_dirty(bitmap); // start the round from a clean log
            bitmap.clear();
            if (!udp_request(udp.get(), "dirty 0 " + std::to_string(k), std::chrono::milliseconds(5000), 1)) {
                std::cerr << "dirty_harvest_bench: no reply to the dirty request (k=" << k << ")\n";
                return 1;
            }
            auto t0 = Clock::now();
            guest->pause();
            auto t1 = Clock::now();
            guest->harvest_dirty(bitmap);
            auto t2 = Clock::now();
            pfns.clear();
            bitmap.for_each_run([&](Pfn first, std::uint64_t n) {
                for (std::uint64_t i = 0; i < n && pfns.size() < 16384; ++i)
                    pfns.push_back(Pfn{first.value + i});
            });
            guest->read_pages(pfns, staging);
            auto t3 = Clock::now();
            guest->resume();

            auto t4 = Clock::now();
            std::memcpy(staging.data(), source.data(), pfns.size() * kPageSize);
            auto t5 = Clock::now();

            row.pages_found_min = std::min<std::uint64_t>(row.pages_found_min, bitmap.count());
            row.pause_call.push_back(micros(t1 - t0));
            row.harvest.push_back(micros(t2 - t1));
            row.copy.push_back(micros(t3 - t2));
            row.memcpy_baseline.push_back(micros(t5 - t4));
        }
        rows.push_back(std::move(row));
    }

    std::ostringstream out;
    out.precision(1);
    out << std::fixed << "{\n  \"benchmark\": \"dirty_harvest\",\n  \"backend\": \"kvm\",\n  \"guest_mib\": "
        << (config.memory_bytes >> 20) << ",\n  \"rounds\": " << rounds << ",\n  \"results\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto &r = rows[i];
        out << "    {\"dirty_pages\": " << r.dirty_pages << ", \"pages_found_min\": " << r.pages_found_min
            << ", \"pause_call_us_p50\": " << median(r.pause_call) << ", \"harvest_us_p50\": " << median(r.harvest)
            << ", \"harvest_us_p90\": " << percentile(r.harvest, 0.9) << ", \"copy_us_p50\": " << median(r.copy)
            << ", \"copy_us_p90\": " << percentile(r.copy, 0.9)
            << ", \"memcpy_baseline_us_p50\": " << median(r.memcpy_baseline) << ", \"copy_vs_memcpy\": "
            << (median(r.memcpy_baseline) > 0 ? median(r.copy) / median(r.memcpy_baseline) : 0) << "}"
            << (i + 1 < rows.size() ? "," : "") << "\n";
    }
    out << "  ]\n}\n";
    std::cout << out.str();
    bool ok = std::all_of(rows.begin(), rows.end(), [](const Row &r) { return r.pages_found_min >= r.dirty_pages; });
    if (!ok)
        std::cerr << "dirty_harvest_bench: a harvest found fewer pages than the guest dirtied\n";
    return ok ? 0 : 1;
}
