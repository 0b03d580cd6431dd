#include "checkpoint/kvm/kvm_guest.h"

#include <cstring>
#include <iostream>

#include "checkpoint/kvm/elf_loader.h"
#include "checkpoint/kvm/kvm_error.h"
#include "checkpoint/kvm/page_tables.h"
#include "checkpoint/kvm/vcpu_state.h"

namespace understudy::kvm {

namespace {

ConsoleDevice::Sink console_sink(const KvmGuestConfig &config)
{
    if (config.console)
        return config.console;
    return
        [](std::string_view text) { std::cout.write(text.data(), static_cast<std::streamsize>(text.size())).flush(); };
}

us_boot_info boot_info(const KvmGuestConfig &config, std::uint64_t image_end, std::uint64_t sectors)
{
    if (config.cmdline.size() >= US_CMDLINE_MAX)
        throw KvmError("guest " + config.name + ": command line of " + std::to_string(config.cmdline.size()) +
                       " characters (at most " + std::to_string(US_CMDLINE_MAX - 1) + ")");
    us_boot_info info{};
    info.magic = US_BOOT_MAGIC;
    info.abi_version = US_ABI_VERSION;
    info.mem_size = config.memory_bytes;
    info.image_end = image_end;
    std::memcpy(info.mac, config.mac.data(), sizeof(info.mac));
    info.udp_port = config.udp_port;
    info.ipv4 = config.ipv4;
    info.netmask = config.netmask;
    info.block_sectors = sectors;
    info.dirty_pages_per_second = config.dirty_pages_per_second;
    std::memcpy(info.cmdline, config.cmdline.c_str(), config.cmdline.size() + 1);
    return info;
}

} // namespace

KvmGuest::KvmGuest(KvmGuestConfig config)
    : config_(std::move(config)), memory_(config_.memory_bytes, config_.name), vm_(memory_, config_.name),
      console_(console_sink(config_)), net_(config_.tap, config_.mac), block_(config_.disk),
      runner_(vm_.vcpu_fd(), vm_.run(), config_.name,
              [this](std::uint16_t port, std::uint32_t value) { hypercalls_.dispatch(port, value); })
{
    console_.attach(hypercalls_, memory_);
    clock_.attach(hypercalls_, memory_);
    net_.attach(hypercalls_, memory_, runner_.wake_fd());
    block_.attach(hypercalls_, memory_);
    hypercalls_.add(US_HC_HALT, [this](std::uint64_t gpa) {
        throw GuestHalt{memory_.read_struct<us_hc_halt>(gpa, "halt arguments").status};
    });
}

KvmGuest::~KvmGuest()
{
    runner_.stop();
}

std::unique_ptr<KvmGuest> KvmGuest::boot(KvmGuestConfig config)
{
    auto file = read_file(config.kernel);
    auto image = parse_elf(file);
    std::unique_ptr<KvmGuest> guest(new KvmGuest(std::move(config)));
    load_elf(image, file, guest->memory_);
    auto tables = build_long_mode_tables(guest->memory_);
    guest->memory_.write_struct(US_BOOT_INFO_GPA, boot_info(guest->config_, image.end, guest->block_.sectors()),
                                "boot info");
    set_long_mode_entry(guest->vm_.vcpu_fd(), tables, image.entry, US_BOOT_INFO_GPA);
    guest->runner_.start(false);
    return guest;
}

std::unique_ptr<KvmGuest> KvmGuest::restore(KvmGuestConfig config, const Snapshot &snapshot)
{
    return restore(std::move(config), snapshot.memory, snapshot.cpu, snapshot.devices);
}

std::unique_ptr<KvmGuest> KvmGuest::restore(KvmGuestConfig config, std::span<const std::uint8_t> memory,
                                            const proto::CpuState &cpu, const proto::DeviceState &devices)
{
    if (memory.size() != config.memory_bytes)
        throw KvmError("restore guest " + config.name + ": snapshot holds " + std::to_string(memory.size()) +
                       " bytes of RAM, the VM has " + std::to_string(config.memory_bytes));
    if (cpu.format() != kKvmCpuStateFormat || !cpu.has_kvm() || cpu.kvm().vcpus_size() != 1)
        throw KvmError("restore guest " + config.name + ": CPU state is not format " +
                       std::to_string(kKvmCpuStateFormat) + " of the kvm backend with one vCPU");
    if (devices.format() != kKvmDeviceStateFormat)
        throw KvmError("restore guest " + config.name + ": device state format " + std::to_string(devices.format()) +
                       " is not " + std::to_string(kKvmDeviceStateFormat));
    auto vcpu = from_proto(cpu.kvm().vcpus(0));
    std::unique_ptr<KvmGuest> guest(new KvmGuest(std::move(config)));
    if (devices.block().sectors() != guest->block_.sectors())
        throw KvmError("restore guest " + guest->config_.name + ": the saved disk had " +
                       std::to_string(devices.block().sectors()) + " sectors, the attached one has " +
                       std::to_string(guest->block_.sectors()));
    std::memcpy(guest->memory_.host_base(), memory.data(), memory.size());
    load_vcpu(guest->vm_.vcpu_fd(), vcpu);
    guest->clock_.restore(devices.clock());
    guest->net_.note_restored();
    guest->runner_.start(true);
    return guest;
}

void KvmGuest::require_paused(const char *what) const
{
    if (!runner_.paused() && !runner_.stopped())
        throw KvmError(std::string(what) + " of guest " + config_.name + ": the guest is running; pause it first");
}

Snapshot KvmGuest::snapshot() const
{
    require_paused("snapshot");
    Snapshot s;
    s.memory.assign(memory_.host_base(), memory_.host_base() + memory_.size());
    s.cpu = save_cpu();
    s.devices = save_devices();
    return s;
}

void KvmGuest::pause()
{
    runner_.pause();
}
void KvmGuest::resume()
{
    runner_.resume();
}

void KvmGuest::enable_dirty_log()
{
    vm_.set_dirty_logging(true);
    // Start from a clean slate: everything before this point is not a change.
    DirtyBitmap discard(memory_.pages());
    vm_.harvest_dirty_log(discard);
    memory_.vmm_dirty().clear();
}

void KvmGuest::harvest_dirty(DirtyBitmap &into)
{
    if (into.pages() != memory_.pages())
        throw KvmError("harvest dirty log of guest " + config_.name + ": bitmap covers " +
                       std::to_string(into.pages()) + " pages, the guest has " + std::to_string(memory_.pages()));
    vm_.harvest_dirty_log(into);
    memory_.vmm_dirty().drain_into(into);
}

void KvmGuest::read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const
{
    if (dst.size() < pfns.size() * kPageSize)
        throw KvmError("read pages of guest " + config_.name + ": destination holds " + std::to_string(dst.size()) +
                       " bytes, " + std::to_string(pfns.size()) + " pages need " +
                       std::to_string(pfns.size() * kPageSize));
    for (std::size_t i = 0; i < pfns.size(); ++i) {
        if (pfns[i].value >= memory_.pages())
            throw KvmError("read pages of guest " + config_.name + ": page " + std::to_string(pfns[i].value) +
                           " is past the end of RAM");
        std::memcpy(dst.data() + i * kPageSize, memory_.host_base() + pfns[i].address(), kPageSize);
    }
}

void KvmGuest::take_disk_writes(EpochDiskWrites &into)
{
    require_paused("take disk writes");
    block_.write_log().take(into);
}

proto::CpuState KvmGuest::save_cpu() const
{
    require_paused("save CPU state");
    proto::CpuState s;
    s.set_format(kKvmCpuStateFormat);
    *s.mutable_kvm()->add_vcpus() = to_proto(save_vcpu(vm_.vcpu_fd()));
    return s;
}

proto::DeviceState KvmGuest::save_devices() const
{
    require_paused("save device state");
    proto::DeviceState s;
    s.set_format(kKvmDeviceStateFormat);
    *s.mutable_clock() = clock_.save();
    *s.mutable_net() = net_.save();
    *s.mutable_block() = block_.save();
    return s;
}

} // namespace understudy::kvm
