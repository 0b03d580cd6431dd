// libFuzzer target for understudyd's control socket: a frame (u32 length,
// protobuf) as a client sends it, parsed as the socket does, handed to a
// Daemon with no guests (as one just started), and its reply rendered as
// `understudy status` prints it. Never a crash, always a reply. (A protect
// of an unconfigured domain is skipped: it would open Xen.)
#include <google/protobuf/stubs/logging.h>

#include <cstdint>

#include "dom0d/cli/control_commands.h"
#include "dom0d/daemon/control_socket.h"
#include "dom0d/daemon/daemon.h"

using namespace understudy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static daemon::Daemon *d = [] {
        google::protobuf::SetLogHandler(nullptr); // "invalid UTF-8" on every other input
        daemon::DaemonConfig config;
        config.node = "fuzz";
        config.insecure = true;
        config.state_dir = "/tmp/understudy-control-fuzz";
        return new daemon::Daemon(config, [](const std::string &) {});
    }();
    proto::ControlRequest request;
    std::string why;
    if (!daemon::parse_control_frame({data, size}, request, &why))
        return 0;
    if (request.has_protect())
        return 0;
    const auto reply = d->handle(request);
    if (reply.has_status())
        (void)cli::status_table(reply.status());
    return 0;
}
