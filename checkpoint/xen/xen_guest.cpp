#include "checkpoint/xen/xen_guest.h"

#include "checkpoint/stream/record.h"
#include "checkpoint/unique_fd.h"
#include "checkpoint/xen/cpu_policy.h"
#include "checkpoint/xen/device_model_state.h"
#include "checkpoint/xen/pv_page_table.h"
#include "checkpoint/xen/pv_state.h"
#include "checkpoint/xen/qmp_client.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

extern "C" {
#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xen/hvm/params.h>
}

namespace understudy::xen {

namespace {

constexpr std::uint64_t kMapChunkPages = 32768; // 128 MiB per foreign mapping
constexpr std::size_t kBatchPages = 1024;       // per-batch mode
constexpr std::chrono::milliseconds kQmpTimeout{5000}; // QEMU saving its devices: milliseconds, normally

constexpr std::uint32_t kCarriedParams[] = {
    HVM_PARAM_STORE_PFN,         HVM_PARAM_IOREQ_PFN,           HVM_PARAM_BUFIOREQ_PFN,
    HVM_PARAM_PAGING_RING_PFN,   HVM_PARAM_MONITOR_RING_PFN,    HVM_PARAM_SHARING_RING_PFN,
    HVM_PARAM_VM86_TSS_SIZED,    HVM_PARAM_CONSOLE_PFN,         HVM_PARAM_ACPI_IOPORTS_LOCATION,
    HVM_PARAM_VIRIDIAN,          HVM_PARAM_IDENT_PT,            HVM_PARAM_VM_GENERATION_ID_ADDR,
    HVM_PARAM_IOREQ_SERVER_PFN,  HVM_PARAM_NR_IOREQ_SERVER_PAGES, HVM_PARAM_X87_FIP_WIDTH,
    HVM_PARAM_MCA_CAP,
};

// A libxl error code with its name ("-8 guest_timedout").
std::string libxl_error_text(int rc)
{
    const char *name = libxl_error_to_string(static_cast<libxl_error>(rc));
    return std::to_string(rc) + (name ? std::string(" ") + name : std::string());
}

std::uint64_t bitmap_bytes(std::uint64_t pages)
{
    return (pages + 63) / 64 * 8;
}

} // namespace

std::span<const std::uint32_t> carried_hvm_params()
{
    return kCarriedParams;
}

XenGuest::XenGuest(std::shared_ptr<XenSession> xen, std::uint32_t domid, CheckpointWay way)
    : xen_(std::move(xen)), facts_(describe_domain(*xen_, domid)), way_(way)
{
    if (std::uint32_t target = 0; libxl_is_stubdom(xen_->libxl(), facts_.domid, &target))
        throw XenError("domain " + facts_.name + " is the device model stub domain of domain " +
                           std::to_string(target) + ": protect that domain (libxl saves and rebuilds its stub domain "
                           "with it)",
                       EINVAL);
    if (facts_.type == "hvm" && way_ == CheckpointWay::pause)
        if (const int stub = libxl_get_stubdom_id(xen_->libxl(), static_cast<int>(facts_.domid)); stub > 0)
            throw XenError("HVM domain " + facts_.name + " runs its device model in stub domain " +
                               std::to_string(stub) +
                               ": with checkpoint = pause, understudy has QEMU save its state into a descriptor "
                               "passed through QEMU's monitor in Dom0, which a stub domain cannot receive; use "
                               "checkpoint = suspend, where libxl saves a stub domain's QEMU itself",
                           EOPNOTSUPP);
    if (facts_.type == "pv")
        open_pv();
    else if (facts_.type != "hvm" && facts_.type != "pvh")
        throw XenError("domain " + facts_.name + " has a domain type understudy does not know", EOPNOTSUPP);
    read_cpu_policy(*xen_, facts_.domid, cpu_policy_);
}

void XenGuest::open_pv()
{
    if (way_ != CheckpointWay::suspend)
        throw XenError("domain " + facts_.name + " is a PV guest, which needs checkpoint = suspend: Xen's restore "
                       "finds a PV guest's start info page through the record its suspend leaves (vCPU 0's rdx), "
                       "so only a suspended PV guest can be restored on the backup",
                       EINVAL);
    unsigned width = 0;
    if (xc_domain_get_guest_width(xen_->xc(), facts_.domid, &width) != 0)
        throw_xen_error("xc_domain_get_guest_width", facts_.domid, errno);
    if (width != 8)
        throw XenError("domain " + facts_.name + " is a " + std::to_string(width * 8) +
                           "-bit PV guest; understudy protects 64-bit PV guests (and HVM and PVH of any width)",
                       EOPNOTSUPP);
    xc_dominfo_t info{};
    const int n = xc_domain_getinfo(xen_->xc(), facts_.domid, 1, &info);
    if (n != 1 || info.domid != facts_.domid)
        throw_xen_error("xc_domain_getinfo", facts_.domid, n < 0 ? errno : ESRCH);
    xen_pfn_t frame = info.shared_info_frame;
    int err = 0;
    shared_info_ = xenforeignmemory_map(xen_->foreign(), facts_.domid, PROT_READ, 1, &frame, &err);
    if (!shared_info_ || err != 0) {
        const int error = shared_info_ ? -err : errno;
        if (shared_info_)
            xenforeignmemory_unmap(xen_->foreign(), shared_info_, 1);
        shared_info_ = nullptr;
        throw_xen_error("xenforeignmemory_map (shared info frame " + std::to_string(frame) + ")", facts_.domid, error);
    }
    pv_ = true;
    // Its p2m is read when protection starts (read_p2m): a guest just
    // restored publishes it again only once it runs.
}

void XenGuest::read_p2m()
{
    auto now = read_pv_p2m(*xen_, facts_.domid, facts_.name, shared_info(), facts_.pages);
    if (now.max_pfn + 1 != facts_.pages)
        throw XenError("PV domain " + facts_.name + ": its p2m covers " + std::to_string(now.max_pfn + 1) +
                           " frames, Xen says it has " + std::to_string(facts_.pages),
                       ERANGE);
    if (now.mfns != p2m_.mfns)
        unmap_all(); // mapped again below, through the p2m as it is now
    p2m_ = std::move(now);
    page_tables_.clear(); // the first copy reads every page's type again
    table_changes_.clear();
    complete_tables_sent_ = false; // a new stream: its first checkpoint lists them all
    read_again_.clear();
    if (!types_buffer_)
        types_buffer_ = std::make_unique<HypercallBuffer>(xen_->xc(), kTypeBatch * sizeof(xen_pfn_t));
}

const shared_info_x86_64 &XenGuest::shared_info() const
{
    return *static_cast<const shared_info_x86_64 *>(shared_info_);
}

XenGuest::~XenGuest()
{
    try {
        disable_dirty_log();
    } catch (const std::exception &e) {
        xen_->log("domain " + facts_.name + ": " + e.what());
    }
    unmap_all();
    if (shared_info_)
        xenforeignmemory_unmap(xen_->foreign(), shared_info_, 1);
    if (device_model_stopped_) {
        try {
            continue_device_model();
        } catch (const std::exception &e) {
            xen_->log(e.what());
        }
    }
    if (paused_by_us_ && xc_domain_unpause(xen_->xc(), facts_.domid) != 0)
        xen_->log("domain " + facts_.name + ": xc_domain_unpause failed: " + std::strerror(errno));
    if (shut_down_by_us_ && xc_domain_resume(xen_->xc(), facts_.domid, 0) != 0)
        xen_->log("domain " + facts_.name + ": xc_domain_resume failed: " + std::strerror(errno));
    if (suspended_by_us_)
        if (int rc = libxl_domain_resume(xen_->libxl(), facts_.domid, 1, nullptr); rc != 0)
            xen_->log("domain " + facts_.name + ": libxl_domain_resume failed (libxl error " + libxl_error_text(rc) +
                      "): it stays suspended");
}

void XenGuest::pause()
{
    if (way_ == CheckpointWay::suspend) {
        if (int rc = libxl_domain_suspend_only(xen_->libxl(), facts_.domid, nullptr); rc != 0) {
            std::string why = "libxl_domain_suspend_only of domain " + std::to_string(facts_.domid) + " (" +
                              facts_.name + ") failed (libxl error " + libxl_error_text(rc) + ")";
            if (rc == ERROR_DOMAIN_NOTFOUND)
                throw XenError(why + ": the domain no longer exists", ESRCH);
            if (rc == ERROR_GUEST_TIMEDOUT)
                why += ": the guest did not suspend in time";
            throw XenError(why + "; checkpoint = suspend needs PV drivers in the guest that answer suspend "
                                 "requests (xenstore control/shutdown or a suspend event channel): use "
                                 "checkpoint = pause for a guest without them",
                           rc == ERROR_GUEST_TIMEDOUT ? ETIMEDOUT : EIO);
        }
        suspended_by_us_ = true;
        return;
    }
    if (facts_.type != "hvm") {
        if (xc_domain_pause(xen_->xc(), facts_.domid) != 0)
            throw_xen_error("xc_domain_pause", facts_.domid, errno);
        paused_by_us_ = true;
        return;
    }
    shut_down_for_checkpoint();
    try {
        stop_device_model();
    } catch (...) {
        try {
            resume_from_shutdown();
        } catch (const std::exception &e) {
            xen_->log(e.what());
        }
        throw;
    }
}

void XenGuest::shut_down_for_checkpoint()
{
    // Xen's suspend shutdown, as libxl stops an HVM guest without PV
    // drivers, not xc_domain_pause: Xen defers it while a vCPU is inside an
    // emulated I/O that QEMU has not completed, so that no I/O is half done
    // at a checkpoint (a vCPU paused mid-I/O would do it again after a
    // failover). The guest sees nothing of it.
    constexpr auto kTimeout = std::chrono::seconds(2);
    if (xc_domain_shutdown(xen_->xc(), facts_.domid, SHUTDOWN_suspend) != 0)
        throw_xen_error("xc_domain_shutdown(SHUTDOWN_suspend)", facts_.domid, errno);
    shut_down_by_us_ = true;
    const auto until = std::chrono::steady_clock::now() + kTimeout;
    for (auto wait = std::chrono::microseconds(10);; wait = std::min(wait * 2, std::chrono::microseconds(1000))) {
        xc_dominfo_t info{};
        const int n = xc_domain_getinfo(xen_->xc(), facts_.domid, 1, &info);
        if (n != 1 || info.domid != facts_.domid) {
            const int error = n < 0 ? errno : ESRCH;
            if (error != ESRCH) { // it may still be there: not left stopped
                try {
                    resume_from_shutdown();
                } catch (const std::exception &e) {
                    xen_->log(e.what());
                }
            }
            throw_xen_error("xc_domain_getinfo", facts_.domid, error);
        }
        if (info.shutdown && info.shutdown_reason == SHUTDOWN_suspend)
            return;
        if (info.shutdown) {
            shut_down_by_us_ = false; // shut down for another reason meanwhile: not ours to resume
            throw XenError("domain " + facts_.name + " shut down (reason " + std::to_string(info.shutdown_reason) +
                               ") while understudy stopped it for a checkpoint",
                           ESRCH);
        }
        if (std::chrono::steady_clock::now() > until) {
            resume_from_shutdown();
            throw XenError("domain " + facts_.name + " did not stop for a checkpoint within 2 s: a vCPU is inside "
                           "an emulated I/O its device model (QEMU) does not complete; it runs on",
                           ETIMEDOUT);
        }
        std::this_thread::sleep_for(wait);
    }
}

void XenGuest::resume_from_shutdown()
{
    // Not fast: a fast resume would set the return value of a suspend the
    // guest never made.
    if (xc_domain_resume(xen_->xc(), facts_.domid, 0) != 0)
        throw_xen_error("xc_domain_resume", facts_.domid, errno);
    shut_down_by_us_ = false;
}

void XenGuest::stop_device_model()
{
    // Its emulated devices must not change the domain's memory or their own
    // state while the checkpoint is taken (a NIC receiving, a disk
    // completing): QEMU stops them, as it does when libxl saves a domain.
    try {
        device_model_ = std::make_unique<QmpMonitor>(xen_->device_model_qmp_socket(facts_.domid), kQmpTimeout);
        device_model_->execute("stop");
    } catch (const QmpError &e) {
        device_model_.reset();
        throw XenError("domain " + facts_.name + ": stopping its device model for the checkpoint: " + e.what(), EIO);
    }
    device_model_stopped_ = true;
}

void XenGuest::continue_device_model()
{
    try {
        if (!device_model_)
            device_model_ = std::make_unique<QmpMonitor>(xen_->device_model_qmp_socket(facts_.domid), kQmpTimeout);
        device_model_->execute("cont");
    } catch (const QmpError &e) {
        device_model_.reset();
        throw XenError("domain " + facts_.name + ": its device model did not continue after the checkpoint: " +
                           e.what() +
                           "; the domain runs, but its emulated devices stay stopped until QEMU continues "
                           "(understudy tries once more when protection ends; by hand: `xl qemu-monitor-command " +
                           facts_.name + " cont`)",
                       EIO);
    }
    device_model_.reset();
    device_model_stopped_ = false;
}

void XenGuest::resume()
{
    if (way_ == CheckpointWay::suspend) {
        if (!suspended_by_us_)
            return; // the suspend itself failed: the guest runs
        // suspend_cancel = 1: the guest's suspend returns "cancelled", and
        // it goes on with the devices it has.
        if (int rc = libxl_domain_resume(xen_->libxl(), facts_.domid, 1, nullptr); rc != 0)
            throw XenError("libxl_domain_resume of domain " + std::to_string(facts_.domid) + " (" + facts_.name +
                               ") failed (libxl error " + libxl_error_text(rc) +
                               "): the domain stays suspended; understudy tries once more when protection ends",
                           rc == ERROR_DOMAIN_NOTFOUND ? ESRCH : EIO);
        suspended_by_us_ = false;
        return;
    }
    // QEMU first: when the vCPUs run, their devices do.
    std::string device_model_error;
    if (device_model_stopped_) {
        try {
            continue_device_model();
        } catch (const XenError &e) {
            device_model_error = e.what();
        }
    }
    if (shut_down_by_us_) {
        resume_from_shutdown();
    } else {
        if (xc_domain_unpause(xen_->xc(), facts_.domid) != 0)
            throw_xen_error("xc_domain_unpause", facts_.domid, errno);
        paused_by_us_ = false;
    }
    if (!device_model_error.empty())
        throw XenError(device_model_error, EIO);
}

void XenGuest::stop_for_good()
{
    if (xc_domain_pause(xen_->xc(), facts_.domid) != 0 && errno != ESRCH)
        throw_xen_error("xc_domain_pause", facts_.domid, errno);
    try {
        disable_dirty_log();
    } catch (const std::exception &e) {
        xen_->log("domain " + facts_.name + ": " + e.what());
    }
    unmap_all();
    paused_by_us_ = false; // destroyed next: nothing to unpause, resume or continue
    suspended_by_us_ = false;
    shut_down_by_us_ = false;
    device_model_.reset();
    device_model_stopped_ = false;
    if (int rc = libxl_domain_destroy(xen_->libxl(), facts_.domid, nullptr); rc != 0 && rc != ERROR_DOMAIN_NOTFOUND)
        throw XenError("libxl_domain_destroy of domain " + std::to_string(facts_.domid) + " failed (libxl error " +
                           std::to_string(rc) + "); it is paused: destroy it with `xl destroy " + facts_.name + "`",
                       EIO);
    xen_->log("domain " + facts_.name + " (" + std::to_string(facts_.domid) + "): destroyed here, for good");
}

void XenGuest::enable_dirty_log()
{
    if (!bitmap_buffer_) {
        bitmap_buffer_ = std::make_unique<xc_hypercall_buffer>();
        *bitmap_buffer_ = xc_hypercall_buffer{};
        bitmap_buffer_->ubuf = reinterpret_cast<void *>(-1); // no bounce buffer: Xen writes it directly
        bitmap_pages_ = (bitmap_bytes(facts_.pages) + kPageSize - 1) / kPageSize;
        bitmap_ = xc__hypercall_buffer_alloc_pages(xen_->xc(), bitmap_buffer_.get(), static_cast<int>(bitmap_pages_));
        if (!bitmap_) {
            bitmap_buffer_.reset();
            throw_xen_error("xc_hypercall_buffer_alloc_pages (dirty bitmap)", facts_.domid, errno ? errno : ENOMEM);
        }
    }
    if (log_dirty_) {
        // A new session (after losing the backup): start from a clean log.
        xc_shadow_op_stats_t stats{};
        if (xc_logdirty_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_CLEAN, bitmap_buffer_.get(),
                                facts_.pages, 0, &stats) < 0)
            throw_xen_error("xc_logdirty_control(CLEAN)", facts_.domid, errno);
    } else {
        if (xc_shadow_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, nullptr, 0) != 0) {
            const int first = errno;
            if (first == EPERM || first == ESRCH || first == ENOMEM)
                throw_xen_error("xc_shadow_control(ENABLE_LOGDIRTY)", facts_.domid, first);
            // Log-dirty may already be on for video RAM tracking: turn it
            // off and take it over.
            xen_->log("domain " + facts_.name + ": enabling log-dirty failed (" + std::strerror(first) +
                      "); turning it off and enabling it again");
            if (xc_shadow_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_OFF, nullptr, 0) != 0 ||
                xc_shadow_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, nullptr, 0) != 0)
                throw_xen_error("xc_shadow_control(ENABLE_LOGDIRTY)", facts_.domid, errno);
        }
        log_dirty_ = true;
    }
    if (pv_)
        read_p2m();
    if (per_batch_ && pv_)
        find_not_ram();
    if (mappings_.empty() && !per_batch_)
        map_all();
}

void XenGuest::disable_dirty_log()
{
    if (log_dirty_) {
        log_dirty_ = false; // even if OFF fails: the domain is gone, or Xen refuses and says why
        if (xc_shadow_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_OFF, nullptr, 0) != 0 && errno != ESRCH)
            throw_xen_error("xc_shadow_control(OFF)", facts_.domid, errno);
    }
    free_bitmap();
}

void XenGuest::free_bitmap() noexcept
{
    if (bitmap_buffer_ && bitmap_)
        xc__hypercall_buffer_free_pages(xen_->xc(), bitmap_buffer_.get(), static_cast<int>(bitmap_pages_));
    bitmap_ = nullptr;
    bitmap_buffer_.reset();
}

std::uint64_t XenGuest::ram_pages_now() const
{
    xc_dominfo_t info{};
    const int n = xc_domain_getinfo(xen_->xc(), facts_.domid, 1, &info);
    if (n < 0)
        throw_xen_error("xc_domain_getinfo", facts_.domid, errno);
    if (n == 0 || info.domid != facts_.domid)
        throw_xen_error("xc_domain_getinfo", facts_.domid, ESRCH);
    return info.nr_pages;
}

void XenGuest::follow_memory_changes()
{
    // A balloon driver gives frames back or takes new ones: which frames are
    // RAM changed, and a kept mapping still shows the old answer (new frames
    // read as zeros, given-back ones stay mapped). Map again. (A PV guest's
    // own p2m says which frames it has: follow_pv_p2m.)
    if (pv_)
        return;
    const auto now = ram_pages_now();
    if (now == ram_pages_)
        return;
    xen_pfn_t max_gpfn = 0;
    if (xc_domain_maximum_gpfn(xen_->xc(), facts_.domid, &max_gpfn) != 0)
        throw_xen_error("xc_domain_maximum_gpfn", facts_.domid, errno);
    if (static_cast<std::uint64_t>(max_gpfn) >= facts_.pages)
        throw XenError("domain " + facts_.name + " now has frames up to " + std::to_string(max_gpfn) +
                           ", past the " + std::to_string(facts_.pages) +
                           " it had when protection started (memory added beyond maxmem?): protect it again",
                       ERANGE);
    xen_->log("domain " + facts_.name + ": its memory changed from " + std::to_string(ram_pages_) + " to " +
              std::to_string(now) + " pages (ballooning): finding its RAM frames and mapping them again");
    if (per_batch_) {
        find_not_ram();
    } else {
        unmap_all();
        map_all();
    }
}

void XenGuest::harvest_dirty(DirtyBitmap &into)
{
    if (!log_dirty_)
        throw XenError("domain " + facts_.name + ": dirty pages asked for while log-dirty is off", EINVAL);
    follow_memory_changes();
    xc_shadow_op_stats_t stats{};
    const long long got = xc_logdirty_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
                                              bitmap_buffer_.get(), facts_.pages, 0, &stats);
    if (got < 0)
        throw_xen_error("xc_logdirty_control(CLEAN)", facts_.domid, errno);
    into.or_words({static_cast<const std::uint64_t *>(bitmap_), bitmap_bytes(facts_.pages) / 8});
    if (pv_) {
        follow_pv_p2m(into);
        for (auto pfn : read_again_)
            into.set(Pfn{pfn});
        read_again_.clear();
    }
}

std::optional<std::uint64_t> XenGuest::pages_written_since_harvest()
{
    if (!log_dirty_)
        return std::nullopt;
    if (!peek_buffer_)
        peek_buffer_ = std::make_unique<HypercallBuffer>(xen_->xc(), bitmap_bytes(facts_.pages));
    xc_shadow_op_stats_t stats{};
    if (xc_logdirty_control(xen_->xc(), facts_.domid, XEN_DOMCTL_SHADOW_OP_PEEK, peek_buffer_->get(), facts_.pages, 0,
                            &stats) < 0)
        throw_xen_error("xc_logdirty_control(PEEK)", facts_.domid, errno);
    const auto *bits = static_cast<const std::uint64_t *>(peek_buffer_->data());
    std::uint64_t written = 0;
    for (std::uint64_t w = 0; w < bitmap_bytes(facts_.pages) / 8; ++w)
        written += static_cast<std::uint64_t>(__builtin_popcountll(bits[w]));
    return written;
}

void XenGuest::follow_pv_p2m(DirtyBitmap &into)
{
    // The guest changes its p2m when it balloons or exchanges frames; it
    // writes the p2m's pages then, so they are among the dirty ones. Read
    // it again only then; map again only if it changed.
    const auto *bits = static_cast<const std::uint64_t *>(bitmap_);
    auto dirty = [&](std::uint64_t pfn) { return pfn < facts_.pages && (bits[pfn / 64] >> (pfn % 64) & 1); };
    const auto &arch = shared_info().arch;
    bool touched = arch.max_pfn != p2m_.max_pfn + 1 || arch.p2m_cr3 != p2m_.cr3 || arch.p2m_vaddr != p2m_.vaddr ||
                   arch.p2m_generation != p2m_.generation ||
                   arch.pfn_to_mfn_frame_list_list != p2m_.frame_list_list;
    for (auto pfn : p2m_.leaf_pfns)
        touched = touched || dirty(pfn);
    for (auto pfn : p2m_.list_pfns)
        touched = touched || dirty(pfn);
    if (!touched)
        return;
    auto now = read_pv_p2m(*xen_, facts_.domid, facts_.name, shared_info(), facts_.pages);
    if (now.mfns == p2m_.mfns) {
        p2m_ = std::move(now); // the same frames; its own pages may have moved
        return;
    }
    // Frames that changed hands are read again: a frame the guest took
    // back in holds what Xen gave it, not what the backup has.
    std::uint64_t changed = 0;
    for (std::uint64_t pfn = 0; pfn < facts_.pages; ++pfn) {
        const auto before = pfn < p2m_.mfns.size() ? p2m_.mfns[pfn] : kNoFrame;
        const auto after = pfn < now.mfns.size() ? now.mfns[pfn] : kNoFrame;
        if (before != after) {
            ++changed;
            if (after != kNoFrame)
                into.set(Pfn{pfn});
            else
                set_page_type(pfn, 0);
        }
    }
    xen_->log("domain " + facts_.name + ": " + std::to_string(changed) +
              " frames changed machine frames in its p2m (ballooning): mapping its memory again");
    p2m_ = std::move(now);
    if (per_batch_) {
        find_not_ram();
    } else {
        unmap_all();
        map_all();
    }
}

void XenGuest::map_all()
{
    ram_pages_ = ram_pages_now();
    std::uint64_t holes = 0;
    for (std::uint64_t first = 0; first < facts_.pages; first += kMapChunkPages) {
        Mapping m;
        m.first = first;
        m.count = std::min(kMapChunkPages, facts_.pages - first);
        std::vector<xen_pfn_t> pfns(m.count);
        for (std::uint64_t i = 0; i < m.count; ++i)
            pfns[i] = frame_of(first + i);
        m.err.assign(m.count, 0);
        m.base = xenforeignmemory_map(xen_->foreign(), facts_.domid, PROT_READ, m.count, pfns.data(), m.err.data());
        if (!m.base) {
            const int error = errno;
            unmap_all();
            if (error == ESRCH || error == EPERM)
                throw_xen_error("xenforeignmemory_map", facts_.domid, error);
            per_batch_ = true;
            xen_->log("domain " + facts_.name + ": cannot map all " + std::to_string(facts_.pages) +
                      " pages at once (" + std::strerror(error) + "); mapping " + std::to_string(kBatchPages) +
                      " pages per batch in each epoch instead (slower pauses)");
            find_not_ram();
            return;
        }
        holes += static_cast<std::uint64_t>(std::count_if(m.err.begin(), m.err.end(), [](int e) { return e != 0; }));
        mappings_.push_back(std::move(m));
    }
    not_ram_.Clear();
    for (const auto &m : mappings_)
        for (std::uint64_t i = 0; i < m.count; ++i)
            if (m.err[i] != 0)
                note_not_ram(m.first + i);
    if (holes)
        xen_->log("domain " + facts_.name + ": " + std::to_string(holes) + " of " + std::to_string(facts_.pages) +
                  " frames are not RAM (holes such as the MMIO window) and are sent as zeros");
}

std::vector<Pfn> XenGuest::frames_to_copy() const
{
    std::vector<Pfn> frames;
    frames.reserve(ram_pages_ ? ram_pages_ : facts_.pages);
    std::uint64_t pfn = 0;
    for (const auto &hole : not_ram_) { // ascending, disjoint
        for (; pfn < hole.first() && pfn < facts_.pages; ++pfn)
            frames.push_back(Pfn{pfn});
        pfn = std::max(pfn, hole.first() + hole.count());
    }
    for (; pfn < facts_.pages; ++pfn)
        frames.push_back(Pfn{pfn});
    return frames;
}

void XenGuest::find_not_ram()
{
    // Mapping per batch: each frame is mapped once, as Xen's save does, to
    // learn which are not RAM.
    ram_pages_ = ram_pages_now();
    not_ram_.Clear();
    if (pv_) { // its p2m says
        for (std::uint64_t pfn = 0; pfn < facts_.pages; ++pfn)
            if (!p2m_.has_frame(pfn))
                note_not_ram(pfn);
        return;
    }
    std::vector<xen_pfn_t> frames(kBatchPages);
    std::vector<int> err(kBatchPages);
    for (std::uint64_t first = 0; first < facts_.pages; first += kBatchPages) {
        const auto n = std::min<std::uint64_t>(kBatchPages, facts_.pages - first);
        for (std::uint64_t i = 0; i < n; ++i)
            frames[i] = first + i;
        std::fill(err.begin(), err.end(), 0);
        void *base = xenforeignmemory_map(xen_->foreign(), facts_.domid, PROT_READ, n, frames.data(), err.data());
        if (!base)
            throw_xen_error("xenforeignmemory_map (" + std::to_string(n) + " pages)", facts_.domid, errno);
        xenforeignmemory_unmap(xen_->foreign(), base, n);
        for (std::uint64_t i = 0; i < n; ++i)
            if (err[i] != 0)
                note_not_ram(first + i);
    }
}

void XenGuest::note_not_ram(std::uint64_t pfn)
{
    const int n = not_ram_.size();
    if (n > 0) {
        auto *last = not_ram_.Mutable(n - 1);
        if (last->first() + last->count() == pfn) {
            last->set_count(last->count() + 1);
            return;
        }
    }
    auto *range = not_ram_.Add();
    range->set_first(pfn);
    range->set_count(1);
}

void XenGuest::unmap_all() noexcept
{
    for (auto &m : mappings_)
        xenforeignmemory_unmap(xen_->foreign(), m.base, m.count);
    mappings_.clear();
}

std::string XenGuest::mapping_mode() const
{
    if (per_batch_)
        return "a mapping per batch of " + std::to_string(kBatchPages) + " pages";
    return mappings_.empty() ? "not mapped yet" : "one mapping of all memory, kept across epochs";
}

void XenGuest::read_pages(std::span<const Pfn> pfns, std::span<std::uint8_t> dst) const
{
    if (dst.size() < pfns.size() * kPageSize)
        throw std::invalid_argument("read_pages: destination too small");
    if (per_batch_ || mappings_.empty()) {
        for (std::size_t i = 0; i < pfns.size(); i += kBatchPages) {
            const auto n = std::min(kBatchPages, pfns.size() - i);
            read_batch(pfns.subspan(i, n), dst.data() + i * kPageSize);
        }
        if (pv_)
            normalise_pv_pages(pfns, dst.data());
        return;
    }
    for (std::size_t i = 0; i < pfns.size(); ++i) {
        const auto pfn = pfns[i].value;
        if (pfn >= facts_.pages)
            throw std::out_of_range("read_pages: pfn " + std::to_string(pfn) + " is past the guest's memory");
        const auto &m = mappings_[pfn / kMapChunkPages];
        const auto at = pfn - m.first;
        auto *out = dst.data() + i * kPageSize;
        if (m.err[at] != 0)
            std::memset(out, 0, kPageSize);
        else
            std::memcpy(out, static_cast<const std::uint8_t *>(m.base) + at * kPageSize, kPageSize);
    }
    if (pv_)
        normalise_pv_pages(pfns, dst.data());
}

void XenGuest::normalise_pv_pages(std::span<const Pfn> pfns, std::uint8_t *dst) const
{
    // The pages' types now, a batch at a time; page tables are rewritten to
    // pfns. While the guest runs (the first copy), a page table can be half
    // updated: it is read again at the next pause, where an entry that is
    // not the guest's is an error, as in Xen's save.
    const bool stopped = paused_by_us_ || suspended_by_us_ || shut_down_by_us_;
    std::uint64_t frames[kTypeBatch];
    std::size_t at[kTypeBatch];
    for (std::size_t first = 0; first < pfns.size();) {
        std::size_t n = 0;
        for (; first < pfns.size() && n < kTypeBatch; ++first) {
            const auto pfn = pfns[first].value;
            if (!p2m_.has_frame(pfn)) {
                set_page_type(pfn, 0);
                continue;
            }
            frames[n] = p2m_.mfns[pfn];
            at[n++] = first;
        }
        if (n == 0)
            continue;
        read_page_types(*xen_, facts_.domid, *types_buffer_, {frames, n});
        for (std::size_t k = 0; k < n; ++k) {
            const auto pfn = pfns[at[k]].value;
            const auto type = static_cast<std::uint32_t>(frames[k]);
            const unsigned level = page_table_level(type);
            set_page_type(pfn, level == 0 ? 0 : type);
            if (level == 0)
                continue;
            const auto problem = normalise_page_table({dst + at[k] * kPageSize, kPageSize}, level, p2m_);
            if (problem.empty())
                continue;
            if (stopped)
                throw XenError("PV domain " + facts_.name + ": page table at frame " + std::to_string(pfn) + ": " +
                                   problem,
                               ERANGE);
            std::memset(dst + at[k] * kPageSize, 0, kPageSize);
            read_again_.push_back(pfn);
        }
    }
}

void XenGuest::read_batch(std::span<const Pfn> pfns, std::uint8_t *dst) const
{
    std::vector<xen_pfn_t> frames(pfns.size());
    std::vector<int> err(pfns.size(), 0);
    for (std::size_t i = 0; i < pfns.size(); ++i) {
        if (pfns[i].value >= facts_.pages)
            throw std::out_of_range("read_pages: pfn " + std::to_string(pfns[i].value) + " is past the guest's memory");
        frames[i] = frame_of(pfns[i].value);
    }
    void *base = xenforeignmemory_map(xen_->foreign(), facts_.domid, PROT_READ, frames.size(), frames.data(), err.data());
    if (!base)
        throw_xen_error("xenforeignmemory_map (" + std::to_string(frames.size()) + " pages)", facts_.domid, errno);
    for (std::size_t i = 0; i < pfns.size(); ++i) {
        if (err[i] != 0)
            std::memset(dst + i * kPageSize, 0, kPageSize);
        else
            std::memcpy(dst + i * kPageSize, static_cast<const std::uint8_t *>(base) + i * kPageSize, kPageSize);
    }
    xenforeignmemory_unmap(xen_->foreign(), base, frames.size());
}

proto::CpuState XenGuest::save_cpu() const
{
    proto::CpuState cpu;
    cpu.set_format(1);
    auto *x = cpu.mutable_xen();
    x->set_domain_type(facts_.type);
    x->set_vcpus(facts_.vcpus);
    read_tsc_info(*xen_, facts_.domid, *x);
    *x->mutable_not_ram() = not_ram_;
    x->set_cpuid_policy(cpu_policy_.cpuid_policy());
    x->set_msr_policy(cpu_policy_.msr_policy());
    if (pv_) {
        save_pv_state(*x->mutable_pv());
        return cpu;
    }
    const int size = xc_domain_hvm_getcontext(xen_->xc(), facts_.domid, nullptr, 0);
    if (size <= 0)
        throw_xen_error("xc_domain_hvm_getcontext (size)", facts_.domid, size < 0 ? errno : EINVAL);
    std::string context(static_cast<std::size_t>(size), '\0');
    const int got = xc_domain_hvm_getcontext(xen_->xc(), facts_.domid,
                                             reinterpret_cast<std::uint8_t *>(context.data()),
                                             static_cast<std::uint32_t>(size));
    if (got < 0)
        throw_xen_error("xc_domain_hvm_getcontext", facts_.domid, errno);
    context.resize(static_cast<std::size_t>(std::min(got, size)));
    x->set_hvm_context(std::move(context));
    for (auto index : kCarriedParams) {
        std::uint64_t value = 0;
        if (xc_hvm_param_get(xen_->xc(), facts_.domid, index, &value) != 0)
            throw_xen_error("xc_hvm_param_get(" + std::to_string(index) + ")", facts_.domid, errno);
        if (value == 0)
            continue;
        auto *p = x->add_params();
        p->set_index(index);
        p->set_value(value);
    }
    return cpu;
}

void XenGuest::save_pv_state(proto::XenPvState &pv) const
{
    pv.set_guest_width(8);
    pv.set_max_pfn(p2m_.max_pfn);
    for (auto pfn : p2m_.leaf_pfns)
        pv.add_p2m_frames(pfn);
    pv.set_shared_info(std::string(static_cast<const char *>(shared_info_), kPageSize));
    save_pv_vcpus(*xen_, facts_.domid, facts_.vcpus, p2m_, pv);
    // The page tables as read last; a page whose type changed since was
    // written (Xen marks a page dirty when it becomes or stops being a page
    // table), so it was read again in this epoch. All of them at a stream's
    // first checkpoint, then the changes since the checkpoint before.
    constexpr std::size_t kMaxTables = (kMaxHeaderBytes - 65536) / 8;
    const bool complete = !complete_tables_sent_;
    const auto &listed = complete ? page_tables_ : table_changes_;
    if (listed.size() > kMaxTables)
        throw XenError("PV domain " + facts_.name + " has " + std::to_string(listed.size()) + " page tables" +
                           (complete ? "" : " changed since its last checkpoint") + ", more than the " +
                           std::to_string(kMaxTables) + " a checkpoint carries",
                       EFBIG);
    std::vector<std::uint64_t> tables;
    tables.reserve(listed.size());
    for (const auto &[pfn, type] : listed)
        tables.push_back(page_table_entry(pfn, type));
    std::sort(tables.begin(), tables.end(), [](auto a, auto b) { return page_table_pfn(a) < page_table_pfn(b); });
    pv.mutable_page_tables()->Add(tables.begin(), tables.end());
    pv.set_page_tables_complete(complete);
    complete_tables_sent_ = true;
    table_changes_.clear();
}

void XenGuest::set_page_type(std::uint64_t pfn, std::uint32_t type) const
{
    const auto it = page_tables_.find(pfn);
    const std::uint32_t was = it == page_tables_.end() ? 0 : it->second;
    if (was == type)
        return;
    if (type == 0)
        page_tables_.erase(it);
    else
        page_tables_[pfn] = type;
    table_changes_[pfn] = type;
}

proto::DeviceState XenGuest::save_devices() const
{
    // The platform devices Xen emulates are in the HVM context; disks go
    // through DRBD and NICs through the vif's output buffer. An HVM domain's
    // device model saved its state when libxl suspended the domain.
    proto::DeviceState devices;
    devices.set_format(1);
    if (facts_.type != "hvm")
        return devices; // PVH and PV: no device model state
    if (way_ == CheckpointWay::suspend) { // libxl had QEMU save it while suspending
        const auto path = xen_->device_model_save_file(facts_.domid);
        UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!file)
            throw XenError("domain " + facts_.name + ": its device model's saved state is not in " + path + ": " +
                               std::strerror(errno),
                           errno);
        devices.set_xen_device_model(read_device_model_state(file.get(), "in " + path));
        return devices;
    }
    // Paused, QEMU stopped: have it save them now, through its monitor, as
    // libxl does: into a file descriptor passed to it (add-fd), since QEMU
    // may run as another user in a chroot (xl.cfg dm_restrict), where it
    // can open no path of ours. Ours is a memfd: nothing on disk.
    UniqueFd state(::memfd_create("understudy-qemu-state", MFD_CLOEXEC));
    UniqueFd writer(state ? ::open(("/proc/self/fd/" + std::to_string(state.get())).c_str(), O_WRONLY | O_CLOEXEC)
                          : -1);
    if (!writer)
        throw XenError("domain " + facts_.name + ": a memfd for its device model's state: " + std::strerror(errno),
                       errno);
    try {
        if (!device_model_)
            device_model_ = std::make_unique<QmpMonitor>(xen_->device_model_qmp_socket(facts_.domid), kQmpTimeout);
        const int fdset = device_model_->add_fd(writer.get());
        writer.reset();
        try {
            device_model_->execute("xen-save-devices-state",
                                   R"({"filename":"/dev/fdset/)" + std::to_string(fdset) + R"(","live":false})");
        } catch (const QmpError &) {
            try {
                device_model_->remove_fd_set(fdset);
            } catch (const QmpError &) {
                // the connection is gone: QEMU cleans up after its clients
            }
            throw;
        }
        device_model_->remove_fd_set(fdset);
        device_model_.reset(); // the resume continues QEMU through a new connection
    } catch (const QmpError &e) {
        device_model_.reset();
        throw XenError("domain " + facts_.name + ": saving its device model's state: " + e.what(), EIO);
    }
    devices.set_xen_device_model(read_device_model_state(state.get(), "through its QMP monitor"));
    return devices;
}

std::string XenGuest::read_device_model_state(int fd, const std::string &where) const
{
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        throw XenError("domain " + facts_.name + ": its device model's state saved " + where + ": " +
                           std::strerror(errno),
                       errno);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > kMaxDeviceModelState)
        throw XenError("domain " + facts_.name + ": its device model state (saved " + where + ") is " +
                           std::to_string(size) + " bytes, more than the " + std::to_string(kMaxDeviceModelState) +
                           " a checkpoint carries",
                       EFBIG);
    std::string state(static_cast<std::size_t>(size), '\0');
    std::size_t got = 0;
    while (got < state.size()) {
        const auto n = ::pread(fd, state.data() + got, state.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw XenError("domain " + facts_.name + ": reading its device model's state saved " + where + " failed",
                           EIO);
        got += static_cast<std::size_t>(n);
    }
    if (auto problem = device_model_state_problem(state); !problem.empty())
        throw XenError("domain " + facts_.name + ": what its device model saved " + where + " is " + problem, EINVAL);
    return state;
}

void XenGuest::read_disk(std::uint64_t, std::span<std::uint8_t>) const
{
    throw std::logic_error("the disks of Xen guests are replicated by DRBD, not read by understudy");
}

} // namespace understudy::xen
