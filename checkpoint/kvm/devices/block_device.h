// The guest disk: read and write whole sectors of an image file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "checkpoint/kvm/guest_memory.h"
#include "checkpoint/kvm/hypercall_table.h"
#include "checkpoint/unique_fd.h"
#include "drbd/epoch_disk_log.h"
#include "proto/vm_state.pb.h"

namespace understudy::kvm {

class BlockImage {
  public:
    // Opens `path`; creates it as a sparse file of `create_bytes` if it does
    // not exist. The size must be a positive multiple of the sector size.
    BlockImage(const std::filesystem::path &path, std::uint64_t create_bytes);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] std::uint64_t sectors() const noexcept { return sectors_; }
    [[nodiscard]] const std::filesystem::path &path() const noexcept { return path_; }

  private:
    std::filesystem::path path_;
    UniqueFd fd_;
    std::uint64_t sectors_ = 0;
};

class BlockDevice {
  public:
    explicit BlockDevice(std::shared_ptr<BlockImage> image);

    void attach(HypercallTable &table, GuestMemory &memory);
    [[nodiscard]] std::uint64_t sectors() const noexcept { return image_ ? image_->sectors() : 0; }
    [[nodiscard]] proto::BlockState save() const;
    // Every completed guest write is also recorded here (for replication).
    [[nodiscard]] DiskWriteLog &write_log() noexcept { return log_; }
    // Reads whole sectors of the image; throws KvmError past its end.
    void read(std::uint64_t sector, std::span<std::uint8_t> into) const;

  private:
    void transfer(GuestMemory &memory, std::uint64_t gpa, bool write);

    std::shared_ptr<BlockImage> image_;
    DiskWriteLog log_;
};

} // namespace understudy::kvm
