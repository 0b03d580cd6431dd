#include "drbd/drbd_probe.h"
#include "drbd/drbd_tool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <regex>

namespace understudy::drbd {


char parse_show_protocol(const std::string &show)
{
    static const std::regex protocol(R"((^|[\s{;])protocol\s+([A-Da-d])\s*;)");
    std::smatch m;
    if (std::regex_search(show, m, protocol))
        return static_cast<char>(std::toupper(static_cast<unsigned char>(m[2].str()[0])));
    return 'C';
}

DrbdProbe probe_resource(const std::string &resource, const std::string &drbdsetup, std::chrono::milliseconds timeout)
{
    if (!valid_resource_name(resource))
        throw DrbdParseError("'" + resource + "' is not a DRBD resource name");
    DrbdProbe p;
    const auto status = run_checked({drbdsetup, "status", "--json", resource}, timeout);
    const auto resources = parse_status_json(status.out);
    bool found = false;
    for (const auto &r : resources)
        if (r.name == resource) {
            p.resource = r;
            found = true;
        }
    if (!found)
        throw DrbdParseError("drbdsetup status does not list resource " + resource);
    const auto show = run_checked({drbdsetup, "show", resource}, timeout);
    p.protocol = parse_show_protocol(show.out);
    p.checkpoint_barriers = p.protocol == 'D';
    p.verdict = judge_replication(p.resource);
    p.consistency = p.checkpoint_barriers
                        ? "protocol D: disk writes are committed with each checkpoint, consistent with memory"
                        : std::string("protocol ") + p.protocol +
                              ": each write is replicated as it happens, not per checkpoint; after a failover "
                              "the disk may hold writes of the last, uncommitted epoch (up to one epoch ahead "
                              "of memory), which the guest sees as after a power cut";
    return p;
}

} // namespace understudy::drbd
