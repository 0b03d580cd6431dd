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

} // namespace

int events_command(const std::string &program, const std::vector<std::string> &args)
{
    po::options_description o("Options");
    // clang-format off
    o.add_options()
        ("help,h", "show this help and exit")
        ("json", "print one JSON object per event")
        ("follow,f", "keep printing new events until interrupted");
    // clang-format on
    add_socket_option(o);
    Parsed parsed;
    if (!parse(program, "events", args, o, {}, parsed))
        return 2;
    if (parsed.help) {
        std::cout << "Usage: " << program << " events [--json] [--follow]\n\n"
                  << "Prints this host's pair transitions, oldest first, each with its reason: protection\n"
                  << "started or lost, the peer silent or heard again, takeovers and why one was refused,\n"
                  << "fencing, activation, gratuitous ARPs, hand-overs.\n\n"
                  << o;
        return 0;
    }
    const bool json = parsed.vm.count("json") > 0, follow = parsed.vm.count("follow") > 0;
    proto::ControlRequest r;
    std::uint64_t after = 0;
    for (;;) {
        r.mutable_events()->set_after(after);
        proto::ControlResponse response;
        if (int rc = send(program, "events", parsed.vm["socket"].as<std::string>(), r, &response); rc != 0)
            return rc;
        for (const auto &e : response.events().events()) {
            after = e.id();
            if (json) {
                std::string text;
                google::protobuf::util::JsonPrintOptions options;
                options.preserve_proto_field_names = true;
                (void)google::protobuf::util::MessageToJsonString(e, &text, options);
                std::cout << text << "\n";
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

int failover_command(const std::string &program, const std::vector<std::string> &args)
{
    return guest_command(program, "failover", args,
                         "A planned switch, run on the primary: takes one more checkpoint, waits until the backup\n"
                         "committed it, stops GUEST here for good and tells the backup to run it from there. No\n"
                         "output is lost: everything the guest sent was acked before it stopped. Needs [heartbeat].",
                         [](proto::ControlRequest &r, const std::string &g) { r.mutable_failover()->set_guest(g); });
}

} // namespace understudy::cli
