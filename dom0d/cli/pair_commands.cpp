// `understudy events` and `understudy failover`: the pair's transitions, and
// the planned switch.
#include <google/protobuf/util/json_util.h>

#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "dom0d/cli/control_client.h"
#include "dom0d/cli/control_commands.h"

namespace understudy::cli {

namespace {

std::string local_time(std::uint64_t unix_ns)
{
    const std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000);
    std::tm tm{};
    localtime_r(&t, &tm);
    std::ostringstream out;
    out << std::put_time(&tm, "%Y-%m-%d %H:%M:%S") << '.' << std::setw(3) << std::setfill('0')
        << (unix_ns / 1'000'000) % 1000;
    return out.str();
}

// One message as a JSON object on one line, with the .proto field names.
std::string json_line(const google::protobuf::Message &m)
{
    std::string text;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &text, options);
    return text;
}

// "1795590098.273241123": exact, and what `tcpdump -tt` prints.
std::string unix_seconds(std::uint64_t ns)
{
    std::ostringstream out;
    out << ns / 1'000'000'000 << '.' << std::setw(9) << std::setfill('0') << ns % 1'000'000'000;
    return out.str();
}

} // namespace

int events_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    // clang-format off
    o.add_options()
        ("help,h", "show this help and exit")
        ("json", "print one JSON object per event")
        ("follow,f", "keep printing new events until interrupted")
        ("epochs", po::value<std::string>()->value_name("GUEST"),
         "instead: GUEST's recent checkpoints (up to 8192), one per line: epoch, when its pause began "
         "and when its ack arrived (Unix seconds), oldest first");
    // clang-format on
    add_socket_option(o);
    Parsed parsed;
    if (!parse(program, "events", args, o, {}, parsed))
        return 2;
    if (parsed.help) {
        std::cout << "Usage: " << program << " events [--json] [--follow]\n"
                  << "       " << program << " events --epochs GUEST [--json]\n\n"
                  << "Prints this host's pair transitions, oldest first, each with its reason: protection\n"
                  << "started or lost, the peer silent or heard again, takeovers and why one was refused,\n"
                  << "fencing, activation, gratuitous ARPs, hand-overs.\n\n"
                  << o;
        return 0;
    }
    const bool json = parsed.vm.count("json") > 0, follow = parsed.vm.count("follow") > 0;
    proto::ControlRequest r;
    if (parsed.vm.count("epochs")) {
        if (follow) {
            std::cerr << program << " events: --epochs and --follow do not go together\n";
            return 2;
        }
        r.mutable_events()->set_epochs_of(parsed.vm["epochs"].as<std::string>());
        proto::ControlResponse response;
        if (int rc = send(program, "events", parsed.vm["socket"].as<std::string>(), r, &response); rc != 0)
            return rc;
        for (const auto &a : response.events().epoch_acks()) {
            if (json) {
                std::cout << json_line(a) << "\n";
            } else {
                std::cout << a.epoch() << ' ' << unix_seconds(a.paused_unix_ns()) << ' ' << unix_seconds(a.acked_unix_ns())
                          << "\n";
            }
        }
        return 0;
    }
    std::uint64_t after = 0;
    for (;;) {
        r.mutable_events()->set_after(after);
        proto::ControlResponse response;
        if (int rc = send(program, "events", parsed.vm["socket"].as<std::string>(), r, &response); rc != 0)
            return rc;
        for (const auto &e : response.events().events()) {
            after = e.id();
            if (json) {
                std::cout << json_line(e) << "\n";
            } else {
                std::cout << local_time(e.unix_ns()) << "  " << std::left << std::setw(17) << e.kind() << ' '
                          << std::setw(10) << (e.guest().empty() ? "-" : e.guest()) << ' ' << e.reason() << "\n";
            }
        }
        std::cout << std::flush;
        if (!follow)
            return 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

int takeover_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    // clang-format off
    o.add_options()
        ("help,h", "show this help and exit")
        ("guest", po::value<std::string>(), "the guest")
        ("force", "take over even though the primary is still heard or the standby is outdated");
    // clang-format on
    add_socket_option(o);
    po::positional_options_description p;
    p.add("guest", 1);
    Parsed parsed;
    if (!parse(program, "takeover", args, o, p, parsed))
        return 2;
    if (parsed.help || !parsed.vm.count("guest")) {
        (parsed.help ? std::cout : std::cerr)
            << "Usage: " << program << " takeover GUEST [--force]\n\n"
            << "Run on the backup: starts GUEST here from its standby's last committed checkpoint, after\n"
            << "fencing the primary where fence_command is configured (it must succeed), and announces it\n"
            << "with gratuitous ARPs. Refused while the primary is still heard (use `understudy failover`\n"
            << "there for a planned switch) and when the standby is outdated (the primary ran on without\n"
            << "it: its clients would see the guest go back in time). --force overrides both, with a loud\n"
            << "warning and a forced_takeover event; it never skips fencing. Needs [heartbeat].\n\n"
            << o;
        return parsed.help ? 0 : 2;
    }
    proto::ControlRequest r;
    r.mutable_takeover()->set_guest(parsed.vm["guest"].as<std::string>());
    r.mutable_takeover()->set_force(parsed.vm.count("force") > 0);
    return send(program, "takeover", parsed.vm["socket"].as<std::string>(), r);
}

int discard_command(const std::string &program, const std::vector<std::string> &args)
{
    return guest_command(program, "discard", args,
                         "Stops this host's running copy of GUEST for good, with everything it holds back (it never\n"
                         "runs again here): how an operator ends a split brain (both hosts run GUEST, see\n"
                         "`understudy status`), keeping the other host's copy. Its changes since the two copies\n"
                         "parted are lost.",
                         [](proto::ControlRequest &r, const std::string &g) { r.mutable_discard()->set_guest(g); });
}

int failover_command(const std::string &program, const std::vector<std::string> &args)
{
    return guest_command(program, "failover", args,
                         "A planned switch, run on the primary: takes one more checkpoint, waits until the backup\n"
                         "committed it, stops GUEST here for good and tells the backup to run it from there. No\n"
                         "output is lost: everything the guest sent was acked before it stopped. Needs [heartbeat].",
                         [](proto::ControlRequest &r, const std::string &g) { r.mutable_failover()->set_guest(g); });
}

} // namespace understudy::cli
