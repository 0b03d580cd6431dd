// Making this host's side of a DRBD resource Primary at failover
// (`drbdadm primary RESOURCE`), so the guest started here may write its disk.
// Never forced: if the peer is still Primary, DRBD refuses, and so do we
// (that is split brain prevention, not an error to work around).
#pragma once

#include <chrono>
#include <string>

namespace understudy::drbd {

// Throws DrbdParseError with drbdadm's own reason when it refuses.
void promote_resource(const std::string &resource, const std::string &drbdadm = "drbdadm",
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

} // namespace understudy::drbd
