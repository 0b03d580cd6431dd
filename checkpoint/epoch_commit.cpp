#include "checkpoint/epoch_commit.h"

namespace understudy {

namespace {

std::string what_of(const std::exception_ptr &e)
{
    try {
        std::rethrow_exception(e);
    } catch (const std::bad_alloc &) {
        return "out of memory";
    } catch (const std::exception &x) {
        return x.what();
    } catch (...) {
        return "unknown error";
    }
}

} // namespace

void EpochCommitter::write_disk(const ReceivedEpoch &epoch, StandbyGuest &standby)
{
    std::size_t offset = 0;
    for (const auto &w : epoch.disk.writes) {
        const std::size_t bytes = std::size_t{w.sectors} * kSectorSize;
        standby.write_disk(w.sector, {epoch.disk.data.data() + offset, bytes});
        offset += bytes;
    }
    standby.sync_disk();
}

std::string EpochCommitter::restore_disk(const ReceivedEpoch &epoch, StandbyGuest &standby) noexcept
{
    try {
        // Backwards, so that where writes of one epoch overlap, the oldest
        // content is what remains.
        std::size_t offset = overwritten_.size();
        for (auto w = epoch.disk.writes.rbegin(); w != epoch.disk.writes.rend(); ++w) {
            const std::size_t bytes = std::size_t{w->sectors} * kSectorSize;
            offset -= bytes;
            standby.write_disk(w->sector, {overwritten_.data() + offset, bytes});
        }
        standby.sync_disk();
        return "";
    } catch (...) {
        return what_of(std::current_exception());
    }
}

void EpochCommitter::commit(ReceivedEpoch &epoch, StandbyGuest &standby, Undo undo)
{
    const std::string which = "commit of epoch " + std::to_string(epoch.epoch.value);
    const bool has_disk = !epoch.disk.empty();
    // 1. What can fail without changing anything: room for the sectors the
    // disk writes overwrite, and reading them.
    if (has_disk && undo == Undo::keep) {
        try {
            overwritten_.resize(epoch.disk.data.size());
            std::size_t offset = 0;
            for (const auto &w : epoch.disk.writes) {
                const std::size_t bytes = std::size_t{w.sectors} * kSectorSize;
                standby.read_disk(w.sector, {overwritten_.data() + offset, bytes});
                offset += bytes;
            }
        } catch (...) {
            throw CommitFailed(which + ": keeping the sectors it overwrites: " + what_of(std::current_exception()));
        }
    }
    // 2. The disk writes, made durable.
    if (has_disk) {
        try {
            write_disk(epoch, standby);
        } catch (...) {
            const std::string why = what_of(std::current_exception());
            if (undo == Undo::none)
                throw CommitFailed(which + ": " + why);
            if (auto failed = restore_disk(epoch, standby); !failed.empty())
                throw StandbyDamaged(which + ": " + why + "; putting the overwritten sectors back failed too (" +
                                     failed + "): the standby's disk is neither this epoch nor the previous one");
            throw CommitFailed(which + ": " + why + "; the overwritten sectors were put back");
        }
    }
    // 3. The CPU state: loaded whole or not at all (StandbyGuest::load_cpu).
    if (epoch.cpu) {
        try {
            standby.load_cpu(std::move(*epoch.cpu));
        } catch (...) {
            const std::string why = what_of(std::current_exception());
            if (has_disk && undo == Undo::keep) {
                if (auto failed = restore_disk(epoch, standby); !failed.empty())
                    throw StandbyDamaged(which + ": CPU state: " + why + "; putting the disk back failed (" + failed +
                                         "): the standby's disk is neither this epoch nor the previous one");
            }
            throw CommitFailed(which + ": CPU state: " + why);
        }
    }
    // 4. From here nothing can fail: a move and copies in memory.
    if (epoch.devices)
        standby.load_devices(std::move(*epoch.devices));
    standby.write_pages(epoch.pfns, epoch.pages);
}

} // namespace understudy
