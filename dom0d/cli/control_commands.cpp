#include "dom0d/cli/control_commands.h"

#include <google/protobuf/util/json_util.h>
#include <signal.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "dom0d/cli/control_client.h"


namespace understudy::cli {

namespace {

std::string bytes_text(std::uint64_t bytes)
{
    std::ostringstream out;
    out << std::fixed << std::setprecision(1);
    if (bytes >= (1ull << 30))
        out << static_cast<double>(bytes) / (1ull << 30) << " GiB";
    else if (bytes >= (1ull << 20))
        out << static_cast<double>(bytes) / (1ull << 20) << " MiB";
    else if (bytes >= 1024)
        out << static_cast<double>(bytes) / 1024 << " KiB";
    else
        out << bytes << " B";
    return out.str();
}

std::string age_text(double seconds)
{
    if (seconds < 0)
        return "-";
    std::ostringstream out;
    out << std::fixed << std::setprecision(seconds < 10 ? 2 : 0) << seconds << " s";
    return out.str();
}

} // namespace

std::string status_table(const proto::StatusReply &s)
{
    std::ostringstream out;
    out << "understudyd on " << s.node() << (s.insecure() ? "  (INSECURE replication: benchmarks only)" : "")
        << "  (plug qdisc " << (s.plug_qdisc() ? "available" : "not available") << ")\n";
    auto row = [&](std::initializer_list<std::pair<std::string, int>> cells) {
        for (auto &[text, width] : cells)
            out << std::left << std::setw(width) << text << ' ';
        out << "\n";
    };
    if (s.guests_size() == 0) {
        out << "no guests run here\n";
    } else {
        row({{"GUEST", 12}, {"ROLE", 10}, {"STATE", 12}, {"BACKUP", 22}, {"ACKED", 8}, {"ACK AGE", 8},
             {"PAUSE p50/p99", 16}, {"DIRTY/EP", 9}, {"SENT", 10}, {"RATIO", 6}, {"LINK", 5}});
        for (const auto &g : s.guests()) {
            std::ostringstream pause, ratio;
            pause << g.pause_p50_us() << "/" << g.pause_p99_us() << " us";
            ratio << std::fixed << std::setprecision(1) << g.compression_ratio() << "x";
            row({{g.name(), 12}, {g.role(), 10}, {g.running() ? g.state() : "stopped", 12},
                 {g.peer().empty() ? "-" : g.peer(), 22}, {std::to_string(g.acked_epoch()), 8},
                 {age_text(g.last_ack_age_s()), 8}, {pause.str(), 16}, {std::to_string(g.dirty_pages_last()), 9},
                 {bytes_text(g.bytes_sent()), 10}, {ratio.str(), 6}, {g.link(), 5}});
            if (!g.last_error().empty() && g.state() != "protected")
                out << "  last error: " << g.last_error() << "\n";
            if (!g.checkpoint_way().empty())
                out << "  checkpoint: " << g.checkpoint_way()
                    << (g.checkpoint_way() == "suspend" ? " (through the guest's PV drivers)" : " (stopped by Xen, unnoticed by the guest)")
                    << "\n";
            for (const auto &d : g.disks())
                out << "  " << d << "\n";
            if (g.has_output()) {
                const auto &o = g.output();
                out << "  output (" << o.way() << "): "
                    << (o.holding() ? "held until acked, " + std::to_string(o.held_frames()) + " frames (" +
                                          bytes_text(o.held_bytes()) + ") waiting"
                                    : std::string("not held (no backup)"))
                    << ", " << o.released_frames() << " released, " << o.dropped_frames() << " dropped ("
                    << o.policy() << " when " << bytes_text(o.capacity_bytes()) << " are held)\n";
            }
        }
    }
    if (s.has_pair()) {
        const auto &p = s.pair();
        out << "\npair with " << p.peer_node() << ": peer " << (p.peer_alive() ? "alive" : "SILENT") << ", guard "
            << p.guard();
        if (!p.witness().empty())
            out << " (witness " << p.witness() << ": " << (p.witness_reachable() ? "reachable" : "UNREACHABLE")
                << " here, " << (p.peer_witness_reachable() ? "reachable" : "unreachable") << " from the peer)";
        if (!p.track_interface().empty())
            out << " (uplink " << p.track_interface() << (p.uplink_down() ? " DOWN)" : " up)");
        out << ", failover " << p.failover() << "\n";
        for (const auto &path : p.paths())
            out << "  path " << std::left << std::setw(22) << path.peer() << (path.alive() ? "alive " : "silent")
                << "  last heard " << age_text(path.silent_s()) << ", " << path.received() << " received, "
                << path.refused() << " refused\n";
        for (const auto &c : p.guard_covers())
            out << "  covered:     " << c << "\n";
        for (const auto &c : p.guard_misses())
            out << "  NOT covered: " << c << "\n";
        for (const auto &b : p.split_brain())
            out << "  SPLIT BRAIN: guest " << b.guest() << " " << b.what() << " (after_split_brain = "
                << p.after_split_brain() << ")\n";
    } else {
        out << "\nno failure detection ([heartbeat] is not configured): no automatic failover\n";
    }
    if (s.standbys_size() > 0) {
        out << "\n";
        row({{"STANDBY", 12}, {"PRIMARY", 22}, {"STATE", 12}, {"EPOCH", 8}, {"CHECKPTS", 9}, {"COMMIT AGE", 10},
             {"REFUSED", 8}, {"RECEIVED", 10}});
        for (const auto &b : s.standbys()) {
            const std::string state = b.damaged()    ? "DAMAGED"
                                      : !b.consistent() ? "syncing"
                                      : b.outdated()    ? "OUTDATED"
                                                        : "consistent";
            row({{b.guest(), 12}, {b.peer().empty() ? "-" : b.peer(), 22}, {state, 12}, {std::to_string(b.epoch()), 8},
                 {std::to_string(b.checkpoints()), 9}, {age_text(b.last_commit_age_s()), 10},
                 {std::to_string(b.epochs_refused()), 8}, {bytes_text(b.bytes_received()), 10}});
            if (b.damaged())
                out << "  damaged, never run: " << b.damaged_reason() << "\n";
            if (b.outdated())
                out << "  outdated, no automatic takeover: " << b.outdated_reason() << "\n";
            if (b.commit_failures())
                out << "  commits failed: " << b.commit_failures() << " (the copy stayed at its epoch each time)\n";
            if (!b.last_error().empty())
                out << "  last error: " << b.last_error() << "\n";
        }
    }
    return out.str();
}

int protect_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    o.add_options()("help,h", "show this help and exit")("guest", po::value<std::string>(), "the guest to protect")(
        "peer", po::value<std::string>(), "the backup host's understudyd, HOST[:PORT] (port 7300 by default)")(
        "allow-unreplicated-disk",
        "Xen: protect the domain even though a writable disk of it is not replicated by DRBD (the backup then "
        "resumes with a disk that lacks the primary's writes)");
    add_socket_option(o);
    po::positional_options_description p;
    p.add("guest", 1);
    Parsed parsed;
    if (!parse(program, "protect", args, o, p, parsed))
        return 2;
    if (parsed.help) {
        std::cout << "Usage: " << program << " protect GUEST --peer HOST[:PORT] [--allow-unreplicated-disk]\n\n"
                  << "Starts replicating GUEST to the understudyd on HOST: a full copy first, then a\n"
                  << "checkpoint every interval. `understudy status` shows when it is protected.\n"
                  << "GUEST is a kvm guest running under this host's understudyd, or, on a Xen Dom0, an xl\n"
                  << "domain by name or domid (HVM, PVH or 64-bit PV; it needs a [guest NAME] section with\n"
                  << "backend = xen on both hosts, and its writable disks on DRBD; see docs/xen.md).\n\n"
                  << o;
        return 0;
    }
    if (!parsed.vm.count("guest") || !parsed.vm.count("peer")) {
        std::cerr << program << " protect: GUEST and --peer HOST are required (see " << program
                  << " protect --help)\n";
        return 2;
    }
    proto::ControlRequest r;
    r.mutable_protect()->set_guest(parsed.vm["guest"].as<std::string>());
    r.mutable_protect()->set_peer(parsed.vm["peer"].as<std::string>());
    r.mutable_protect()->set_allow_unreplicated_disk(parsed.vm.count("allow-unreplicated-disk") > 0);
    return send(program, "protect", parsed.vm["socket"].as<std::string>(), r);
}

int unprotect_command(const std::string &program, const std::vector<std::string> &args)
{
    return guest_command(program, "unprotect", args, "Stops replicating GUEST; it keeps running here without a standby.",
                         [](proto::ControlRequest &r, const std::string &g) { r.mutable_unprotect()->set_guest(g); });
}

int status_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    // clang-format off
    o.add_options()
        ("help,h", "show this help and exit")
        ("guest", po::value<std::string>()->default_value(""), "only this guest")
        ("json", "print JSON (one object per refresh with --watch)")
        ("watch", po::value<double>()->implicit_value(1.0), "refresh every SECONDS (default 1) until interrupted");
    // clang-format on
    add_socket_option(o);
    po::positional_options_description p;
    p.add("guest", 1);
    Parsed parsed;
    if (!parse(program, "status", args, o, p, parsed))
        return 2;
    if (parsed.help) {
        std::cout << "Usage: " << program << " status [GUEST] [--json] [--watch [SECONDS]]\n\n"
                  << "Shows each guest this host runs (role, protection state, backup, last acked epoch and\n"
                  << "its age, pause time p50/p99, dirty pages per epoch, bytes sent, compression ratio,\n"
                  << "link) and each standby copy it holds for a peer.\n\n"
                  << o;
        return 0;
    }
    const bool json = parsed.vm.count("json") > 0;
    const double every = parsed.vm.count("watch") ? parsed.vm["watch"].as<double>() : 0;
    if (parsed.vm.count("watch") && (every < 0.1 || every > 3600)) {
        std::cerr << program << " status: --watch: SECONDS must be 0.1 to 3600\n";
        return 2;
    }
    proto::ControlRequest r;
    r.mutable_status()->set_guest(parsed.vm["guest"].as<std::string>());
    for (;;) {
        proto::ControlResponse response;
        int rc = send(program, "status", parsed.vm["socket"].as<std::string>(), r, &response);
        if (rc != 0)
            return rc;
        if (json) {
            std::string text;
            google::protobuf::util::JsonPrintOptions options;
            options.always_print_primitive_fields = true;
            options.preserve_proto_field_names = true;
            (void)google::protobuf::util::MessageToJsonString(response.status(), &text, options);
            std::cout << text << std::endl;
        } else {
            if (every > 0)
                std::cout << "\033[H\033[2J";
            std::cout << status_table(response.status()) << std::flush;
        }
        if (every <= 0)
            return 0;
        std::this_thread::sleep_for(std::chrono::duration<double>(every));
    }
}

int debug_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    o.add_options()("help,h", "show this help and exit")("action", po::value<std::string>(),
                                                         "freeze, thaw, checksum or activate")(
        "guest", po::value<std::string>(), "the guest");
    add_socket_option(o);
    po::positional_options_description p;
    p.add("action", 1).add("guest", 1);
    Parsed parsed;
    if (!parse(program, "debug", args, o, p, parsed))
        return 2;
    const std::string action = parsed.vm.count("action") ? parsed.vm["action"].as<std::string>() : "";
    if (parsed.help || action.empty() || !parsed.vm.count("guest")) {
        (parsed.help ? std::cout : std::cerr)
            << "Usage: " << program << " debug freeze|thaw|checksum|activate GUEST\n\n"
            << "For tests and drills, not for production use:\n"
            << "  freeze    take one more checkpoint, wait for its ack, and keep the guest paused\n"
            << "  thaw      resume a frozen guest\n"
            << "  checksum  SHA-256 of memory, CPU, device state and disk: of a frozen primary, or of a\n"
            << "            standby copy; equal sums mean the standby is exactly the primary\n"
            << "  activate  run the standby copy on this host now, from its last committed checkpoint\n"
            << "            (no failure detection, no fencing: the primary must be gone)\n\n"
            << o;
        return parsed.help ? 0 : 2;
    }
    const std::string guest = parsed.vm["guest"].as<std::string>();
    proto::ControlRequest r;
    if (action == "freeze")
        r.mutable_freeze()->set_guest(guest);
    else if (action == "thaw")
        r.mutable_thaw()->set_guest(guest);
    else if (action == "checksum")
        r.mutable_checksum()->set_guest(guest);
    else if (action == "activate")
        r.mutable_activate()->set_guest(guest);
    else {
        std::cerr << program << " debug: unknown action '" << action << "' (freeze, thaw, checksum, activate)\n";
        return 2;
    }
    proto::ControlResponse response;
    int rc = send(program, "debug " + action, parsed.vm["socket"].as<std::string>(), r, &response);
    if (rc != 0)
        return rc;
    if (action == "checksum") {
        const auto &c = response.checksum();
        std::cout << "guest " << c.guest() << "\nepoch " << c.epoch() << "\nmemory " << c.memory_sha256() << "\ncpu "
                  << c.cpu_sha256() << "\ndevices " << c.devices_sha256() << "\ndisk " << c.disk_sha256() << "\n";
        if (c.has_pages_written_since_checkpoint())
            std::cout << "written since checkpoint " << c.pages_written_since_checkpoint() << " pages"
                      << (c.pages_written_since_checkpoint() ? " (the guest is not stopped: the digests are not "
                                                               "comparable)"
                                                             : "")
                      << "\n";
    } else {
        std::cout << response.message() << "\n";
    }
    return 0;
}

} // namespace understudy::cli
