// TEST DOUBLE of the hypervisor side of libxenctrl, libxenforeignmemory and
// libxenlight: exactly the xc_* / xenforeignmemory_* / libxl_* calls the Xen
// backend (checkpoint/xen) makes, implemented over domains that live in this
// process. Linked into the unit tests in place of the real libraries (its
// definitions take precedence); understudyd links the real ones.
//
// What is real about it: guest memory is a memfd; "foreign mappings" are
// real mmaps of it at the requested frames; log-dirty is real dirty tracking
// (the guest's view is write-protected with mprotect and a SIGSEGV handler
// records each first write, as Xen's log-dirty does with page-table bits);
// pausing really stops the domain's vCPU thread between instructions;
// xc_domain_pause counts like Xen's; a suspend stops it too and leaves the
// suspend's return value in vCPU 0's rax (0, or 1 once cancelled); the HVM context is in Xen's save-record
// format (descriptor, header, one CPU record per vCPU, end). What is not: no
// device model, no xenstore, one "instruction" is one loop iteration.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/support/xen_double/device_model.h"

struct shared_info_x86_64;

namespace understudy::testing::xen_double {

struct DomainSpec {
    std::string name;
    std::string type = "hvm";       // "hvm", "pvh" or "pv"
    std::uint64_t pages = 1024;
    unsigned vcpus = 1;
    std::vector<std::uint64_t> holes; // frames that are not RAM (foreign maps fail there)
    std::vector<std::string> vif_macs;     // what libxl_device_nic_list reports
    std::vector<std::string> disk_targets; // what libxl_device_disk_list reports (pdev_path)
    bool pv_drivers = true; // answers libxl_domain_suspend_only; false: it times out
    // PV only (pv_layout.h): its width in bytes (xc_domain_get_guest_width),
    // and how it publishes its p2m in its shared info page: "list" (p2m_cr3
    // and p2m_vaddr, no frame list list: Linux when Xen's domain builder
    // sets SIF_VIRT_P2M_4TOOLS, as it always does), "tree" (only the frame
    // list list), "none", or "unmapped" (a list at an address its page
    // tables do not map).
    unsigned pv_width = 8;
    std::string pv_p2m = "list";
    // Its CPUID policy: the highest basic leaf (leaf 0 eax) and leaf 1's ecx
    // features; its TSC frequency.
    std::uint32_t cpuid_max_leaf = 0xd;
    std::uint32_t cpuid_leaf1_ecx = 0x7ffafbff;
    std::uint32_t tsc_khz = 2400000;
    // This domain is the device model stub domain of domain `stubdom_for`
    // (libxl_is_stubdom, libxl_get_stubdom_id); 0: it is none.
    std::uint32_t stubdom_for = 0;
};

// This "host's" maximum CPU policy for guests (xc_cpu_policy_get_system): a
// domain whose highest leaf is above `max_leaf` cannot run here (Xen's rule);
// leaf 1 ecx features outside `leaf1_ecx` are masked when a policy is set.
void set_host_cpu(std::uint32_t max_leaf, std::uint32_t leaf1_ecx);
// What this "hypervisor" can do (xc_physinfo's XEN_SYSCTL_PHYSCAP_* bits);
// by default pv, hvm, hap and shadow. Debian 12's Xen lacks shadow.
void set_hypervisor_caps(std::uint32_t capabilities);

// Creates a running domain; returns its domid (from 1 up).
std::uint32_t create_domain(const DomainSpec &spec);
// Its balloon driver gives frames `out` back to Xen and takes `in` (zeroed):
// they stop or start being RAM.
void balloon(std::uint32_t domid, const std::vector<std::uint64_t> &out, const std::vector<std::uint64_t> &in);
// Its vCPU enters an emulated I/O (an ioreq QEMU has not answered yet),
// and completes it: Xen defers a suspend shutdown until then.
void begin_emulated_io(std::uint32_t domid);
void end_emulated_io(std::uint32_t domid);
// Shut down (or asked to) by xc_domain_shutdown(SHUTDOWN_suspend), not resumed.
[[nodiscard]] bool shut_down(std::uint32_t domid);
// The domain disappears at once, as if destroyed by someone else.
void destroy_domain(std::uint32_t domid);
[[nodiscard]] bool exists(std::uint32_t domid);
[[nodiscard]] std::uint32_t domid_of(const std::string &name); // 0 if none

// A vCPU that keeps writing: each step increments a counter, writes it at a
// place in memory that depends on it, then stores it in page 0 and in the
// vCPU's rip. A step is never cut by a pause.
void start_workload(std::uint32_t domid, std::chrono::microseconds step);
void stop_workload(std::uint32_t domid);

// What the domain holds now (only meaningful while it is paused).
[[nodiscard]] std::vector<std::uint8_t> memory(std::uint32_t domid);
[[nodiscard]] std::uint64_t counter(std::uint32_t domid);          // the vCPU's rip
[[nodiscard]] std::uint64_t stored_counter(std::uint32_t domid);   // page 0
[[nodiscard]] std::map<std::uint32_t, std::uint64_t> params(std::uint32_t domid);
[[nodiscard]] bool log_dirty_enabled(std::uint32_t domid);
[[nodiscard]] unsigned pause_count(std::uint32_t domid);
// Suspended by libxl_domain_suspend_only and not yet resumed; how often it was.
[[nodiscard]] bool suspended(std::uint32_t domid);
[[nodiscard]] unsigned suspend_count(std::uint32_t domid);
// What the guest's last suspend returned to it (vCPU 0's rax): 0 "resumed,
// in a new domain"; 1 "cancelled" (libxl_domain_resume with suspend_cancel).
[[nodiscard]] std::uint64_t suspend_result(std::uint32_t domid);
// Leaf 1 ecx of the domain's CPUID policy now; whether xc_set_domain_cpu_policy
// was called on it; its TSC settings (mode, kHz, incarnation).
[[nodiscard]] std::uint32_t cpuid_leaf1_ecx(std::uint32_t domid);
[[nodiscard]] bool cpu_policy_set(std::uint32_t domid);
struct TscInfo {
    std::uint32_t mode = 0, khz = 0, incarnation = 0;
    std::uint64_t elapsed_nsec = 0;
    bool operator==(const TscInfo &) const = default;
};
[[nodiscard]] TscInfo tsc_info(std::uint32_t domid);
// Built by libxl_domain_create_restore, which reads the stream as Xen's
// restore does (and refuses an HVM domain without device model state, as
// QEMU would fail to start). The bytes of the last stream it read, and why
// it refused it ("" if it did not).
[[nodiscard]] bool restored(std::uint32_t domid);
// Xen's directories for the HVM domains created from now on: `lib`, where
// libxl_domain_suspend_only writes the device model's state
// (lib/qemu-save.DOMID), and `run`, where each HVM domain's device model
// serves QMP (run/qmp-libxl-DOMID, fake_qmp.h), which saves its state with
// xen-save-devices-state. "": no device model anywhere. What was saved
// last, and what a restored domain's device model started from (its
// EMULATOR_CONTEXT).
void set_xen_dirs(const std::string &lib, const std::string &run);
// HVM domains created from now on get a REAL device model run from
// `binary` (device_model.h) instead of the QMP stand-in; "" goes back to
// the stand-in. A restore then starts one that loads the stream's
// EMULATOR_CONTEXT, and fails, as libxl's would, if QEMU cannot load it.
void use_real_device_model(const std::string &binary);
// Whether its device model runs (QEMU's `stop` and `cont`).
[[nodiscard]] bool device_model_running(std::uint32_t domid);
// The fd sets its device model holds (QMP add-fd without remove-fd).
[[nodiscard]] std::size_t device_model_fdsets(std::uint32_t domid);
// The domain's real device model, or null.
[[nodiscard]] RealDeviceModel *real_device_model(std::uint32_t domid);
// Device model states saved from now on are this many bytes longer; or are
// exactly `bytes` ("": the stand-in's usual state).
void pad_device_model_state(std::size_t bytes);
void replace_device_model_state(const std::string &bytes);
[[nodiscard]] std::string device_model_state(std::uint32_t domid);
[[nodiscard]] std::string emulator_context(std::uint32_t domid);
[[nodiscard]] std::uint64_t populated_frames(std::uint32_t domid);
[[nodiscard]] std::vector<std::uint8_t> last_restore_stream();
[[nodiscard]] std::string last_restore_error();
[[nodiscard]] bool context_loaded(std::uint32_t domid); // xc_domain_hvm_setcontext was called
// Turns log-dirty on as a device model tracking video RAM would.
void enable_log_dirty_behind_our_back(std::uint32_t domid);

// PV domains. Machine frame of a frame (pv::kNone if it has none); the type
// of a frame (XEN_DOMCTL_PFINFO_*); its memory as Xen's save sends it
// (page tables with pfns, see pv_layout.h); the frames of its p2m's pages,
// and the p2m as its pages hold it now; how many page tables a restore
// pinned; vCPU 0's context as a restore loaded it.
[[nodiscard]] std::uint64_t mfn_of(std::uint32_t domid, std::uint64_t pfn);
[[nodiscard]] std::uint32_t page_type(std::uint32_t domid, std::uint64_t pfn);
[[nodiscard]] std::vector<std::uint8_t> normalised_memory(std::uint32_t domid);
[[nodiscard]] std::vector<std::uint64_t> p2m_pages(std::uint32_t domid);
[[nodiscard]] std::vector<std::uint64_t> p2m(std::uint32_t domid);
[[nodiscard]] unsigned pinned_tables(std::uint32_t domid);
struct PvVcpu {
    std::uint64_t rip = 0, rax = 0;
    std::uint64_t start_info_pfn = 0, cr3_pfn = 0, cr1_pfn = 0, gdt_pfn = 0; // rdx, cr3, cr1, GDT as pfns
};
[[nodiscard]] PvVcpu restored_vcpu0(std::uint32_t domid);
// The guest maps a frame that is not its own (as a grant mapping would) in
// one of its page tables.
void map_foreign_frame(std::uint32_t domid);
// The guest writes its shared info page (between two steps of its vCPU).
void edit_shared_info(std::uint32_t domid, const std::function<void(shared_info_x86_64 &)> &edit);

// Reads a counter (the vCPU's rip) out of an HVM context blob in Xen's format.
[[nodiscard]] std::uint64_t rip_in_context(const std::string &context);
// Reads vCPU 0's rax (the suspend's return value) out of an HVM context blob.
[[nodiscard]] std::uint64_t rax_in_context(const std::string &context);
// Reads the counter stored in page 0 of a memory image.
[[nodiscard]] std::uint64_t stored_counter_in(const std::uint8_t *memory);

// Error injection. The (after+1)-th and every later call of `call` (e.g.
// "xc_logdirty_control") fails with `error` (errno), `times` times (0: for ever).
void fail_call(const std::string &call, int error, int after = 0, int times = 0);
// Before the (after+1)-th call of `call`, domain `domid` vanishes.
void vanish_on_call(const std::string &call, std::uint32_t domid, int after);
// Foreign mappings of more than `pages` pages fail with ENOMEM (0: no limit).
void limit_map_pages(std::size_t pages);
// How often each call was made.
[[nodiscard]] std::map<std::string, int> calls();
// Destroys every domain and forgets every injection.
void reset();

} // namespace understudy::testing::xen_double
