// The backup's copy of a protected guest: not running, updated only when an
// epoch commits, and turned into a running Guest at failover
// (ARCHITECTURE.md §1, §3).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "checkpoint/guest.h"
#include "checkpoint/pfn.h"
#include "proto/vm_state.pb.h"

namespace understudy {

class StandbyGuest {
  public:
    virtual ~StandbyGuest() = default;

    [[nodiscard]] virtual std::uint64_t memory_size() const = 0;
    [[nodiscard]] std::uint64_t pages() const { return memory_size() / kPageSize; }
    // The committed content of one page. Precondition: pfn < pages().
    [[nodiscard]] virtual std::span<const std::uint8_t> page(Pfn pfn) const = 0;
    // `data` holds pfns.size() whole pages. Precondition: every pfn < pages().
    // Must not fail: it is the last step of a commit (epoch_commit.h).
    virtual void write_pages(std::span<const Pfn> pfns, std::span<const std::uint8_t> data) = 0;
    // Why this CPU state (from the network) cannot be this standby's ("" if
    // it can); checked before an epoch is committed, so a bad one ends the
    // stream and leaves the committed copy as it was.
    [[nodiscard]] virtual std::string cpu_problem(const proto::CpuState &) const { return ""; }
    // The same for device state.
    [[nodiscard]] virtual std::string devices_problem(const proto::DeviceState &) const { return ""; }
    // Loads the state whole, or throws and leaves the standby's CPU state as
    // it was: a commit that fails here puts the disk back and keeps the
    // previous epoch.
    virtual void load_cpu(proto::CpuState cpu) = 0;
    // Must not fail (a move, after load_cpu in a commit).
    virtual void load_devices(proto::DeviceState devices) = 0;

    [[nodiscard]] virtual std::uint64_t disk_bytes() const = 0;
    // Precondition: the sectors lie inside the disk.
    virtual void write_disk(std::uint64_t sector, std::span<const std::uint8_t> data) = 0;
    // Reads committed sectors (a commit keeps those it overwrites, to put
    // them back if it fails). Precondition: the sectors lie inside the disk.
    virtual void read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const = 0;
    // Makes the disk writes so far durable.
    virtual void sync_disk() = 0;

    // This copy has committed its first checkpoint and becomes the guest's
    // standby, replacing an older copy. Until now it kept what it built
    // beside the older copy's (a resync must not change a committed
    // standby's disk); now that moves into place. Throws if it cannot, and
    // the older copy stays the standby.
    virtual void take_place() {}

    // Builds and starts the guest from what is committed (failover).
    // Precondition: a checkpoint epoch has been committed.
    [[nodiscard]] virtual std::unique_ptr<Guest> activate() = 0;
};

} // namespace understudy
