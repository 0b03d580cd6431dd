#include "drbd/drbd_promote.h"

#include "drbd/drbd_state.h"
#include "drbd/drbd_tool.h"

namespace understudy::drbd {

void promote_resource(const std::string &resource, const std::string &drbdadm, std::chrono::milliseconds timeout)
{
    if (!valid_resource_name(resource))
        throw DrbdParseError("'" + resource + "' is not a DRBD resource name");
    auto r = run_tool({drbdadm, "primary", resource}, timeout);
    if (r.status == 127)
        throw DrbdParseError(drbdadm + " cannot be run (is drbd-utils installed?)");
    if (r.status != 0)
        throw DrbdParseError("drbdadm primary " + resource + " refused (exit " + std::to_string(r.status) + ")" +
                             (r.err.empty() ? "" : ": " + first_line(r.err)) +
                             "; if the peer is still Primary it may still be running the guest");
}

} // namespace understudy::drbd
