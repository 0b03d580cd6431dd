#include "checkpoint/kvm/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <sstream>

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

namespace {
std::string hex(std::uint64_t v)
{
    std::ostringstream s;
    s << "0x" << std::hex << v;
    return s.str();
}
} // namespace

GuestMemory::GuestMemory(std::uint64_t size, const std::string &name) : size_(size), vmm_dirty_(size / kPageSize)
{
    if (size == 0 || size % kPageSize)
        throw KvmError("guest memory of " + name + ": size " + std::to_string(size) +
                       " is not a positive multiple of the page size");
    fd_ = memfd_create(("understudy-ram-" + name).c_str(), MFD_CLOEXEC);
    if (fd_ < 0)
        throw system_error("guest memory of " + name + ": memfd_create");
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        int err = errno;
        close(fd_);
        throw system_error("guest memory of " + name + ": ftruncate to " + std::to_string(size) + " bytes", err);
    }
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        close(fd_);
        throw system_error("guest memory of " + name + ": mmap of " + std::to_string(size) + " bytes", err);
    }
    base_ = static_cast<std::uint8_t *>(p);
}

GuestMemory::~GuestMemory()
{
    if (base_)
        munmap(base_, size_);
    if (fd_ >= 0)
        close(fd_);
}

void GuestMemory::check(std::uint64_t gpa, std::uint64_t len, const char *what) const
{
    if (gpa > size_ || len > size_ - gpa)
        throw GuestFault(std::string(what) + ": guest range " + hex(gpa) + "+" + hex(len) + " is outside guest RAM (" +
                         std::to_string(size_ >> 20) + " MiB)");
}

std::span<const std::uint8_t> GuestMemory::read_view(std::uint64_t gpa, std::uint64_t len, const char *what) const
{
    check(gpa, len, what);
    return {base_ + gpa, len};
}

std::span<std::uint8_t> GuestMemory::write_view(std::uint64_t gpa, std::uint64_t len, const char *what)
{
    check(gpa, len, what);
    vmm_dirty_.set_range(gpa, len);
    return {base_ + gpa, len};
}

} // namespace understudy::kvm
