#include "checkpoint/standby_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace understudy {

namespace {
[[noreturn]] void fail(const std::string &what)
{
    throw std::system_error(errno, std::generic_category(), what);
}
} // namespace

StandbyImage::StandbyImage(std::string name, std::uint64_t memory_size, std::uint64_t disk_bytes,
                           const std::filesystem::path &replica, Memory memory)
    : name_(std::move(name)), memory_size_(memory_size), disk_bytes_(disk_bytes), replica_(replica)
{
    if (memory_size == 0 || memory_size % kPageSize)
        throw std::invalid_argument("standby " + name_ + ": memory size " + std::to_string(memory_size) +
                                    " is not a positive multiple of the page size");
    // The standby holds all of guest RAM once synced: commit it now, in one
    // go, rather than fault it in page by page during the first copy.
    const int commit = memory == Memory::committed ? MAP_POPULATE : MAP_NORESERVE;
    void *p = mmap(nullptr, memory_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | commit, -1, 0);
    if (p == MAP_FAILED)
        fail("standby " + name_ + ": reserve " + std::to_string(memory_size) + " bytes of memory");
    base_ = static_cast<std::uint8_t *>(p);
    if (disk_bytes == 0)
        return;
    static std::atomic<std::uint64_t> copies{0};
    disk_path_ = replica;
    disk_path_ += ".syncing." + std::to_string(getpid()) + "." + std::to_string(++copies);
    disk_ = UniqueFd(open(disk_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!disk_) {
        const int e = errno;
        munmap(base_, memory_size_);
        errno = e;
        fail("standby " + name_ + ": create replica disk " + disk_path_.string());
    }
    if (ftruncate(disk_.get(), static_cast<off_t>(disk_bytes)) != 0) {
        const int e = errno;
        unlink(disk_path_.c_str());
        munmap(base_, memory_size_);
        errno = e;
        fail("standby " + name_ + ": size replica disk " + disk_path_.string());
    }
}

StandbyImage::~StandbyImage()
{
    munmap(base_, memory_size_);
    if (disk_ && !placed_)
        unlink(disk_path_.c_str()); // a copy that never committed: nothing refers to its disk
}

void StandbyImage::take_place()
{
    if (!disk_ || placed_)
        return;
    // Durable before it replaces the committed copy's disk, and the rename
    // itself durable in its directory.
    if (fdatasync(disk_.get()) != 0)
        fail("standby " + name_ + ": sync replica disk " + disk_path_.string());
    if (rename(disk_path_.c_str(), replica_.c_str()) != 0)
        fail("standby " + name_ + ": move replica disk " + disk_path_.string() + " onto " + replica_.string());
    disk_path_ = replica_;
    placed_ = true;
    const auto dir = replica_.has_parent_path() ? replica_.parent_path() : std::filesystem::path(".");
    UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || fsync(d.get()) != 0)
        fail("standby " + name_ + ": sync directory " + dir.string() + " after moving the replica disk into place");
}

std::span<const std::uint8_t> StandbyImage::page(Pfn pfn) const
{
    return {base_ + pfn.address(), kPageSize};
}

void StandbyImage::write_pages(std::span<const Pfn> pfns, std::span<const std::uint8_t> data)
{
    for (std::size_t i = 0; i < pfns.size(); ++i)
        std::memcpy(base_ + pfns[i].address(), data.data() + i * kPageSize, kPageSize);
}

void StandbyImage::write_disk(std::uint64_t sector, std::span<const std::uint8_t> data)
{
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(disk_.get(), data.data() + done, data.size() - done,
                             static_cast<off_t>(sector * 512 + done));
        if (n <= 0)
            fail("standby " + name_ + ": write replica disk " + disk_path_.string());
        done += static_cast<std::size_t>(n);
    }
}

void StandbyImage::read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const
{
    std::size_t done = 0;
    while (done < into.size()) {
        ssize_t n = ::pread(disk_.get(), into.data() + done, into.size() - done,
                            static_cast<off_t>(sector * 512 + done));
        if (n < 0)
            fail("standby " + name_ + ": read replica disk " + disk_path_.string());
        if (n == 0) { // past its end (it was truncated under us): what is not there reads as zeros
            std::memset(into.data() + done, 0, into.size() - done);
            return;
        }
        done += static_cast<std::size_t>(n);
    }
}

void StandbyImage::sync_disk()
{
    if (disk_ && fdatasync(disk_.get()) != 0)
        fail("standby " + name_ + ": sync replica disk " + disk_path_.string());
}

std::unique_ptr<Guest> StandbyImage::activate()
{
    throw std::logic_error("standby " + name_ + ": this standby copy has no hypervisor backend to run it");
}

} // namespace understudy
