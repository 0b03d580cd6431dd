// The Xen backend's page copy at a pause, against the libxenctrl TEST DOUBLE
// (its "foreign mappings" are mmaps of a memfd, not privcmd: the numbers show
// what keeping the mapping across epochs saves in mmap/munmap and page-table
// work, not what Xen costs). For each dirty-page count it copies the same
// random pages three ways and prints JSON:
//   memcpy      the baseline: the same pages from an already mapped region
//   kept        XenGuest::read_pages through its one mapping of all memory
//   per_batch   XenGuest::read_pages mapping 1024 pages per batch each time
//   pv          XenGuest::read_pages of a 64-bit PV domain of the same size
//               through its kept mapping: the same copy, plus the page types
//               (XEN_DOMCTL_getpageframeinfo3 per 1024 pages, answered by the
//               double) and the normalisation of the page tables among them
// Usage: xen_page_copy_bench [OUTPUT_DIR]
#include <chrono>
#include <cstring>
#include <random>
#include <sstream>

#include "bench/bench_output.h"
#include "checkpoint/xen/xen_guest.h"
#include "tests/support/xen_double/xen_double.h"

using namespace understudy;
namespace xd = understudy::testing::xen_double;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kPages = 16384; // 64 MiB
constexpr int kRounds = 30;

double median_us(const std::function<void()> &copy)
{
    std::vector<double> us;
    for (int r = 0; r < kRounds; ++r) {
        const auto t0 = Clock::now();
        copy();
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return bench::percentile(us, 0.5);
}

} // namespace

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : nullptr;
    xd::DomainSpec spec;
    spec.name = "bench";
    spec.pages = kPages;
    const auto domid = xd::create_domain(spec);
    auto xen = xen::XenSession::open(nullptr);
    xen::XenGuest kept(xen, domid);
    kept.enable_dirty_log();
    xd::limit_map_pages(1024);
    xen::XenGuest batched(xen, domid);
    batched.enable_dirty_log(); // log-dirty is on already: this one maps per batch
    xd::limit_map_pages(0);
    const auto memory = xd::memory(domid); // the baseline's source, already mapped
    spec.name = "bench-pv";
    spec.type = "pv";
    const auto pv_domid = xd::create_domain(spec);
    xen::XenGuest pv(xen, pv_domid, xen::CheckpointWay::suspend);
    pv.enable_dirty_log();

    std::ostringstream json, dat;
    json << "{\"benchmark\":\"xen_page_copy\",\"double\":\"foreign mappings are mmaps of a memfd (test double)\","
         << "\"guest_pages\":" << kPages << ",\"results\":[";
    std::mt19937_64 rng(42);
    bool first = true;
    for (std::size_t dirty : {64u, 256u, 1024u, 4096u}) {
        std::vector<Pfn> pfns;
        for (std::size_t i = 0; i < dirty; ++i)
            pfns.push_back(Pfn{rng() % kPages});
        std::sort(pfns.begin(), pfns.end());
        std::vector<std::uint8_t> staging(dirty * kPageSize);
        const double base = median_us([&] {
            for (std::size_t i = 0; i < pfns.size(); ++i)
                std::memcpy(staging.data() + i * kPageSize, memory.data() + pfns[i].address(), kPageSize);
        });
        const double kept_us = median_us([&] { kept.read_pages(pfns, staging); });
        const double batch_us = median_us([&] { batched.read_pages(pfns, staging); });
        const double pv_us = median_us([&] { pv.read_pages(pfns, staging); });
        json << (first ? "" : ",") << "{\"dirty_pages\":" << dirty << ",\"memcpy_us\":" << base
             << ",\"kept_mapping_us\":" << kept_us << ",\"per_batch_mapping_us\":" << batch_us
             << ",\"pv_kept_mapping_us\":" << pv_us << ",\"kept_vs_memcpy\":" << kept_us / base
             << ",\"per_batch_vs_memcpy\":" << batch_us / base << ",\"pv_vs_memcpy\":" << pv_us / base << "}";
        dat << dirty << " " << base << " " << kept_us << " " << batch_us << " " << pv_us << "\n";
        first = false;
    }
    json << "]}\n";
    bench::emit("xen_page_copy", json.str(), dat.str(), dir);
    xd::reset();
    return 0;
}
