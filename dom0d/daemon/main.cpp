// understudyd: the per-host daemon (ARCHITECTURE.md §8). Runs the guests this
// host is primary for and replicates them, holds standby copies for its
// peers, answers the control socket and serves Prometheus metrics.
#include <signal.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>

#include "dom0d/daemon/config_dump.h"
#include "dom0d/daemon/control_socket.h"
#include "dom0d/daemon/daemon.h"
#include "dom0d/daemon/metrics_server.h"
#include "dom0d/daemon/prometheus_text.h"

namespace po = boost::program_options;
using namespace understudy::daemon;

namespace {

std::mutex log_mutex;

void log_line(const std::string &node, const std::string &line)
{
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    std::lock_guard lock(log_mutex);
    std::cerr << stamp << '.' << std::setw(3) << std::setfill('0') << ms << "Z understudyd[" << node << "]: " << line
              << std::endl;
}

} // namespace

int main(int argc, char **argv)
{
    po::options_description options("Options");
    // clang-format off
    options.add_options()
        ("help,h", "show this help and exit")
        ("config,c", po::value<std::string>()->default_value("/etc/understudy/understudyd.conf"), "configuration file")
        ("check", "only check the configuration file, print what each setting means (defaults included), then exit");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, options), vm);
        po::notify(vm);
    } catch (const std::exception &e) {
        std::cerr << "understudyd: " << e.what() << "\n(see understudyd --help)\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << "Usage: understudyd [--config FILE] [--check]\n\n"
                  << "The understudy daemon: runs the guests configured with autostart, replicates a guest to\n"
                  << "its backup after `understudy protect`, holds standby copies for peers that replicate\n"
                  << "to this host, and answers `understudy` on its control socket. Logs go to stderr\n"
                  << "(journald under systemd). See docs/protect.md.\n\n"
                  << options << "\nExit status: 0 after SIGINT/SIGTERM; 2 for a bad configuration or a failure\n"
                  << "to start.\n";
        return 0;
    }
    DaemonConfig config;
    try {
        config = load_daemon_config(vm["config"].as<std::string>());
    } catch (const std::exception &e) {
        std::cerr << "understudyd: " << e.what() << "\n";
        return 2;
    }
    if (vm.count("check")) {
        std::cout << "understudyd: " << config.source.string() << " is valid (" << config.guests.size()
                  << " guests); it means:\n"
                  << describe_config(config);
        return 0;
    }

    // Signals are taken by the main loop (sigtimedwait), never by their
    // default action: a stray SIGHUP or SIGUSR1 must not kill the daemon and
    // with it every kvm guest. Blocked before any thread starts, so no
    // thread gets them either. A closed socket is an error, not SIGPIPE.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2})
        sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const std::string node = config.node;
    auto log = [node](const std::string &line) { log_line(node, line); };
    if (config.lock_memory) {
        // As Corosync does: no page of the daemon (its heartbeat threads,
        // the guests it runs) waits on swap. ONFAULT: reserved but untouched
        // memory is not forced in.
        if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
            log("memory locked (mlockall): nothing of understudyd is paged out");
        else
            log(std::string("WARNING: cannot lock memory (mlockall: ") + std::strerror(errno) +
                "); under memory pressure heartbeats may be delayed by paging");
    }
    Daemon daemon(config, log);
    std::unique_ptr<ControlServer> control;
    std::unique_ptr<MetricsServer> metrics;
    try {
        daemon.start();
        control = std::make_unique<ControlServer>(
            config.control_socket, [&daemon](const understudy::proto::ControlRequest &r) { return daemon.handle(r); },
            log);
        control->start();
        if (config.metrics) {
            metrics = std::make_unique<MetricsServer>(*config.metrics,
                                                      [&daemon] { return prometheus_text(daemon.status()); });
            metrics->start();
            log("metrics on http://" + config.metrics->to_string() + "/metrics");
        }
    } catch (const std::exception &e) {
        log(std::string("cannot start: ") + e.what());
        return 2;
    }
    log("ready; control socket " + config.control_socket.string());
    sd_notify(0, "READY=1");
    std::uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
    const double stall_limit_s = static_cast<double>(watchdog_usec) / 2e6;
    std::string stalled_before;
    const timespec tick{0, 100'000'000};
    for (;;) {
        int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            log(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": shutting down");
            break;
        }
        if (sig == SIGHUP)
            log("SIGHUP: reloading the configuration is not supported yet; nothing changed (restart understudyd "
                "to apply a new configuration)");
        else if (sig == SIGUSR1 || sig == SIGUSR2)
            log(std::string(sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2") + ": ignored");
        if (!watchdog)
            continue;
        // Fed only while the daemon's own loops keep going round: a daemon
        // whose heartbeat or decision thread hangs is restarted by systemd.
        std::string stalled;
        for (const auto &s : daemon.stalled_loops(stall_limit_s))
            stalled += (stalled.empty() ? "" : ", ") + s;
        if (stalled.empty())
            sd_notify(0, "WATCHDOG=1");
        if (stalled != stalled_before && !stalled.empty())
            log("WARNING: not feeding systemd's watchdog: " + stalled);
        stalled_before = stalled;
    }
    sd_notify(0, "STOPPING=1");
    control->stop();
    if (metrics)
        metrics->stop();
    daemon.stop();
    return 0;
}
