#include "dom0d/cli/run_command.h"

#include <signal.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "checkpoint/kvm/kvm_hypervisor.h"
#include "dom0d/cli/net_args.h"

namespace po = boost::program_options;

namespace understudy::cli {

namespace {

std::filesystem::path default_kernel()
{
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return self.parent_path() / "demo-guest.elf";
}

po::options_description run_options()
{
    po::options_description o("Options");
    // clang-format off
    o.add_options()
        ("help,h", "show this help and exit")
        ("name", po::value<std::string>()->default_value("demo"), "guest name, used in logs and for a created TAP")
        ("kernel", po::value<std::string>(), "guest ELF image (default: demo-guest.elf beside this program)")
        ("mem", po::value<unsigned>()->default_value(64), "guest RAM in MiB (4 to 16384)")
        ("tap", po::value<std::string>(), "TAP interface for the guest NIC; attached if it exists, created otherwise "
                                          "(default: create one with a kernel-chosen name)")
        ("no-net", "run without a NIC")
        ("ip", po::value<std::string>()->default_value("10.99.0.2/24"), "the guest's IPv4 address/prefix (boot parameter)")
        ("mac", po::value<std::string>()->default_value("52:54:00:12:34:56"), "the guest NIC's MAC address")
        ("port", po::value<unsigned>()->default_value(7777), "UDP port of the demo guest's counter service")
        ("disk", po::value<std::string>(), "disk image; created with --disk-size if missing (default: no disk)")
        ("disk-size", po::value<unsigned>()->default_value(8), "size in MiB of a disk image created by --disk")
        ("dirty-rate", po::value<unsigned long>()->default_value(0), "pages per second the demo guest's workload dirties")
        ("guest-arg", po::value<std::string>()->default_value(""), "free text handed to the guest (at most 127 characters)");
    // clang-format on
    return o;
}

void print_help(const std::string &program, const po::options_description &o)
{
    std::cout << "Usage: " << program << " run [options]\n\n"
              << "Starts a guest under understudy's built-in KVM VMM, prints its console, and stops it\n"
              << "cleanly on SIGINT or SIGTERM. Needs root (for /dev/kvm and the TAP device).\n\n"
              << o << "\nExit status: 0 when stopped by a signal or when the guest halts with status 0;\n"
              << "1 when the guest stops with an error; 2 for bad options or a failure to start.\n";
}

template <class T> T bounded(const po::variables_map &vm, const char *key, T lo, T hi)
{
    T v = vm[key].as<T>();
    if (v < lo || v > hi)
        throw ArgumentError(std::string("--") + key + " " + std::to_string(v) + ": must be " + std::to_string(lo) +
                            " to " + std::to_string(hi));
    return v;
}

} // namespace

int run_command(const std::string &program, const std::vector<std::string> &args)
{
    auto options = run_options();
    po::variables_map vm;
    kvm::KvmGuestConfig config;
    try {
        po::store(po::command_line_parser(args).options(options).run(), vm);
        po::notify(vm);
        if (vm.count("help")) {
            print_help(program, options);
            return 0;
        }
        config.name = vm["name"].as<std::string>();
        if (config.name.empty() || config.name.size() > 32)
            throw ArgumentError("--name: must be 1 to 32 characters");
        config.memory_bytes = std::uint64_t{bounded<unsigned>(vm, "mem", 4, 16384)} << 20;
        config.kernel = vm.count("kernel") ? std::filesystem::path(vm["kernel"].as<std::string>()) : default_kernel();
        auto ip = parse_ipv4_interface(vm["ip"].as<std::string>());
        config.ipv4 = ip.address;
        config.netmask = ip.netmask;
        config.mac = parse_mac(vm["mac"].as<std::string>());
        config.udp_port = static_cast<std::uint16_t>(bounded<unsigned>(vm, "port", 1, 65535));
        config.dirty_pages_per_second = bounded<unsigned long>(vm, "dirty-rate", 0, 10'000'000);
        config.cmdline = vm["guest-arg"].as<std::string>();
        if (config.cmdline.size() >= US_CMDLINE_MAX)
            throw ArgumentError("--guest-arg: at most " + std::to_string(US_CMDLINE_MAX - 1) + " characters");
        bounded<unsigned>(vm, "disk-size", 1, 1 << 20);
    } catch (const std::exception &e) {
        std::cerr << program << " run: " << e.what() << "\n(see " << program << " run --help)\n";
        return 2;
    }

    const kvm::KvmHypervisor hypervisor;
    std::string why;
    if (!hypervisor.available(&why)) {
        std::cerr << program << " run: KVM is not usable on this host: " << why << "\n";
        return 2;
    }

    // Signals are taken synchronously below; block them before any thread starts.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    std::unique_ptr<kvm::KvmGuest> guest;
    try {
        if (!vm.count("no-net"))
            config.tap = std::make_shared<kvm::TapDevice>(vm.count("tap") ? vm["tap"].as<std::string>() : "");
        if (vm.count("disk"))
            config.disk = std::make_shared<kvm::BlockImage>(vm["disk"].as<std::string>(),
                                                            std::uint64_t{vm["disk-size"].as<unsigned>()} << 20);
        std::cerr << "understudy: starting guest " << config.name << " (" << (config.memory_bytes >> 20) << " MiB, ip "
                  << format_ipv4(config.ipv4) << ", mac " << format_mac(config.mac) << ", tap "
                  << (config.tap ? config.tap->name() : "none") << ", disk "
                  << (config.disk ? config.disk->path().string() : "none") << ")\n";
        guest = hypervisor.boot(config);
    } catch (const std::exception &e) {
        std::cerr << program << " run: cannot start guest " << config.name << ": " << e.what() << "\n";
        return 2;
    }

    const timespec tick{0, 200'000'000};
    for (;;) {
        int sig = sigtimedwait(&stop_signals, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            std::cerr << "\nunderstudy: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": stopping guest "
                      << config.name << "\n";
            guest->stop();
            return 0;
        }
        if (auto stop = guest->stopped()) {
            std::cerr << "understudy: " << stop->message << "\n";
            return stop->kind == kvm::VmStop::Kind::halted && stop->status == 0 ? 0 : 1;
        }
    }
}

} // namespace understudy::cli
