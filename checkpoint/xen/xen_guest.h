// A running Xen domain (HVM, PVH or 64-bit PV) as the engine's Guest: stopped
// by Xen or suspended through its PV drivers (checkpoint_way.h),
// dirty pages from Xen's log-dirty mode (xc_shadow_control /
// xc_logdirty_control CLEAN), pages read through one xenforeignmemory mapping
// of all guest memory kept across epochs (Remus measured mapping to cost as
// much as copying), CPU and platform state from xc_domain_hvm_getcontext,
// the HVM parameters, the TSC settings and the CPUID/MSR policy
// (cpu_policy.h; ARCHITECTURE.md §1). A PV domain's memory is mapped through
// its own p2m, its page tables leave with machine frames turned into pfns,
// and its vCPUs are saved as Xen's PV save does (pv_p2m.h, pv_page_table.h,
// pv_state.h). Its disks are replicated by DRBD, not by the engine's disk log.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "checkpoint/guest.h"
#include "checkpoint/xen/checkpoint_way.h"
#include "checkpoint/xen/hypercall_buffer.h"
#include "checkpoint/xen/pv_p2m.h"
#include "checkpoint/xen/pv_page_table.h"
#include "checkpoint/xen/xen_session.h"

struct xc_hypercall_buffer;

namespace understudy::xen {

class QmpMonitor;

class XenGuest final : public Guest {
  public:
    // Opens running domain `domid`. Throws XenError if it is gone, or is a
    // PV domain that cannot be protected (32-bit, checkpoint = pause, a p2m
    // published only as a virtual list; docs/xen.md says why).
    XenGuest(std::shared_ptr<XenSession> xen, std::uint32_t domid, CheckpointWay way = CheckpointWay::pause);
    // Leaves the domain as it found it: log-dirty off, unpaused (or resumed)
    // if it paused (or suspended) it.
    ~XenGuest() override;
    XenGuest(const XenGuest &) = delete;
    XenGuest &operator=(const XenGuest &) = delete;

    const std::string &name() const override { return facts_.name; }
    std::uint64_t memory_size() const override { return facts_.pages * kPageSize; }
    void pause() override;
    void resume() override;
    // Pauses the domain, then destroys it through libxenlight (xl destroy).
    void stop_for_good() override;
    void enable_dirty_log() override;
    void disable_dirty_log() override;
    void harvest_dirty(DirtyBitmap &into) override;
    // xc_logdirty_control(PEEK): the log as it is, left as it is.
    [[nodiscard]] std::optional<std::uint64_t> pages_written_since_harvest() override;
    void read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const override;
    // Every frame but those known not to be RAM (holes, the MMIO window).
    [[nodiscard]] std::vector<Pfn> frames_to_copy() const override;
    proto::CpuState save_cpu() const override;
    proto::DeviceState save_devices() const override;
    void read_disk(std::uint64_t sector, std::span<std::uint8_t> into) const override;

    [[nodiscard]] std::uint32_t domid() const noexcept { return facts_.domid; }
    [[nodiscard]] const DomainFacts &facts() const noexcept { return facts_; }
    [[nodiscard]] bool dirty_log_enabled() const noexcept { return log_dirty_; }
    [[nodiscard]] CheckpointWay checkpoint_way() const noexcept { return way_; }
    // How pages are read: "one mapping of all memory" or "a mapping per batch".
    [[nodiscard]] std::string mapping_mode() const;

  private:
    struct Mapping {
        std::uint64_t first = 0, count = 0;
        void *base = nullptr;
        std::vector<int> err; // per page: 0 mapped, else not RAM (read as zeros)
    };
    void map_all();
    [[nodiscard]] std::uint64_t ram_pages_now() const;
    void follow_memory_changes();
    void open_pv();
    void read_p2m();
    void follow_pv_p2m(DirtyBitmap &into);
    [[nodiscard]] const shared_info_x86_64 &shared_info() const;
    // The frame a foreign mapping takes: the pfn, or a PV guest's machine frame.
    [[nodiscard]] std::uint64_t frame_of(std::uint64_t pfn) const
    {
        return !pv_ ? pfn : p2m_.has_frame(pfn) ? p2m_.mfns[pfn] : kNoFrame;
    }
    void normalise_pv_pages(std::span<const Pfn> pfns, std::uint8_t *dst) const;
    void save_pv_state(proto::XenPvState &pv) const;
    void find_not_ram();
    void note_not_ram(std::uint64_t pfn);
    void unmap_all() noexcept;
    void read_batch(std::span<const Pfn> pfns, std::uint8_t *dst) const;
    // The device model state QEMU wrote into `fd` (`where`: for messages).
    std::string read_device_model_state(int fd, const std::string &where) const;
    void stop_device_model();
    void continue_device_model();
    void free_bitmap() noexcept;

    std::shared_ptr<XenSession> xen_;
    DomainFacts facts_;
    proto::XenCpuState cpu_policy_; // CPUID and MSR policy: fixed once the domain has run
    google::protobuf::RepeatedPtrField<proto::PfnRange> not_ram_; // frames that are not RAM, in runs
    std::uint64_t ram_pages_ = 0; // the domain's page count when they were found
    CheckpointWay way_;
    bool paused_by_us_ = false;
    bool suspended_by_us_ = false;
    bool shut_down_by_us_ = false; // HVM, checkpoint = pause: Xen's suspend shutdown
    void shut_down_for_checkpoint();
    void resume_from_shutdown();
    // HVM with checkpoint = pause: QEMU is stopped for each checkpoint, as
    // libxl stops it to save a domain: one monitor connection from the
    // pause until its devices are saved, one more to continue it at the
    // resume (none held while an epoch waits for its ack or the guest is
    // frozen: QEMU serves one client at a time, and xl needs it too).
    mutable std::unique_ptr<QmpMonitor> device_model_;
    bool device_model_stopped_ = false;
    bool log_dirty_ = false;
    std::vector<Mapping> mappings_;
    bool per_batch_ = false;
    void *bitmap_ = nullptr; // the hypercall buffer xc_logdirty_control fills
    std::unique_ptr<::xc_hypercall_buffer> bitmap_buffer_;
    std::uint64_t bitmap_pages_ = 0;
    std::unique_ptr<HypercallBuffer> peek_buffer_; // PEEK's own: a harvest may run meanwhile

    // PV only.
    bool pv_ = false;
    PvP2m p2m_;
    void *shared_info_ = nullptr; // mapped read-only while protected
    std::unique_ptr<HypercallBuffer> types_buffer_;
    // Read along with the pages (read_pages is the only place types are
    // asked for): the frames that are page tables now, and the frames whose
    // page table could not be normalised while the guest ran (read again).
    mutable PageTableMap page_tables_;
    // Frames whose type changed since the last checkpoint (0: no longer a
    // page table), and whether this stream was sent the complete list.
    mutable PageTableMap table_changes_;
    mutable bool complete_tables_sent_ = false;
    void set_page_type(std::uint64_t pfn, std::uint32_t type) const;
    mutable std::vector<std::uint64_t> read_again_;
};

// The HVM parameters carried with the CPU state: the ones Xen's own save
// stream carries (xg_sr_save_x86_hvm.c); event channels are not among them.
[[nodiscard]] std::span<const std::uint32_t> carried_hvm_params();

} // namespace understudy::xen
