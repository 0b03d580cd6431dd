// TEST DOUBLE for fault injection: a real StandbyImage (anonymous memory, a
// real replica file) whose disk writes, syncs and CPU-state loads can be made
// to fail as a full or failing disk and an exhausted heap would, and whose
// commits can be held at a gate (a slow disk).
#pragma once

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <new>
#include <system_error>

#include "checkpoint/standby_image.h"

namespace understudy::testing {

class FaultyStandby final : public StandbyImage {
  public:
    enum class Fault {
        none,
        no_space_on_write,         // the 2nd disk write from now fails with ENOSPC, once
        io_error_on_sync,          // the next sync fails with EIO, once
        no_memory_for_cpu,         // the next CPU state load throws bad_alloc, once
        disk_gone,                 // from the 2nd disk write on every write fails with EIO (nothing can be put back)
    };
    using StandbyImage::StandbyImage;

    void arm(Fault fault)
    {
        std::lock_guard lock(mutex_);
        fault_ = fault;
        writes_since_armed_ = 0;
    }
    [[nodiscard]] bool fired() const
    {
        std::lock_guard lock(mutex_);
        return fired_;
    }
    // Commits wait in write_pages (their last step) after a disk write was
    // made, until open(): a copy stalled half-way through its pre-copy.
    void hold_after_disk_write()
    {
        std::lock_guard lock(mutex_);
        hold_ = true;
    }
    void open()
    {
        // Notified under the lock: the waiting commit may go on to destroy
        // this copy as soon as it can run.
        std::lock_guard lock(mutex_);
        hold_ = false;
        gate_.notify_all();
    }
    [[nodiscard]] bool holding() const
    {
        std::lock_guard lock(mutex_);
        return waiting_;
    }

    void write_disk(std::uint64_t sector, std::span<const std::uint8_t> data) override
    {
        {
            std::lock_guard lock(mutex_);
            wrote_ = true;
            ++writes_since_armed_;
            if (fault_ == Fault::no_space_on_write && writes_since_armed_ == 2) {
                fault_ = Fault::none;
                fired_ = true;
                throw std::system_error(ENOSPC, std::generic_category(), "TEST DOUBLE: write replica disk");
            }
            if (fault_ == Fault::disk_gone && writes_since_armed_ >= 2) {
                fired_ = true;
                throw std::system_error(EIO, std::generic_category(), "TEST DOUBLE: write replica disk");
            }
        }
        StandbyImage::write_disk(sector, data);
    }
    void sync_disk() override
    {
        {
            std::lock_guard lock(mutex_);
            if (fault_ == Fault::io_error_on_sync && wrote_) {
                fault_ = Fault::none;
                fired_ = true;
                throw std::system_error(EIO, std::generic_category(), "TEST DOUBLE: sync replica disk");
            }
        }
        StandbyImage::sync_disk();
    }
    void load_cpu(proto::CpuState cpu) override
    {
        {
            std::lock_guard lock(mutex_);
            if (fault_ == Fault::no_memory_for_cpu) {
                fault_ = Fault::none;
                fired_ = true;
                throw std::bad_alloc();
            }
        }
        StandbyImage::load_cpu(std::move(cpu));
    }
    void write_pages(std::span<const Pfn> pfns, std::span<const std::uint8_t> data) override
    {
        {
            std::unique_lock lock(mutex_);
            if (hold_ && wrote_) {
                waiting_ = true;
                gate_.wait(lock, [&] { return !hold_; });
                waiting_ = false;
            }
        }
        StandbyImage::write_pages(pfns, data);
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable gate_;
    Fault fault_ = Fault::none;
    unsigned writes_since_armed_ = 0;
    bool wrote_ = false, fired_ = false, hold_ = false, waiting_ = false;
};

} // namespace understudy::testing
