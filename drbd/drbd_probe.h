// Probing the DRBD resource behind a guest's disk, as Xen's block-drbd-probe
// does: its state (`drbdsetup status --json`), its replication protocol
// (`drbdsetup show`), and what that means for a checkpointed guest: protocol
// D (the Remus DRBD build) commits disk writes per checkpoint; any other
// protocol replicates each write as it happens, so after a failover the disk
// can be up to one epoch ahead of memory, and the probe says so.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "drbd/drbd_state.h"

namespace understudy::drbd {

struct DrbdProbe {
    Resource resource;
    char protocol = 'C';
    bool checkpoint_barriers = false; // protocol D
    ReplicationVerdict verdict;
    std::string consistency;          // one sentence for the log and status
};

// The replication protocol in `drbdsetup show` output ("protocol X;", in the
// top level (8.3) or in net { } (9)); DRBD's default C when absent.
[[nodiscard]] char parse_show_protocol(const std::string &show);

// Runs `DRBDSETUP status --json RESOURCE` and `DRBDSETUP show RESOURCE`
// (each within `timeout`) and judges the result. Throws DrbdParseError naming
// what failed: no drbdsetup (install drbd-utils), no such resource, output
// that is not DRBD's.
[[nodiscard]] DrbdProbe probe_resource(const std::string &resource, const std::string &drbdsetup = "drbdsetup",
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

} // namespace understudy::drbd
