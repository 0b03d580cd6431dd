// The engine's view of a protected virtual machine, whatever runs it.
// Backends (checkpoint/kvm, later checkpoint/xen) implement Guest; the epoch
// loop talks only to this interface (ARCHITECTURE.md §1).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/dirty_bitmap.h"
#include "checkpoint/pfn.h"
#include "drbd/epoch_disk_log.h"
#include "proto/vm_state.pb.h"

namespace understudy {

class Guest {
  public:
    virtual ~Guest() = default;

    [[nodiscard]] virtual const std::string &name() const = 0;
    [[nodiscard]] virtual std::uint64_t memory_size() const = 0;

    // Both return only once the guest's vCPUs are really stopped / running.
    virtual void pause() = 0;
    virtual void resume() = 0;
    // Stops this copy for good, because another host runs the guest now
    // (hand-over, drill): it must never run again, and it lets go of what
    // the other copy needs (a Xen domain is destroyed, freeing its disks).
    virtual void stop_for_good() = 0;

    virtual void enable_dirty_log() = 0;
    // Ends dirty logging when replication stops for good (a backend whose
    // log costs the guest something, like Xen's log-dirty, turns it off).
    virtual void disable_dirty_log() {}
    // ORs every page written since the previous harvest (by the guest or by the
    // device model on its behalf) into `into`, and clears the log.
    // Precondition: paused, or the result is only a lower bound.
    virtual void harvest_dirty(DirtyBitmap &into) = 0;
    // Verification only: how many pages were written since the last
    // harvest, read without clearing the log (Xen: SHADOW_OP_PEEK); nullopt
    // where the backend cannot tell without disturbing its log. A frozen
    // guest must say 0, or its copy is not what the backup holds.
    [[nodiscard]] virtual std::optional<std::uint64_t> pages_written_since_harvest() { return std::nullopt; }
    // Copies the given pages, in order, into dst (pfns.size() * kPageSize bytes).
    virtual void read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const = 0;
    // The frames the initial copy sends: all of them, except frames the
    // backend knows are not RAM (a Xen HVM/PVH domain's frames run to its
    // special pages below 4 GiB), which a standby holds as zeros already.
    [[nodiscard]] virtual std::vector<Pfn> frames_to_copy() const
    {
        std::vector<Pfn> all(memory_size() / kPageSize);
        for (std::uint64_t i = 0; i < all.size(); ++i)
            all[i] = Pfn{i};
        return all;
    }

    // Precondition: paused.
    [[nodiscard]] virtual proto::CpuState save_cpu() const = 0;
    [[nodiscard]] virtual proto::DeviceState save_devices() const = 0;

    // The guest's disk, replicated with its memory (ARCHITECTURE.md §7).
    // 0: the guest has no disk.
    [[nodiscard]] virtual std::uint64_t disk_bytes() const { return 0; }
    // Tracks disk writes from now on (drbd/epoch_disk_log.h): first only the
    // regions they touch, for the initial sync; after take_disk_regions(..,
    // true) every write with its data, for the checkpoints.
    virtual void start_disk_log() {}
    virtual void stop_disk_log() {}
    // Moves the regions written since the previous call into `into`; with
    // `then_log`, records every write with its data from this moment on.
    virtual void take_disk_regions(DiskRegions &into, bool then_log)
    {
        (void)then_log;
        into.clear();
    }
    // Moves the writes recorded since the previous call into `into`
    // (`into.incomplete` if there were too many to hold).
    // Precondition: paused, for the writes to match the memory harvested.
    virtual void take_disk_writes(EpochDiskWrites &into) { into.clear(); }
    // Reads whole sectors of the disk as it is now (for the initial sync).
    virtual void read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const = 0;
};

} // namespace understudy
