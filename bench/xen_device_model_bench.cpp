// What an HVM domain's device model adds to a checkpoint's pause with
// `checkpoint = pause`: XenGuest::pause, save_devices and resume of a domain
// of the libxenctrl TEST DOUBLE whose device model is Debian's real Xen QEMU
// (qemu-system-xen under QEMU's qtest accelerator, as in the tests): QEMU's
// `stop`, `add-fd`, `xen-save-devices-state` and `remove-fd` over one
// monitor connection, `cont` over a second.
// Measured in the same run, as baselines:
//   pvh          the same three calls on a PVH domain of the double (no
//                device model): the pause without QEMU
//   round_trips  five bare commands (query-status) on one open QMP
//                connection to the same QEMU: the least five commands cost
// Prints JSON. Usage: xen_device_model_bench [OUTPUT_DIR]; exit 77 where the
// device model is not installed.
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "bench/bench_output.h"
#include "checkpoint/xen/qmp_client.h"
#include "checkpoint/xen/xen_guest.h"
#include "tests/support/xen_double/xen_double.h"

using namespace understudy;
namespace xd = understudy::testing::xen_double;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRounds = 100;

std::vector<double> times_us(const std::function<void()> &work)
{
    std::vector<double> us;
    for (int r = 0; r < kRounds; ++r) {
        const auto t0 = Clock::now();
        work();
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return us;
}

std::string summary(const std::vector<double> &us)
{
    std::ostringstream out;
    out << "{\"median_us\":" << bench::percentile(us, 0.5) << ",\"p90_us\":" << bench::percentile(us, 0.9) << "}";
    return out.str();
}

} // namespace

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : nullptr;
    const auto binary = xd::real_device_model_binary();
    if (binary.empty()) {
        std::cerr << "SKIPPED: xen_device_model_bench needs Debian's Xen device model (package qemu-system-xen)\n";
        return 77;
    }
    const auto xen_dir = std::filesystem::temp_directory_path() / ("understudy-dm-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(xen_dir);
    xd::set_xen_dirs(xen_dir.string(), xen_dir.string());
    xd::use_real_device_model(binary);
    xd::DomainSpec spec;
    spec.name = "bench-hvm";
    const auto hvm_domid = xd::create_domain(spec);
    spec.name = "bench-pvh";
    spec.type = "pvh";
    const auto pvh_domid = xd::create_domain(spec);
    auto xen = xen::XenSession::open(nullptr);
    xen->set_dirs({xen_dir.string(), xen_dir.string()});
    xen::XenGuest hvm(xen, hvm_domid);
    xen::XenGuest pvh(xen, pvh_domid);
    auto checkpoint = [](xen::XenGuest &guest) {
        return [&guest] {
            guest.pause();
            (void)guest.save_devices();
            guest.resume();
        };
    };
    std::vector<double> hvm_us, pvh_us, trips_us;
    {
        xen::QmpMonitor monitor(xd::real_device_model(hvm_domid)->qmp_socket(), std::chrono::seconds(5));
        trips_us = times_us([&] {
            for (int i = 0; i < 5; ++i)
                monitor.execute("query-status");
        });
    } // closed: QEMU serves one client at a time
    hvm_us = times_us(checkpoint(hvm));
    pvh_us = times_us(checkpoint(pvh));
    const double added = bench::percentile(hvm_us, 0.5) - bench::percentile(pvh_us, 0.5);
    std::ostringstream json, dat;
    json << "{\"benchmark\":\"xen_device_model\",\"device_model\":\"" << binary
         << " (qtest accelerator: no Xen here)\",\"double\":\"domains of the libxenctrl test double\",\"rounds\":"
         << kRounds << ",\"hvm_pause_save_resume\":" << summary(hvm_us)
         << ",\"pvh_pause_save_resume\":" << summary(pvh_us) << ",\"five_qmp_round_trips\":" << summary(trips_us)
         << ",\"device_model_adds_us\":" << added
         << ",\"added_vs_five_round_trips\":" << added / bench::percentile(trips_us, 0.5) << "}\n";
    dat << bench::percentile(hvm_us, 0.5) << " " << bench::percentile(pvh_us, 0.5) << " "
        << bench::percentile(trips_us, 0.5) << "\n";
    bench::emit("xen_device_model", json.str(), dat.str(), dir);
    xd::reset();
    std::filesystem::remove_all(xen_dir);
    return 0;
}
