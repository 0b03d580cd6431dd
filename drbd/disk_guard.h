// Whether a guest's disks are replicated well enough to protect it: every
// writable disk must be a DRBD resource connected to an UpToDate peer, unless
// the operator explicitly allows unreplicated disks (then the backup resumes
// with whatever disk it has, and we say so).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "drbd/drbd_probe.h"

namespace understudy::drbd {

struct GuestDisk {
    std::string vdev;     // "xvda"
    std::string target;   // file, device, or the DRBD resource name
    bool drbd = false;    // target is a DRBD resource (xl's drbd:RES / block-drbd)
    bool writable = true; // read-only disks and CD-ROMs need no replication
};

using Prober = std::function<DrbdProbe(const std::string &resource)>;

struct DiskCheck {
    std::vector<std::string> notes; // one line per disk: resource, state, protocol and its consistency limit
    std::vector<DrbdProbe> replicated; // the DRBD resources that replicate
};

// Throws std::runtime_error listing every disk that is not replicated, and
// why, unless `allow_unreplicated`.
DiskCheck check_replicated_disks(const std::string &guest, const std::vector<GuestDisk> &disks,
                                                bool allow_unreplicated, const Prober &probe);

} // namespace understudy::drbd
