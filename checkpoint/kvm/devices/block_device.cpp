#include "checkpoint/kvm/devices/block_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

BlockImage::BlockImage(const std::filesystem::path &path, std::uint64_t create_bytes) : path_(path)
{
    const std::string who = "disk image " + path.string();
    fd_ = UniqueFd(open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd_ && errno == ENOENT) {
        if (create_bytes == 0 || create_bytes % US_SECTOR_SIZE)
            throw KvmError(who + ": does not exist, and the size to create it with (" + std::to_string(create_bytes) +
                           " bytes) is not a positive multiple of " + std::to_string(US_SECTOR_SIZE));
        fd_ = UniqueFd(open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (fd_ && ftruncate(fd_.get(), static_cast<off_t>(create_bytes)) != 0)
            throw system_error(who + ": ftruncate");
    }
    if (!fd_)
        throw system_error(who + ": open");
    struct stat st {};
    if (fstat(fd_.get(), &st) != 0)
        throw system_error(who + ": fstat");
    if (st.st_size <= 0 || st.st_size % US_SECTOR_SIZE)
        throw KvmError(who + ": size " + std::to_string(st.st_size) + " is not a positive multiple of " +
                       std::to_string(US_SECTOR_SIZE));
    sectors_ = static_cast<std::uint64_t>(st.st_size) / US_SECTOR_SIZE;
}

BlockDevice::BlockDevice(std::shared_ptr<BlockImage> image) : image_(std::move(image)) {}

void BlockDevice::attach(HypercallTable &table, GuestMemory &memory)
{
    table.add(US_HC_BLOCK_READ, [this, &memory](std::uint64_t gpa) { transfer(memory, gpa, false); });
    table.add(US_HC_BLOCK_WRITE, [this, &memory](std::uint64_t gpa) { transfer(memory, gpa, true); });
}

void BlockDevice::transfer(GuestMemory &memory, std::uint64_t gpa, bool write)
{
    const char *what = write ? "block write" : "block read";
    auto args = memory.read_struct<us_hc_block_io>(gpa, what);
    if (args.len == 0 || args.len % US_SECTOR_SIZE || args.len > US_MAX_BLOCK_IO)
        throw GuestFault(std::string(what) + " of " + std::to_string(args.len) +
                         " bytes (must be whole sectors, at most " + std::to_string(US_MAX_BLOCK_IO) + ")");
    const std::uint64_t count = args.len / US_SECTOR_SIZE;
    if (!image_ || args.sector > image_->sectors() || count > image_->sectors() - args.sector) {
        args.ret = US_EINVAL; // like a disk: past the end is an I/O error for the guest, not a crash
        memory.write_struct(gpa, args, what);
        return;
    }
    const auto offset = static_cast<off_t>(args.sector * US_SECTOR_SIZE);
    ssize_t done;
    if (write) {
        auto src = memory.read_view(args.data, args.len, what);
        done = ::pwrite(image_->fd(), src.data(), src.size(), offset);
        if (done == static_cast<ssize_t>(args.len))
            log_.record(args.sector, src);
    } else {
        auto dst = memory.write_view(args.data, args.len, what);
        done = ::pread(image_->fd(), dst.data(), dst.size(), offset);
    }
    args.ret = done == static_cast<ssize_t>(args.len) ? US_OK : US_EIO;
    memory.write_struct(gpa, args, what);
}

void BlockDevice::read(std::uint64_t sector, std::span<std::uint8_t> into) const
{
    const std::uint64_t count = into.size() / US_SECTOR_SIZE;
    if (into.size() % US_SECTOR_SIZE || sector > sectors() || count > sectors() - sector)
        throw KvmError("read disk sectors " + std::to_string(sector) + "+" + std::to_string(count) + " of " +
                       std::to_string(sectors()) + ": out of range or not whole sectors");
    std::size_t done = 0;
    while (done < into.size()) {
        ssize_t n = ::pread(image_->fd(), into.data() + done, into.size() - done,
                            static_cast<off_t>(sector * US_SECTOR_SIZE + done));
        if (n <= 0)
            throw system_error("read disk image " + image_->path().string());
        done += static_cast<std::size_t>(n);
    }
}

proto::BlockState BlockDevice::save() const
{
    proto::BlockState s;
    s.set_sectors(sectors());
    return s;
}

} // namespace understudy::kvm
