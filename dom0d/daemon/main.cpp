// understudyd: the per-host daemon (ARCHITECTURE.md §8). Runs the guests this
// host is primary for and replicates them, holds standby copies for its
// peers, answers the control socket and serves Prometheus metrics.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <ctime>
#include <iostream>
#include <mutex>

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
        ("check", "only check the configuration file, then exit");
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
                  << " guests)\n";
        return 0;
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const std::string node = config.node;
    auto log = [node](const std::string &line) { log_line(node, line); };
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
    const timespec tick{0, 100'000'000};
    for (;;) {
        int sig = sigtimedwait(&stop_signals, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            log(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": shutting down");
            break;
        }
        if (watchdog)
            sd_notify(0, "WATCHDOG=1");
    }
    sd_notify(0, "STOPPING=1");
    control->stop();
    if (metrics)
        metrics->stop();
    daemon.stop();
    return 0;
}
