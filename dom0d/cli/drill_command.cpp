// `understudy drill GUEST`: a failover exercise on a live pair, run on the
// primary; prints what the daemon measured (docs/failover.md, "Drills").
#include <google/protobuf/util/json_util.h>

#include <iomanip>
#include <iostream>

#include "dom0d/cli/control_client.h"
#include "dom0d/cli/control_commands.h"

namespace understudy::cli {

namespace {

void print_report(const proto::DrillReply &r)
{
    auto line = [](const std::string &what, const std::string &value) {
        std::cout << "  " << std::left << std::setw(13) << what << value << "\n";
    };
    std::cout << "Failover drill of guest " << r.guest() << " (to " << r.peer_node() << ")\n";
    if (r.taken_over()) {
        line("detection", std::to_string(r.detection_ms()) + " ms  (" + r.peer_node() +
                              " heard no heartbeat for this long, then decided)");
        line("activation", std::to_string(r.activation_ms()) + " ms  (from that decision to the guest running)");
    }
    line("observed", std::to_string(r.observed_ms()) + " ms  (from the simulated crash until this host heard "
                                                       "that the guest runs there)");
    line("epochs", "acked " + std::to_string(r.acked_epoch()) + ", output released up to " +
                       std::to_string(r.released_epoch()) +
                       (r.taken_over() ? ", resumed from " + std::to_string(r.activated_epoch()) : std::string()));
    line("lost output", std::to_string(r.discarded_frames()) +
                            " frames of unacked epochs (never seen by clients, as in a real crash; TCP resends)");
    if (r.taken_over())
        line("invariant", r.invariant_held() ? "held: no client saw a state the backup does not have"
                                             : "BROKEN: clients saw output of an epoch the backup does not have");
    std::cout << r.verdict() << "\n";
    if (r.taken_over())
        std::cout << "The guest now runs on " << r.peer_node()
                  << "; its copy here is stopped for good. Make this host its backup again with\n"
                  << "`understudy protect " << r.guest() << " --peer THIS_HOST` there, or set reprotect = auto.\n";
}

} // namespace

int drill_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    // clang-format off
    o.add_options()
        ("help,h", "show this help and exit")
        ("json", "print the report as JSON")
        ("guest", po::value<std::string>(), "the guest");
    // clang-format on
    add_socket_option(o);
    po::positional_options_description p;
    p.add("guest", 1);
    Parsed parsed;
    if (!parse(program, "drill", args, o, p, parsed))
        return 2;
    if (parsed.help || !parsed.vm.count("guest")) {
        (parsed.help ? std::cout : std::cerr)
            << "Usage: " << program << " drill GUEST [--json]\n\n"
            << "A failover exercise, run on the primary of a pair (meant for test pairs: the guest really\n"
            << "moves). This host plays a crash: its heartbeats stop, the replication stream is cut\n"
            << "without a goodbye, GUEST stops here for good and its output of unacked epochs is lost.\n"
            << "It then waits (up to 35 s) to hear that the backup runs GUEST and reports the backup's\n"
            << "detection and activation times and whether the client invariant held: the backup\n"
            << "resumed from an epoch at least as new as any output clients saw. GUEST must be the only\n"
            << "guest this host protects. Exit status 0 only if the drill passed.\n\n"
            << o;
        return parsed.help ? 0 : 2;
    }
    proto::ControlRequest r;
    r.mutable_drill()->set_guest(parsed.vm["guest"].as<std::string>());
    proto::ControlResponse response;
    if (int rc = send(program, "drill", parsed.vm["socket"].as<std::string>(), r, &response); rc != 0)
        return rc;
    const auto &report = response.drill();
    if (parsed.vm.count("json")) {
        std::string text;
        google::protobuf::util::JsonPrintOptions options;
        options.preserve_proto_field_names = true;
        options.always_print_primitive_fields = true;
        (void)google::protobuf::util::MessageToJsonString(report, &text, options);
        std::cout << text << "\n";
    } else {
        print_report(report);
    }
    return report.taken_over() && report.invariant_held() ? 0 : 1;
}

} // namespace understudy::cli
