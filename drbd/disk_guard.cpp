#include "drbd/disk_guard.h"

#include <stdexcept>

namespace understudy::drbd {

DiskCheck check_replicated_disks(const std::string &guest, const std::vector<GuestDisk> &disks,
                                 bool allow_unreplicated, const Prober &probe)
{
    DiskCheck check;
    auto &notes = check.notes;
    std::vector<std::string> problems;
    for (const auto &d : disks) {
        const std::string which = "disk " + d.vdev + " (" + d.target + ")";
        if (!d.writable) {
            notes.push_back(which + ": read-only, needs no replication");
            continue;
        }
        if (!d.drbd) {
            problems.push_back(which + " is not on DRBD: the backup would resume with a disk that lacks the "
                                       "primary's writes");
            continue;
        }
        try {
            auto p = probe(d.target);
            if (!p.verdict.replicated) {
                problems.push_back(which + ": DRBD resource " + d.target + " does not replicate: " + p.verdict.reason);
                continue;
            }
            notes.push_back(which + ": DRBD resource " + d.target + " replicates; " + p.consistency);
            check.replicated.push_back(std::move(p));
        } catch (const std::exception &e) {
            problems.push_back(which + ": " + e.what());
        }
    }
    if (problems.empty())
        return check;
    std::string all;
    for (const auto &p : problems)
        all += "\n  " + p;
    if (!allow_unreplicated)
        throw std::runtime_error("refusing to protect " + guest + ": its disks are not all replicated:" + all +
                                 "\nreplicate them with DRBD, or protect it anyway with --allow-unreplicated-disk "
                                 "(the backup then resumes with an older disk)");
    for (const auto &p : problems)
        notes.push_back("UNREPLICATED (allowed by the operator): " + p);
    return check;
}

} // namespace understudy::drbd
