// TEST DOUBLE: see xen_double.h. The C entry points at the end have the
// signatures of Debian's libxen-dev 4.17 headers, which this file includes.
#include "tests/support/xen_double/xen_double.h"
#include "checkpoint/xen/qmp_client.h"
#include "tests/support/xen_double/fake_qmp.h"
#include "tests/support/xen_double/pv_layout.h"

#include <fstream>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <signal.h>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

extern "C" {
#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xen/hvm/save.h>
}

// The opaque handle types of the real libraries, defined by this double.
struct xc_interface_core {
    int magic = 0x7863;
};
struct xenforeignmemory_handle {
    int magic = 0x666d;
};
struct libxl__ctx {
    int magic = 0x786c;
};
// libxenguest's CPU policy object, as this double keeps it: serialised.
struct xc_cpu_policy {
    std::vector<xen_cpuid_leaf_t> leaves;
    std::vector<xen_msr_entry_t> msrs;
};

namespace understudy::testing::xen_double {

namespace {

constexpr std::size_t kPage = 4096;

struct Domain {
    std::uint32_t domid = 0;
    DomainSpec spec;
    int memfd = -1;
    std::uint8_t *view = nullptr; // the guest's own view (write-protected under log-dirty)
    std::vector<std::atomic<std::uint64_t>> dirty;
    std::atomic<bool> log_dirty{false};
    std::set<std::uint64_t> holes;
    std::map<std::uint32_t, std::uint64_t> params;
    bool context_loaded = false;

    std::mutex step_mutex; // held for one workload step; a pause takes it
    std::condition_variable step_cv;
    unsigned pause_count = 0;
    bool suspended = false;
    // Xen's suspend shutdown (xc_domain_shutdown(SHUTDOWN_suspend)): asked
    // for, and done; Xen defers it while a vCPU is inside an emulated I/O.
    bool shutdown_requested = false;
    bool shut_down = false;
    bool io_in_flight = false;
    unsigned suspend_count = 0;
    std::uint64_t suspend_result = 0; // vCPU 0's rax after its last suspend
    xc_cpu_policy policy;
    bool policy_set = false;
    bool restored = false;                       // built by libxl_domain_create_restore
    std::uint64_t populated = 0;                 // frames its restore populated
    std::vector<std::uint8_t> emulator_context;  // its EMULATOR_CONTEXT record
    std::string device_model_state;              // what its device model saved last
    unsigned device_model_saves = 0;
    std::atomic<bool> device_model_running{true}; // the stand-in's run state (QMP stop / cont)
    std::unique_ptr<FakeQmp> qmp;                // its device model's monitor (HVM) ...
    std::unique_ptr<RealDeviceModel> real_dm;    // ... or a real device model
    TscInfo tsc;
    std::atomic<std::uint64_t> counter{0};
    std::thread vcpu;
    bool stop = false;
    std::chrono::microseconds step{100};

    // PV only: its machine frames, layout, page types by pfn, shared info
    // page (the page after its memory in the memfd), the frames its
    // workload leaves alone, and what a restore loaded into vCPU 0.
    pv::Frames frames;
    pv::Layout layout;
    std::vector<std::uint32_t> types;
    shared_info_x86_64 *shared_info = nullptr;
    std::set<std::uint64_t> reserved;
    vcpu_guest_context_x86_64_t restored_vcpu0{};
    unsigned pins = 0;

    explicit Domain(std::uint64_t pages) : dirty((pages + 63) / 64), types(pages, 0) {}
    [[nodiscard]] bool pv() const { return spec.type == "pv"; }
};

std::mutex g_mutex; // guards the tables below
std::map<std::uint32_t, std::shared_ptr<Domain>> g_domains;
std::uint32_t g_next_domid = 1;
std::map<std::string, int> g_calls;
struct Failure {
    int error, after, times, used = 0;
};
std::map<std::string, Failure> g_failures;
struct Vanish {
    std::uint32_t domid;
    int after;
};
std::map<std::string, Vanish> g_vanish;
std::size_t g_map_limit = 0;
std::string g_restore_error;
std::string g_device_model_dir; // XEN_LIB_DIR
std::string g_run_dir;          // XEN_RUN_DIR
std::string g_real_dm_binary;   // "": the QMP stand-in
std::size_t g_device_model_padding = 0;
std::string g_device_model_replacement; // "": the stand-in's state
std::vector<std::uint8_t> g_last_stream;
std::uint32_t g_host_max_leaf = 0x16;
std::uint32_t g_host_leaf1_ecx = 0xffffffff;
constexpr std::uint32_t kAllCaps =
    XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_hap | XEN_SYSCTL_PHYSCAP_shadow;
std::uint32_t g_hypervisor_caps = kAllCaps;
constexpr std::uint32_t kMsrPlatformInfo = 0xce;

// The SIGSEGV handler looks domains up here without locks.
constexpr int kSlots = 16;
struct Slot {
    std::atomic<std::uint8_t *> base{nullptr};
    std::atomic<std::size_t> size{0};
    std::atomic<std::atomic<std::uint64_t> *> dirty{nullptr};
};
Slot g_slots[kSlots];
struct sigaction g_previous {};
std::atomic<bool> g_handler_installed{false};

void on_fault(int sig, siginfo_t *info, void *context)
{
    auto *addr = static_cast<std::uint8_t *>(info->si_addr);
    for (auto &slot : g_slots) {
        auto *base = slot.base.load();
        if (!base || addr < base || addr >= base + slot.size.load())
            continue;
        const std::size_t page = static_cast<std::size_t>(addr - base) / kPage;
        // First write to the page since the log was cleaned: allow, then
        // record. (Recording first lets a CLEAN in between take the bit and
        // protect the page, after which this handler would unprotect it
        // with no bit set, and later writes would go unlogged.)
        mprotect(base + page * kPage, kPage, PROT_READ | PROT_WRITE);
        slot.dirty.load()[page / 64].fetch_or(std::uint64_t{1} << (page % 64));
        return;
    }
    if (g_previous.sa_flags & SA_SIGINFO) {
        g_previous.sa_sigaction(sig, info, context);
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL); // the fault repeats and kills, as it should
    }
}

// Catch2 restores its own handler after each test case: install ours again
// whenever it is not the current one.
void install_handler()
{
    struct sigaction current {};
    sigaction(SIGSEGV, nullptr, &current);
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == &on_fault)
        return;
    struct sigaction ours {};
    ours.sa_sigaction = &on_fault;
    ours.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&ours.sa_mask);
    sigaction(SIGSEGV, &ours, &g_previous);
}

void release(const std::shared_ptr<Domain> &d);

// Counts the call and applies injected failures; true: fail with errno set.
bool intercept(const std::string &call)
{
    std::shared_ptr<Domain> vanishing;
    int failed = 0;
    {
        std::lock_guard lock(g_mutex);
        const int n = g_calls[call]++;
        if (auto v = g_vanish.find(call); v != g_vanish.end() && n >= v->second.after) {
            if (auto d = g_domains.find(v->second.domid); d != g_domains.end()) {
                vanishing = d->second;
                g_domains.erase(d);
            }
            g_vanish.erase(v);
        }
        if (auto f = g_failures.find(call); f != g_failures.end() && n >= f->second.after &&
                                            (f->second.times == 0 || f->second.used < f->second.times)) {
            ++f->second.used;
            failed = f->second.error;
        }
    }
    if (vanishing)
        release(vanishing); // outside the lock: its vCPU stops first
    if (failed) {
        errno = failed;
        return true;
    }
    return false;
}

std::shared_ptr<Domain> find(std::uint32_t domid)
{
    std::lock_guard lock(g_mutex);
    auto it = g_domains.find(domid);
    return it == g_domains.end() ? nullptr : it->second;
}

std::shared_ptr<Domain> require(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        errno = ESRCH;
    return d;
}

// A C entry point's start: the call counted (and failed if injected), then
// its domain (ESRCH if there is none). Null: return -1, errno set.
std::shared_ptr<Domain> enter(const std::string &call, std::uint32_t domid)
{
    if (intercept(call))
        return nullptr;
    return require(domid);
}

void vcpu_loop(Domain *d)
{
    std::unique_lock lock(d->step_mutex);
    while (!d->stop) {
        d->step_cv.wait(lock, [&] {
            return d->stop || (d->pause_count == 0 && !d->suspended && !d->shutdown_requested && !d->io_in_flight);
        });
        if (d->stop)
            break;
        const std::uint64_t n = d->counter.load() + 1;
        const std::uint64_t ram = d->spec.pages;
        std::uint64_t page = 1 + (n * 7919) % (ram - 1);
        while (d->holes.count(page) || d->reserved.count(page))
            page = 1 + (page % (ram - 1));
        std::memcpy(d->view + page * kPage + (n % 512) * 8, &n, 8);
        if (d->pv() && n % 8 == 0) { // the guest maps another of its pages (Xen writes the entry)
            std::uint64_t target = 1 + (n * 13) % 63;
            while (d->holes.count(target))
                target = 1 + target % 63;
            const std::uint64_t entry = d->frames.mfn_of(target) << 12 | pv::kPteFlags;
            std::memcpy(d->view + d->layout.l1 * kPage + (1 + n % 63) * 8, &entry, 8);
        }
        std::memcpy(d->view, &n, 8); // page 0: the last step done
        d->counter.store(n);
        d->step_cv.wait_for(lock, d->step, [&] {
            return d->stop || d->pause_count > 0 || d->suspended || d->shutdown_requested || d->io_in_flight;
        });
    }
}

void stop_vcpu(Domain &d)
{
    {
        std::lock_guard lock(d.step_mutex);
        d.stop = true;
    }
    d.step_cv.notify_all();
    if (d.vcpu.joinable())
        d.vcpu.join();
}

void release(const std::shared_ptr<Domain> &d)
{
    d->qmp.reset();
    d->real_dm.reset();
    stop_vcpu(*d);
    for (auto &slot : g_slots)
        if (slot.base.load() == d->view) {
            slot.base.store(nullptr);
            slot.size.store(0);
        }
    munmap(d->view, d->spec.pages * kPage);
    if (d->shared_info)
        munmap(d->shared_info, kPage);
    close(d->memfd);
}

void protect_all(Domain &d)
{
    // Bits cleared first, then pages read-only: a write in between lands
    // before the log starts (the first copy reads it); clearing after
    // protecting could drop a write that faulted in between, for good.
    for (auto &w : d.dirty)
        w.store(0);
    mprotect(d.view, d.spec.pages * kPage, PROT_READ);
}

// What the device model saves of itself: a stand-in that begins as QEMU's
// file format does (magic, version 3) and names the moment (the domain's
// step) and the way; or, with a real device model, what QEMU saves when
// libxl asks it to.
void save_device_model(Domain &d, const std::string &path, const char *way)
{
    if (d.real_dm) {
        understudy::xen::QmpMonitor(d.real_dm->qmp_socket(), std::chrono::seconds(5))
            .execute("xen-save-devices-state", R"({"filename":)" + understudy::xen::qmp_string(path) +
                                                   R"(,"live":false})");
        std::ifstream in(path, std::ios::binary);
        std::string state((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::lock_guard lock(g_mutex);
        ++d.device_model_saves;
        d.device_model_state = std::move(state);
        return;
    }
    std::lock_guard lock(g_mutex);
    ++d.device_model_saves;
    const std::string state = !g_device_model_replacement.empty()
                                  ? g_device_model_replacement
                                  : std::string("QEVM\0\0\0\3", 8) + " device state of domain " +
                                        std::to_string(d.domid) + " at step " + std::to_string(d.counter.load()) +
                                        ", save " + std::to_string(d.device_model_saves) + " (" + way + ")";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << state << std::string(g_device_model_padding, '\0');
    d.device_model_state = state;
}

// libxl stops QEMU before it saves a domain and has it continue when the
// domain resumes.
void run_device_model(Domain &d, bool run)
{
    if (d.real_dm)
        understudy::xen::QmpMonitor(d.real_dm->qmp_socket(), std::chrono::seconds(5)).execute(run ? "cont" : "stop");
    else
        d.device_model_running = run;
}

// A PV guest's start info page names its xenstore and console pages by
// machine frame while it runs, by pfn while it is suspended (the guest
// converts them itself, before and after its suspend hypercall).
void canonicalise_start_info(Domain &d, bool to_pfns)
{
    start_info_t info;
    std::memcpy(&info, d.view + d.layout.start_info * kPage, sizeof info);
    auto convert = [&](xen_pfn_t frame) -> xen_pfn_t {
        return to_pfns ? d.frames.pfn_of(frame).value_or(frame) : d.frames.mfn_of(frame);
    };
    info.store_mfn = convert(info.store_mfn);
    info.console.domU.mfn = convert(info.console.domU.mfn);
    std::memcpy(d.view + d.layout.start_info * kPage, &info, sizeof info); // the guest writes it: dirty
}

std::string make_context(const Domain &d)
{
    std::string out;
    auto put = [&](std::uint16_t type, std::uint16_t instance, const void *body, std::uint32_t length) {
        hvm_save_descriptor desc{type, instance, length};
        out.append(reinterpret_cast<const char *>(&desc), sizeof desc);
        out.append(static_cast<const char *>(body), length);
    };
    hvm_save_header header{};
    header.magic = HVM_FILE_MAGIC;
    header.version = HVM_FILE_VERSION;
    put(1, 0, &header, sizeof header);
    for (unsigned v = 0; v < d.spec.vcpus; ++v) {
        hvm_hw_cpu cpu{};
        cpu.rip = v == 0 ? d.counter.load() : 0;
        cpu.rax = v == 0 ? d.suspend_result : 0;
        cpu.rsp = 0x8000 + v;
        put(2, static_cast<std::uint16_t>(v), &cpu, sizeof cpu);
    }
    put(0, 0, "", 0);
    return out;
}

} // namespace

std::uint32_t create_domain(const DomainSpec &spec)
{
    auto d = std::make_shared<Domain>(spec.pages);
    d->spec = spec;
    d->holes.insert(spec.holes.begin(), spec.holes.end());
    d->memfd = memfd_create(("xen-double-" + spec.name).c_str(), MFD_CLOEXEC);
    // One page more than its memory: a PV domain's shared info page.
    if (d->memfd < 0 || ftruncate(d->memfd, static_cast<off_t>((spec.pages + 1) * kPage)) != 0)
        throw std::runtime_error("xen double: memfd for the domain's memory");
    void *view = mmap(nullptr, spec.pages * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
    if (view == MAP_FAILED)
        throw std::runtime_error("xen double: mapping the domain's memory");
    d->view = static_cast<std::uint8_t *>(view);
    d->params[HVM_PARAM_STORE_PFN] = spec.pages - 1;
    d->params[HVM_PARAM_CONSOLE_PFN] = spec.pages - 2;
    d->params[HVM_PARAM_IDENT_PT] = 0xfeffc000;
    d->policy.leaves = {
        {0x0, XEN_CPUID_NO_SUBLEAF, spec.cpuid_max_leaf, 0x756e6547, 0x6c65746e, 0x49656e69}, // GenuineIntel
        {0x1, XEN_CPUID_NO_SUBLEAF, 0x306c3, 0x00010800, spec.cpuid_leaf1_ecx, 0x1f8bfbff},
        {0x7, 0, 0, 0x000027ab, 0, 0},
    };
    d->policy.msrs = {{kMsrPlatformInfo, 0, 0}};
    d->tsc = TscInfo{0, spec.tsc_khz, 1, 0};
    {
        std::lock_guard lock(g_mutex);
        d->domid = g_next_domid++;
    }
    if (d->pv()) {
        void *shared = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd,
                            static_cast<off_t>(spec.pages * kPage));
        if (shared == MAP_FAILED)
            throw std::runtime_error("xen double: mapping the shared info page");
        d->shared_info = static_cast<shared_info_x86_64 *>(shared);
        d->frames = pv::Frames{0x100000ULL * d->domid, spec.pages, &d->holes};
        d->layout = pv::layout_for(spec.pages);
        d->reserved = d->layout.reserved();
        pv::build(d->view, *d->shared_info, d->layout, d->frames, d->types, spec.pv_p2m);
    }
    install_handler();
    bool slotted = false;
    for (auto &slot : g_slots) {
        std::uint8_t *expected = nullptr;
        if (slot.base.load() == nullptr) {
            slot.dirty.store(d->dirty.data());
            slot.size.store(spec.pages * kPage);
            if (slot.base.compare_exchange_strong(expected, d->view)) {
                slotted = true;
                break;
            }
        }
    }
    if (!slotted)
        throw std::runtime_error("xen double: too many domains");
    std::string run_dir, real_dm;
    {
        std::lock_guard lock(g_mutex);
        g_domains[d->domid] = d;
        run_dir = g_run_dir;
        real_dm = g_real_dm_binary;
    }
    if (spec.type == "hvm" && !run_dir.empty() && !real_dm.empty()) {
        d->real_dm = std::make_unique<RealDeviceModel>(real_dm, run_dir, d->domid);
    } else if (spec.type == "hvm" && !run_dir.empty()) {
        std::weak_ptr<Domain> weak = d;
        d->qmp = std::make_unique<FakeQmp>(
            run_dir + "/qmp-libxl-" + std::to_string(d->domid),
            [weak](const std::string &command, const google::protobuf::Struct &arguments) -> std::string {
                auto dom = weak.lock();
                const bool known = command == "xen-save-devices-state" || command == "stop" || command == "cont";
                if (!known || !dom)
                    return R"({"error": {"class": "CommandNotFound", "desc": "The command )" + command +
                           R"( has not been found"}})";
                if (intercept("qmp:" + command))
                    return R"({"error": {"class": "GenericError", "desc": ")" +
                           std::string(command == "xen-save-devices-state" ? "Failed to save device state"
                                                                           : "Could not " + command) +
                           R"("}})";
                if (command != "xen-save-devices-state") {
                    dom->device_model_running = command == "cont";
                    return R"({"return": {}})";
                }
                const auto it = arguments.fields().find("filename");
                const auto live = arguments.fields().find("live");
                if (it == arguments.fields().end() || live == arguments.fields().end() || live->second.bool_value())
                    return R"({"error": {"class": "GenericError", "desc": "expected filename and live = false"}})";
                save_device_model(*dom, it->second.string_value(), "qmp");
                return R"({"return": {}})";
            });
    }
    return d->domid;
}

void destroy_domain(std::uint32_t domid)
{
    std::shared_ptr<Domain> d;
    {
        std::lock_guard lock(g_mutex);
        auto it = g_domains.find(domid);
        if (it == g_domains.end())
            return;
        d = it->second;
        g_domains.erase(it);
    }
    release(d);
}

void balloon(std::uint32_t domid, const std::vector<std::uint64_t> &out, const std::vector<std::uint64_t> &in)
{
    auto d = find(domid);
    if (!d)
        return;
    std::lock_guard lock(d->step_mutex); // between two steps of its vCPU
    static const std::uint8_t zeros[kPage] = {};
    for (auto pfn : out)
        d->holes.insert(pfn);
    for (auto pfn : in) {
        d->holes.erase(pfn);
        if (::pwrite(d->memfd, zeros, kPage, static_cast<off_t>(pfn * kPage)) != static_cast<ssize_t>(kPage))
            throw std::runtime_error("xen double: zeroing a ballooned-in frame");
    }
    if (d->pv()) // the guest's balloon driver updates its p2m (written through its own view: dirty)
        pv::write_p2m(d->view, d->layout, d->frames);
}

bool exists(std::uint32_t domid)
{
    return find(domid) != nullptr;
}

std::uint32_t domid_of(const std::string &name)
{
    std::lock_guard lock(g_mutex);
    for (auto &[id, d] : g_domains)
        if (d->spec.name == name)
            return id;
    return 0;
}

void start_workload(std::uint32_t domid, std::chrono::microseconds step)
{
    auto d = find(domid);
    if (!d)
        throw std::runtime_error("xen double: no domain " + std::to_string(domid));
    d->step = step;
    d->vcpu = std::thread(vcpu_loop, d.get());
}

void stop_workload(std::uint32_t domid)
{
    if (auto d = find(domid))
        stop_vcpu(*d);
}

std::vector<std::uint8_t> memory(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        throw std::runtime_error("xen double: no domain " + std::to_string(domid));
    std::lock_guard lock(d->step_mutex);
    return {d->view, d->view + d->spec.pages * kPage};
}

std::uint64_t counter(std::uint32_t domid)
{
    auto d = find(domid);
    return d ? d->counter.load() : 0;
}

std::uint64_t stored_counter(std::uint32_t domid)
{
    auto d = find(domid);
    return d ? stored_counter_in(d->view) : 0;
}

std::uint64_t stored_counter_in(const std::uint8_t *mem)
{
    std::uint64_t n;
    std::memcpy(&n, mem, 8);
    return n;
}

std::map<std::uint32_t, std::uint64_t> params(std::uint32_t domid)
{
    auto d = find(domid);
    return d ? d->params : std::map<std::uint32_t, std::uint64_t>{};
}

bool log_dirty_enabled(std::uint32_t domid)
{
    auto d = find(domid);
    return d && d->log_dirty.load();
}

unsigned pause_count(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return 0;
    std::lock_guard lock(d->step_mutex);
    return d->pause_count;
}

void set_host_cpu(std::uint32_t max_leaf, std::uint32_t leaf1_ecx)
{
    std::lock_guard lock(g_mutex);
    g_host_max_leaf = max_leaf;
    g_host_leaf1_ecx = leaf1_ecx;
}

void set_hypervisor_caps(std::uint32_t capabilities)
{
    std::lock_guard lock(g_mutex);
    g_hypervisor_caps = capabilities;
}

std::uint32_t cpuid_leaf1_ecx(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return 0;
    std::lock_guard lock(g_mutex);
    for (const auto &l : d->policy.leaves)
        if (l.leaf == 1)
            return l.c;
    return 0;
}

bool restored(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(g_mutex);
    return d && d->restored;
}

void pad_device_model_state(std::size_t bytes)
{
    std::lock_guard lock(g_mutex);
    g_device_model_padding = bytes;
}

void replace_device_model_state(const std::string &bytes)
{
    std::lock_guard lock(g_mutex);
    g_device_model_replacement = bytes;
}

void use_real_device_model(const std::string &binary)
{
    std::lock_guard lock(g_mutex);
    g_real_dm_binary = binary;
}

void begin_emulated_io(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(d->step_mutex); // after the step in progress
    d->io_in_flight = true;
}

void end_emulated_io(std::uint32_t domid)
{
    auto d = find(domid);
    {
        std::lock_guard lock(d->step_mutex);
        d->io_in_flight = false;
        if (d->shutdown_requested)
            d->shut_down = true; // the deferred suspend completes
    }
    d->step_cv.notify_all();
}

bool shut_down(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return false;
    std::lock_guard lock(d->step_mutex);
    return d->shut_down || d->shutdown_requested;
}

bool device_model_running(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return false;
    return d->real_dm ? d->real_dm->status() == "running" : d->device_model_running.load();
}

std::size_t device_model_fdsets(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return 0;
    if (d->real_dm)
        return static_cast<std::size_t>(understudy::xen::QmpMonitor(d->real_dm->qmp_socket(), std::chrono::seconds(5))
                                            .execute("query-fdsets")
                                            .list_value()
                                            .values_size());
    return d->qmp ? d->qmp->fdsets() : 0;
}

RealDeviceModel *real_device_model(std::uint32_t domid)
{
    auto d = find(domid);
    return d ? d->real_dm.get() : nullptr;
}

void set_xen_dirs(const std::string &lib, const std::string &run)
{
    std::lock_guard lock(g_mutex);
    g_device_model_dir = lib;
    g_run_dir = run;
}

std::string device_model_state(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(g_mutex);
    return d ? d->device_model_state : std::string();
}

std::string emulator_context(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(g_mutex);
    return d ? std::string(d->emulator_context.begin(), d->emulator_context.end()) : std::string();
}

std::uint64_t populated_frames(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(g_mutex);
    return d ? d->populated : 0;
}

std::vector<std::uint8_t> last_restore_stream()
{
    std::lock_guard lock(g_mutex);
    return g_last_stream;
}

std::string last_restore_error()
{
    std::lock_guard lock(g_mutex);
    return g_restore_error;
}

bool cpu_policy_set(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(g_mutex);
    return d && d->policy_set;
}

TscInfo tsc_info(std::uint32_t domid)
{
    auto d = find(domid);
    std::lock_guard lock(g_mutex);
    return d ? d->tsc : TscInfo{};
}

bool suspended(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return false;
    std::lock_guard lock(d->step_mutex);
    return d->suspended;
}

unsigned suspend_count(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return 0;
    std::lock_guard lock(d->step_mutex);
    return d->suspend_count;
}

std::uint64_t suspend_result(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return 0;
    std::lock_guard lock(d->step_mutex);
    return d->suspend_result;
}

bool context_loaded(std::uint32_t domid)
{
    auto d = find(domid);
    return d && d->context_loaded;
}

std::uint64_t mfn_of(std::uint32_t domid, std::uint64_t pfn)
{
    auto d = find(domid);
    if (!d || !d->pv())
        return pv::kNone;
    std::lock_guard lock(d->step_mutex);
    return d->frames.mfn_of(pfn);
}

std::uint32_t page_type(std::uint32_t domid, std::uint64_t pfn)
{
    auto d = find(domid);
    if (!d || pfn >= d->types.size())
        return 0;
    std::lock_guard lock(d->step_mutex);
    return d->types[pfn];
}

std::vector<std::uint8_t> normalised_memory(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        throw std::runtime_error("xen double: no domain " + std::to_string(domid));
    std::lock_guard lock(d->step_mutex);
    return pv::normalised(d->view, d->spec.pages, d->types, d->frames);
}

std::vector<std::uint64_t> p2m_pages(std::uint32_t domid)
{
    auto d = find(domid);
    return d ? d->layout.leaves : std::vector<std::uint64_t>{};
}

std::vector<std::uint64_t> p2m(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return {};
    std::lock_guard lock(d->step_mutex);
    std::vector<std::uint64_t> entries(d->spec.pages);
    for (std::uint64_t pfn = 0; pfn < d->spec.pages; ++pfn)
        std::memcpy(&entries[pfn], d->view + d->layout.leaves[pfn / 512] * kPage + (pfn % 512) * 8, 8);
    return entries;
}

unsigned pinned_tables(std::uint32_t domid)
{
    auto d = find(domid);
    return d ? d->pins : 0;
}

PvVcpu restored_vcpu0(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d)
        return {};
    std::lock_guard lock(d->step_mutex);
    const auto &c = d->restored_vcpu0;
    auto pfn = [&](std::uint64_t mfn) { return d->frames.pfn_of(mfn).value_or(pv::kNone); };
    return {c.user_regs.rip,         c.user_regs.rax,         pfn(c.user_regs.rdx),
            pfn(c.ctrlreg[3] >> 12), pfn(c.ctrlreg[1] >> 12), pfn(c.gdt_frames[0])};
}

void map_foreign_frame(std::uint32_t domid)
{
    auto d = find(domid);
    if (!d || !d->pv())
        return;
    std::lock_guard lock(d->step_mutex); // between two steps of its vCPU
    const std::uint64_t entry = std::uint64_t{0x7777} << 12 | pv::kPteFlags;
    std::memcpy(d->view + d->layout.l1 * kPage + 100 * 8, &entry, 8);
}

void edit_shared_info(std::uint32_t domid, const std::function<void(shared_info_x86_64 &)> &edit)
{
    auto d = find(domid);
    if (!d || !d->shared_info)
        return;
    std::lock_guard lock(d->step_mutex);
    edit(*d->shared_info);
}

void enable_log_dirty_behind_our_back(std::uint32_t domid)
{
    if (auto d = find(domid)) {
        protect_all(*d);
        d->log_dirty = true;
    }
}

namespace {

hvm_hw_cpu vcpu0_in_context(const std::string &context)
{
    std::size_t at = 0;
    while (at + sizeof(hvm_save_descriptor) <= context.size()) {
        hvm_save_descriptor desc;
        std::memcpy(&desc, context.data() + at, sizeof desc);
        at += sizeof desc;
        if (desc.typecode == 2 && desc.instance == 0 && desc.length >= sizeof(hvm_hw_cpu)) {
            hvm_hw_cpu cpu;
            std::memcpy(&cpu, context.data() + at, sizeof cpu);
            return cpu;
        }
        at += desc.length;
    }
    throw std::runtime_error("xen double: no CPU record for vCPU 0 in the HVM context");
}

} // namespace

std::uint64_t rip_in_context(const std::string &context)
{
    return vcpu0_in_context(context).rip;
}

std::uint64_t rax_in_context(const std::string &context)
{
    return vcpu0_in_context(context).rax;
}

void fail_call(const std::string &call, int error, int after, int times)
{
    std::lock_guard lock(g_mutex);
    g_failures[call] = Failure{error, g_calls[call] + after, times};
}

void vanish_on_call(const std::string &call, std::uint32_t domid, int after)
{
    std::lock_guard lock(g_mutex);
    g_vanish[call] = Vanish{domid, g_calls[call] + after};
}

void limit_map_pages(std::size_t pages)
{
    std::lock_guard lock(g_mutex);
    g_map_limit = pages;
}

std::map<std::string, int> calls()
{
    std::lock_guard lock(g_mutex);
    return g_calls;
}

void reset()
{
    std::map<std::uint32_t, std::shared_ptr<Domain>> doomed;
    {
        std::lock_guard lock(g_mutex);
        doomed.swap(g_domains);
        g_failures.clear();
        g_vanish.clear();
        g_calls.clear();
        g_map_limit = 0;
        g_next_domid = 1;
        g_host_max_leaf = 0x16;
        g_host_leaf1_ecx = 0xffffffff;
        g_hypervisor_caps = kAllCaps;
        g_restore_error.clear();
        g_last_stream.clear();
        g_device_model_dir.clear();
        g_run_dir.clear();
        g_real_dm_binary.clear();
        g_device_model_padding = 0;
        g_device_model_replacement.clear();
    }
    for (auto &[id, d] : doomed)
        release(d);
}

} // namespace understudy::testing::xen_double

// ---- the C entry points ------------------------------------------------------

namespace xd = understudy::testing::xen_double;

namespace {

// Where frame `frame` of domain `d` is in its memfd: a pfn (HVM, PVH), or a
// machine frame (PV: its memory or its shared info page); nullopt if the
// domain has no RAM there.
std::optional<off_t> offset_of(const xd::Domain &d, xen_pfn_t frame)
{
    if (d.pv()) {
        if (frame == d.frames.shared_info_mfn())
            return static_cast<off_t>(d.spec.pages * xd::kPage);
        const auto pfn = d.frames.pfn_of(frame);
        if (!pfn)
            return std::nullopt;
        return static_cast<off_t>(*pfn * xd::kPage);
    }
    if (frame >= d.spec.pages || d.holes.count(frame))
        return std::nullopt;
    return static_cast<off_t>(frame * xd::kPage);
}

void *map_frames(std::uint32_t domid, int prot, size_t count, const xen_pfn_t *arr, int *err)
{
    if (xd::intercept("xenforeignmemory_map"))
        return nullptr;
    auto d = xd::require(domid);
    if (!d)
        return nullptr;
    std::lock_guard holes_stable(d->step_mutex);
    {
        std::lock_guard lock(xd::g_mutex);
        if (xd::g_map_limit && count > xd::g_map_limit) {
            errno = ENOMEM;
            return nullptr;
        }
    }
    auto *base = static_cast<std::uint8_t *>(mmap(nullptr, count * xd::kPage, PROT_NONE,
                                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base == MAP_FAILED)
        return nullptr;
    for (size_t i = 0; i < count;) {
        const auto at = offset_of(*d, arr[i]);
        if (!at) {
            err[i++] = -EINVAL;
            continue;
        }
        size_t run = 1; // frames adjacent in the memfd share one mmap
        while (i + run < count) {
            const auto next = offset_of(*d, arr[i + run]);
            if (!next || *next != *at + static_cast<off_t>(run * xd::kPage))
                break;
            ++run;
        }
        void *mapped = mmap(base + i * xd::kPage, run * xd::kPage, prot, MAP_SHARED | MAP_FIXED, d->memfd, *at);
        for (size_t k = 0; k < run; ++k)
            err[i + k] = mapped == MAP_FAILED ? -errno : 0;
        i += run;
    }
    return base;
}

} // namespace

extern "C" {

xc_interface *xc_interface_open(xentoollog_logger *, xentoollog_logger *, unsigned)
{
    if (xd::intercept("xc_interface_open"))
        return nullptr;
    return new xc_interface_core;
}

int xc_interface_close(xc_interface *xch)
{
    delete xch;
    return 0;
}

int xc_domain_pause(xc_interface *, uint32_t domid)
{
    auto d = xd::enter("xc_domain_pause", domid);
    if (!d)
        return -1;
    std::lock_guard lock(d->step_mutex); // waits for the step in progress
    ++d->pause_count;
    return 0;
}

int xc_domain_unpause(xc_interface *, uint32_t domid)
{
    auto d = xd::enter("xc_domain_unpause", domid);
    if (!d)
        return -1;
    {
        std::lock_guard lock(d->step_mutex);
        if (d->pause_count == 0) {
            errno = EINVAL;
            return -1;
        }
        --d->pause_count;
    }
    d->step_cv.notify_all();
    return 0;
}

int xc_domain_shutdown(xc_interface *, uint32_t domid, int reason)
{
    auto d = xd::enter("xc_domain_shutdown", domid);
    if (!d)
        return -1;
    if (reason != SHUTDOWN_suspend) {
        errno = EINVAL; // the double knows only the suspend shutdown
        return -1;
    }
    std::lock_guard lock(d->step_mutex); // the step in progress ends first
    d->shutdown_requested = true;
    d->shut_down = !d->io_in_flight; // else when its I/O completes
    return 0;
}

// xc_domain_resume of an HVM domain: XEN_DOMCTL_resumedomain, nothing else
// (fast = 1 would set a PV-driver guest's suspend return value).
int xc_domain_resume(xc_interface *, uint32_t domid, int fast)
{
    auto d = xd::enter("xc_domain_resume", domid);
    if (!d)
        return -1;
    if (fast) {
        errno = EINVAL;
        return -1;
    }
    {
        std::lock_guard lock(d->step_mutex);
        d->shutdown_requested = false;
        d->shut_down = false;
    }
    d->step_cv.notify_all();
    return 0;
}

// As Xen's getdomaininfo: the first domain from first_domid on.
int xc_domain_getinfo(xc_interface *, uint32_t first_domid, unsigned int max_doms, xc_dominfo_t *info)
{
    if (xd::intercept("xc_domain_getinfo"))
        return -1;
    std::shared_ptr<xd::Domain> d;
    {
        std::lock_guard lock(xd::g_mutex);
        auto it = xd::g_domains.lower_bound(first_domid);
        if (it == xd::g_domains.end() || max_doms == 0)
            return 0;
        d = it->second;
    }
    std::lock_guard lock(d->step_mutex);
    *info = xc_dominfo_t{};
    info->domid = d->domid;
    info->hvm = d->spec.type != "pv";
    // What Xen emulates for it, as libxl asks at creation: PVH only the
    // local APIC, HVM everything but vPCI (Dom0's).
    info->arch_config.emulation_flags = d->spec.type == "pv"    ? 0u
                                        : d->spec.type == "pvh" ? XEN_X86_EMU_LAPIC
                                                                : XEN_X86_EMU_ALL & ~XEN_X86_EMU_VPCI;
    info->paused = d->pause_count > 0;
    info->shutdown = d->shut_down;
    info->shutdown_reason = d->shut_down ? SHUTDOWN_suspend : 0;
    info->nr_pages = d->spec.pages - d->holes.size();
    info->max_memkb = d->spec.pages * 4;
    info->nr_online_vcpus = d->spec.vcpus;
    info->max_vcpu_id = d->spec.vcpus - 1;
    if (d->pv())
        info->shared_info_frame = d->frames.shared_info_mfn();
    return 1;
}

int xc_domain_get_guest_width(xc_interface *, uint32_t domid, unsigned int *guest_width)
{
    auto d = xd::enter("xc_domain_get_guest_width", domid);
    if (!d)
        return -1;
    *guest_width = d->pv() ? d->spec.pv_width : 8;
    return 0;
}

int xc_vcpu_getinfo(xc_interface *, uint32_t domid, uint32_t vcpu, xc_vcpuinfo_t *info)
{
    auto d = xd::enter("xc_vcpu_getinfo", domid);
    if (!d)
        return -1;
    if (vcpu >= d->spec.vcpus) {
        errno = ESRCH;
        return -1;
    }
    *info = xc_vcpuinfo_t{};
    info->vcpu = vcpu;
    info->online = 1;
    return 0;
}

// A PV vCPU as Xen reports it: machine frames in cr3, cr1 and the GDT; the
// start info page's machine frame in vCPU 0's rdx while the guest is
// suspended (its suspend hypercall's argument).
int xc_vcpu_getcontext(xc_interface *, uint32_t domid, uint32_t vcpu, vcpu_guest_context_any_t *ctxt)
{
    auto d = xd::enter("xc_vcpu_getcontext", domid);
    if (!d)
        return -1;
    if (!d->pv() || vcpu >= d->spec.vcpus) {
        errno = EINVAL;
        return -1;
    }
    std::lock_guard lock(d->step_mutex);
    *ctxt = vcpu_guest_context_any_t{};
    auto &c = ctxt->x64;
    c.flags = VGCF_online | VGCF_in_kernel;
    c.user_regs.rip = vcpu == 0 ? d->counter.load() : 0x1000;
    c.user_regs.rax = vcpu == 0 ? d->suspend_result : 0;
    c.user_regs.rdx = vcpu == 0 && d->suspended ? d->frames.mfn_of(d->layout.start_info) : 0xdead0000 + d->counter.load();
    c.user_regs.rsp = 0x8000 + vcpu;
    c.ctrlreg[3] = d->frames.mfn_of(d->layout.kernel_l4) << 12;
    c.ctrlreg[1] = d->frames.mfn_of(d->layout.user_l4) << 12;
    c.gdt_ents = 16;
    c.gdt_frames[0] = d->frames.mfn_of(d->layout.gdt);
    c.kernel_ss = 0xe02b;
    c.kernel_sp = 0xffff888000010000 + vcpu;
    return 0;
}

void *xc__hypercall_buffer_alloc(xc_interface *, xc_hypercall_buffer_t *b, size_t size)
{
    if (xd::intercept("xc_hypercall_buffer_alloc"))
        return nullptr;
    b->hbuf = std::calloc(1, size ? size : 1);
    b->sz = size;
    return b->hbuf;
}

void xc__hypercall_buffer_free(xc_interface *, xc_hypercall_buffer_t *b)
{
    std::free(b->hbuf);
    b->hbuf = nullptr;
}

// The domctls the PV save makes: page types, and a vCPU's extended
// context, xsave area and MSRs (each asked for its size first).
int xc_domctl(xc_interface *, struct xen_domctl *domctl)
{
    std::string name = domctl->cmd == XEN_DOMCTL_getpageframeinfo3     ? "XEN_DOMCTL_getpageframeinfo3"
                       : domctl->cmd == XEN_DOMCTL_get_ext_vcpucontext ? "XEN_DOMCTL_get_ext_vcpucontext"
                       : domctl->cmd == XEN_DOMCTL_getvcpuextstate     ? "XEN_DOMCTL_getvcpuextstate"
                       : domctl->cmd == XEN_DOMCTL_get_vcpu_msrs       ? "XEN_DOMCTL_get_vcpu_msrs"
                                                                       : "xc_domctl(" + std::to_string(domctl->cmd) + ")";
    auto d = xd::enter(name, domctl->domain);
    if (!d)
        return -1;
    std::lock_guard lock(d->step_mutex);
    switch (domctl->cmd) {
    case XEN_DOMCTL_getpageframeinfo3: {
        auto *arr = domctl->u.getpageframeinfo3.array.p;
        if (!arr || domctl->u.getpageframeinfo3.num > 1024) {
            errno = EINVAL;
            return -1;
        }
        for (std::uint64_t i = 0; i < domctl->u.getpageframeinfo3.num; ++i) {
            const auto pfn = d->pv() ? d->frames.pfn_of(arr[i]) : std::optional<std::uint64_t>(arr[i]);
            arr[i] = !pfn || *pfn >= d->spec.pages ? XEN_DOMCTL_PFINFO_XTAB : d->types[*pfn];
        }
        return 0;
    }
    case XEN_DOMCTL_get_ext_vcpucontext: {
        auto &e = domctl->u.ext_vcpucontext;
        if (e.vcpu >= d->spec.vcpus) {
            errno = ESRCH;
            return -1;
        }
        const auto vcpu = e.vcpu;
        e = xen_domctl_ext_vcpucontext{};
        e.vcpu = vcpu;
        e.size = sizeof e;
        e.sysenter_callback_cs = 0xe033;
        e.sysenter_callback_eip = 0xffffffff81000000 + vcpu;
        return 0;
    }
    case XEN_DOMCTL_getvcpuextstate: {
        auto &x = domctl->u.vcpuextstate;
        constexpr std::uint64_t kSize = 832; // legacy area, header, AVX
        if (!x.buffer.p) {
            x.xfeature_mask = 0x7;
            x.size = kSize;
            return 0;
        }
        if (x.size < kSize) {
            errno = ENOBUFS;
            return -1;
        }
        auto *bytes = reinterpret_cast<std::uint8_t *>(x.buffer.p);
        for (std::uint64_t i = 0; i < kSize; ++i)
            bytes[i] = static_cast<std::uint8_t>(i * 7 + x.vcpu + d->counter.load());
        x.size = kSize;
        return 0;
    }
    case XEN_DOMCTL_get_vcpu_msrs: {
        auto &m = domctl->u.vcpu_msrs;
        if (!m.msrs.p) {
            m.msr_count = 1;
            return 0;
        }
        if (m.msr_count < 1) {
            errno = ENOBUFS;
            return -1;
        }
        m.msrs.p[0] = xen_domctl_vcpu_msr_t{0xc0011027, 0, 0x5 + m.vcpu}; // an AMD DR0 address mask
        m.msr_count = 1;
        return 0;
    }
    default:
        errno = ENOSYS;
        return -1;
    }
}

int xc_domain_maximum_gpfn(xc_interface *, uint32_t domid, xen_pfn_t *gpfns)
{
    auto d = xd::enter("xc_domain_maximum_gpfn", domid);
    if (!d)
        return -1;
    *gpfns = d->spec.pages - 1;
    return 0;
}

int xc_shadow_control(xc_interface *, uint32_t domid, unsigned int sop, unsigned int *, unsigned int)
{
    auto d = xd::enter("xc_shadow_control", domid);
    if (!d)
        return -1;
    switch (sop) {
    case XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY:
        if (d->log_dirty) {
            errno = EINVAL; // as Xen: already on (e.g. for video RAM)
            return -1;
        }
        xd::protect_all(*d);
        d->log_dirty = true;
        return 0;
    case XEN_DOMCTL_SHADOW_OP_OFF:
        d->log_dirty = false;
        mprotect(d->view, d->spec.pages * xd::kPage, PROT_READ | PROT_WRITE);
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
}

long long xc_logdirty_control(xc_interface *, uint32_t domid, unsigned int sop, xc_hypercall_buffer_t *dirty_bitmap,
                              unsigned long pages, unsigned int, xc_shadow_op_stats_t *stats)
{
    auto d = xd::enter("xc_logdirty_control", domid);
    if (!d)
        return -1;
    if (!d->log_dirty || (sop != XEN_DOMCTL_SHADOW_OP_CLEAN && sop != XEN_DOMCTL_SHADOW_OP_PEEK) || !dirty_bitmap ||
        !dirty_bitmap->hbuf) {
        errno = EINVAL;
        return -1;
    }
    auto *out = static_cast<std::uint64_t *>(dirty_bitmap->hbuf);
    const std::uint64_t n = std::min<std::uint64_t>(pages, d->spec.pages);
    for (std::uint64_t w = 0; w < (n + 63) / 64; ++w) {
        // CLEAN: bits taken first, then the pages write-protected again. A
        // write in between is not logged, but the caller reads the reported
        // pages only after this returns, so their copy holds it. (The other
        // order loses a write that faults between the two for good.)
        const std::uint64_t bits = sop == XEN_DOMCTL_SHADOW_OP_CLEAN ? d->dirty[w].exchange(0) : d->dirty[w].load();
        if (sop == XEN_DOMCTL_SHADOW_OP_CLEAN)
            for (unsigned b = 0; b < 64; ++b)
                if (bits & (std::uint64_t{1} << b))
                    mprotect(d->view + (w * 64 + b) * xd::kPage, xd::kPage, PROT_READ);
        out[w] = bits;
    }
    if (stats)
        *stats = xc_shadow_op_stats_t{};
    return static_cast<long long>(n);
}

void *xc__hypercall_buffer_alloc_pages(xc_interface *, xc_hypercall_buffer_t *b, int nr_pages)
{
    if (xd::intercept("xc_hypercall_buffer_alloc_pages"))
        return nullptr;
    b->hbuf = std::aligned_alloc(xd::kPage, static_cast<size_t>(nr_pages) * xd::kPage);
    if (b->hbuf)
        std::memset(b->hbuf, 0, static_cast<size_t>(nr_pages) * xd::kPage);
    return b->hbuf;
}

void xc__hypercall_buffer_free_pages(xc_interface *, xc_hypercall_buffer_t *b, int)
{
    std::free(b->hbuf);
    b->hbuf = nullptr;
}

int xc_domain_hvm_getcontext(xc_interface *, uint32_t domid, uint8_t *ctxt_buf, uint32_t size)
{
    auto d = xd::enter("xc_domain_hvm_getcontext", domid);
    if (!d)
        return -1;
    std::lock_guard lock(d->step_mutex);
    const auto context = xd::make_context(*d);
    if (!ctxt_buf)
        return static_cast<int>(context.size());
    if (size < context.size()) {
        errno = ENOSPC;
        return -1;
    }
    std::memcpy(ctxt_buf, context.data(), context.size());
    return static_cast<int>(context.size());
}

int xc_domain_hvm_setcontext(xc_interface *, uint32_t domid, uint8_t *hvm_ctxt, uint32_t size)
{
    auto d = xd::enter("xc_domain_hvm_setcontext", domid);
    if (!d)
        return -1;
    std::string context(reinterpret_cast<const char *>(hvm_ctxt), size);
    hvm_save_descriptor desc{};
    hvm_save_header header{};
    if (size < sizeof desc + sizeof header) {
        errno = EINVAL;
        return -1;
    }
    std::memcpy(&desc, hvm_ctxt, sizeof desc);
    std::memcpy(&header, hvm_ctxt + sizeof desc, sizeof header);
    if (desc.typecode != 1 || header.magic != HVM_FILE_MAGIC || header.version != HVM_FILE_VERSION) {
        errno = EINVAL; // Xen checks the header the same way
        return -1;
    }
    try {
        d->counter = xd::rip_in_context(context);
        std::lock_guard lock(d->step_mutex);
        d->suspend_result = xd::rax_in_context(context);
    } catch (const std::exception &) {
        errno = EINVAL;
        return -1;
    }
    d->context_loaded = true;
    return 0;
}

int xc_clear_domain_pages(xc_interface *, uint32_t domid, unsigned long dst_pfn, int num)
{
    auto d = xd::enter("xc_clear_domain_pages", domid);
    if (!d)
        return -1;
    if (num < 0 || dst_pfn + static_cast<unsigned long>(num) > d->spec.pages) {
        errno = EINVAL;
        return -1;
    }
    // Through a mapping of its own, as Xen does, so the guest's dirty log is not involved.
    void *p = mmap(nullptr, static_cast<size_t>(num) * xd::kPage, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd,
                   static_cast<off_t>(dst_pfn * xd::kPage));
    if (p == MAP_FAILED)
        return -1;
    std::memset(p, 0, static_cast<size_t>(num) * xd::kPage);
    munmap(p, static_cast<size_t>(num) * xd::kPage);
    return 0;
}

int xc_hvm_param_get(xc_interface *, uint32_t dom, uint32_t param, uint64_t *value)
{
    auto d = xd::enter("xc_hvm_param_get", dom);
    if (!d)
        return -1;
    auto it = d->params.find(param);
    *value = it == d->params.end() ? 0 : it->second;
    return 0;
}

xenforeignmemory_handle *xenforeignmemory_open(xentoollog_logger *, unsigned)
{
    if (xd::intercept("xenforeignmemory_open"))
        return nullptr;
    return new xenforeignmemory_handle;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
    delete fmem;
    return 0;
}

void *xenforeignmemory_map(xenforeignmemory_handle *, uint32_t dom, int prot, size_t pages, const xen_pfn_t arr[],
                           int err[])
{
    return map_frames(dom, prot, pages, arr, err);
}

int xenforeignmemory_unmap(xenforeignmemory_handle *, void *addr, size_t pages)
{
    return munmap(addr, pages * xd::kPage);
}

int libxl_ctx_alloc(libxl_ctx **pctx, int, unsigned, xentoollog_logger *)
{
    if (xd::intercept("libxl_ctx_alloc"))
        return ERROR_FAIL;
    *pctx = new libxl__ctx;
    return 0;
}

int libxl_ctx_free(libxl_ctx *ctx)
{
    delete ctx;
    return 0;
}

int libxl_name_to_domid(libxl_ctx *, const char *name, uint32_t *domid)
{
    if (xd::intercept("libxl_name_to_domid"))
        return ERROR_FAIL;
    const auto id = xd::domid_of(name);
    if (!id)
        return ERROR_INVAL;
    *domid = id;
    return 0;
}

char *libxl_domid_to_name(libxl_ctx *, uint32_t domid)
{
    if (xd::intercept("libxl_domid_to_name"))
        return nullptr;
    auto d = xd::find(domid);
    return d ? strdup(d->spec.name.c_str()) : nullptr;
}

int libxl_domain_info(libxl_ctx *, libxl_dominfo *info_r, uint32_t domid)
{
    if (xd::intercept("libxl_domain_info"))
        return ERROR_FAIL;
    auto d = xd::find(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    info_r->domid = domid;
    // As real libxl (Xen 4.17): PV or HVM from Xen's hvm flag, so HVM for PVH.
    info_r->domain_type = d->spec.type == "pv" ? LIBXL_DOMAIN_TYPE_PV : LIBXL_DOMAIN_TYPE_HVM;
    info_r->max_memkb = d->spec.pages * 4;
    {
        std::lock_guard holes_stable(d->step_mutex);
        info_r->current_memkb = (d->spec.pages - d->holes.size()) * 4;
    }
    info_r->vcpu_max_id = d->spec.vcpus - 1;
    info_r->vcpu_online = d->spec.vcpus;
    std::lock_guard lock(d->step_mutex);
    info_r->paused = d->pause_count > 0;
    info_r->running = d->pause_count == 0;
    return 0;
}

} // extern "C"

namespace {

// A domain as libxl builds it from a configuration, left paused.
int create_paused(libxl_domain_config *d_config, uint32_t *domid)
{
    if (!d_config->c_info.name || xd::domid_of(d_config->c_info.name))
        return ERROR_INVAL; // xl refuses a second domain of the same name
    xd::DomainSpec spec;
    spec.name = d_config->c_info.name;
    spec.type = d_config->c_info.type == LIBXL_DOMAIN_TYPE_PV    ? "pv"
                : d_config->c_info.type == LIBXL_DOMAIN_TYPE_PVH ? "pvh"
                                                                 : "hvm";
    spec.pages = d_config->b_info.max_memkb / 4;
    spec.vcpus = static_cast<unsigned>(d_config->b_info.max_vcpus);
    for (int i = 0; i < d_config->num_nics; ++i) {
        const auto &m = d_config->nics[i].mac;
        char mac[18];
        std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
        spec.vif_macs.push_back(mac);
    }
    for (int i = 0; i < d_config->num_disks; ++i)
        spec.disk_targets.push_back(d_config->disks[i].pdev_path ? d_config->disks[i].pdev_path : "");
    *domid = xd::create_domain(spec);
    auto d = xd::find(*domid);
    std::lock_guard lock(d->step_mutex);
    d->pause_count = 1; // created paused, as libxl leaves it
    d->params.clear();
    return 0;
}

// The formats, from Xen's docs/specs (libxl-migration-stream.pandoc,
// libxc-migration-stream.pandoc), written out here again on purpose: the
// double reads the stream without the writer's own constants.
constexpr std::uint64_t kLibxlIdent = 0x4c6962786c466d74; // "LibxlFmt"
constexpr std::uint32_t kXenfId = 0x58454e46;             // "XENF"
constexpr std::size_t kPage = 4096;

struct StreamReader {
    int fd;
    std::vector<std::uint8_t> *copy;
    void exact(void *p, std::size_t n)
    {
        auto *b = static_cast<std::uint8_t *>(p);
        std::size_t got = 0;
        while (got < n) {
            const auto r = ::read(fd, b + got, n - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                throw std::runtime_error("stream truncated");
            got += static_cast<std::size_t>(r);
        }
        copy->insert(copy->end(), b, b + n);
    }
    std::uint64_t big(int n)
    {
        std::uint8_t b[8];
        exact(b, static_cast<std::size_t>(n));
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i)
            v = v << 8 | b[i];
        return v;
    }
    std::uint64_t little(int n)
    {
        std::uint8_t b[8];
        exact(b, static_cast<std::size_t>(n));
        std::uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i)
            v = v << 8 | b[i];
        return v;
    }
    // A record: type and body (padding read and dropped).
    std::pair<std::uint32_t, std::vector<std::uint8_t>> record()
    {
        const auto type = static_cast<std::uint32_t>(little(4));
        const auto length = static_cast<std::uint32_t>(little(4));
        if (length > (128u << 20))
            throw std::runtime_error("record of " + std::to_string(length) + " bytes");
        std::vector<std::uint8_t> body(length);
        exact(body.data(), length);
        std::uint8_t pad[8];
        exact(pad, (8 - length % 8) % 8);
        return {type, std::move(body)};
    }
};

template <class T> T field(const std::vector<std::uint8_t> &body, std::size_t at)
{
    if (at + sizeof(T) > body.size())
        throw std::runtime_error("record body too short");
    T v;
    std::memcpy(&v, body.data() + at, sizeof v);
    return v;
}

// Xen's restore of a 64-bit PV domain (xg_sr_restore_x86_pv.c as its
// specification describes it): pages placed at this domain's own machine
// frames, page tables localised (pfns made machine frames), vCPU state
// loaded with its frames localised, page tables pinned, the guest's p2m
// rewritten for its new machine frames. The stream's own libxl records
// (after libxc's END) are read by the caller's loop below.
void restore_pv(xd::Domain &d, StreamReader &in)
{
    constexpr std::uint64_t kFrame = 0x000ffffffffff000ULL;
    bool info = false, static_end = false;
    std::uint64_t max_pfn = 0;
    std::vector<std::uint64_t> p2m_frames;
    std::vector<bool> populated(d.spec.pages, false);
    std::vector<std::uint32_t> types(d.spec.pages, 0);
    std::vector<std::uint8_t> cpuid, msrs, shared;
    std::map<std::uint32_t, std::vector<std::uint8_t>> basic;
    std::uint64_t xsave_bytes = 0;
    auto memory_at = [&](std::uint64_t pfn) { return d.view + pfn * kPage; };
    for (;;) {
        auto [type, body] = in.record();
        if (type == 0)
            break;
        if (type == 2) {
            if (info || body.size() < 8 || body[0] != 8 || body[1] != 4)
                throw std::runtime_error("X86_PV_INFO repeated, truncated or not 64-bit with 4 levels");
            info = true;
        } else if (type == 0x11 || type == 0x12) {
            (type == 0x11 ? cpuid : msrs) = body;
        } else if (type == 0x10) {
            if (!info)
                throw std::runtime_error("STATIC_DATA_END before X86_PV_INFO");
            static_end = true;
            uint32_t el = 0, es = 0, em = 0;
            if ((!cpuid.empty() || !msrs.empty()) &&
                xc_set_domain_cpu_policy(nullptr, d.domid, static_cast<uint32_t>(cpuid.size() / 24),
                                         reinterpret_cast<xen_cpuid_leaf_t *>(cpuid.data()),
                                         static_cast<uint32_t>(msrs.size() / 16),
                                         reinterpret_cast<xen_msr_entry_t *>(msrs.data()), &el, &es, &em) != 0)
                throw std::runtime_error("Failed to set CPUID policy");
        } else if (type == 3) {
            if (!static_end)
                throw std::runtime_error("X86_PV_P2M_FRAMES before STATIC_DATA_END");
            const auto start = field<std::uint32_t>(body, 0), end = field<std::uint32_t>(body, 4);
            if (start != 0 || end < start)
                throw std::runtime_error("X86_PV_P2M_FRAMES range bad");
            const std::uint64_t count = end / 512 + 1;
            if (body.size() != 8 + count * 8)
                throw std::runtime_error("X86_PV_P2M_FRAMES record wrong size");
            if (end >= d.spec.pages)
                throw std::runtime_error("p2m up to pfn " + std::to_string(end) + " beyond the domain's " +
                                         std::to_string(d.spec.pages) + " pages: out of memory");
            max_pfn = end;
            p2m_frames.clear();
            for (std::uint64_t i = 0; i < count; ++i)
                p2m_frames.push_back(field<std::uint64_t>(body, 8 + i * 8));
        } else if (type == 1) {
            if (p2m_frames.empty())
                throw std::runtime_error("PAGE_DATA before X86_PV_P2M_FRAMES");
            const auto count = field<std::uint32_t>(body, 0);
            std::size_t data_at = 8 + std::size_t{count} * 8;
            for (std::uint32_t i = 0; i < count; ++i) {
                const auto entry = field<std::uint64_t>(body, 8 + std::size_t{i} * 8);
                const auto pfn = entry & 0x000fffffffffffffULL;
                const auto kind = static_cast<std::uint32_t>(entry >> 60);
                if (pfn > max_pfn)
                    throw std::runtime_error("pfn " + std::to_string(pfn) + " beyond the p2m");
                if (kind == 0xf)
                    continue; // XTAB
                populated[pfn] = true;
                ++d.populated;
                if (kind == 0xe) {
                    std::memset(memory_at(pfn), 0, kPage);
                    continue;
                }
                const auto table = kind & 0x7;
                if (table > 4 || (kind & 0x8 && table == 0))
                    throw std::runtime_error("page type " + std::to_string(kind) + " in a PV stream");
                types[pfn] = kind << 28;
                if (data_at + kPage > body.size())
                    throw std::runtime_error("PAGE_DATA shorter than its pages");
                std::memcpy(memory_at(pfn), body.data() + data_at, kPage);
                data_at += kPage;
            }
            if (data_at != body.size())
                throw std::runtime_error("PAGE_DATA longer than its pages");
        } else if (type == 8) {
            d.tsc = xd::TscInfo{field<std::uint32_t>(body, 0), field<std::uint32_t>(body, 4),
                                field<std::uint32_t>(body, 16), field<std::uint64_t>(body, 8)};
        } else if (type == 7) {
            if (body.size() != kPage)
                throw std::runtime_error("SHARED_INFO record wrong size");
            shared = body;
        } else if ((type >= 4 && type <= 6) || type == 0xc) {
            const auto vcpu = field<std::uint32_t>(body, 0);
            if (vcpu >= d.spec.vcpus)
                throw std::runtime_error("vCPU record for vCPU " + std::to_string(vcpu) + " beyond the domain's");
            const auto blob = body.size() - 8;
            if (type == 4 && blob != sizeof(vcpu_guest_context_x86_64_t))
                throw std::runtime_error("X86_PV_VCPU_BASIC record wrong size");
            if ((type == 5 && blob > 128) || (type == 6 && blob < 16) || (type == 0xc && blob % 16 != 0))
                throw std::runtime_error("vCPU record " + std::to_string(type) + " of a bad size");
            if (type == 4)
                basic[vcpu].assign(body.begin() + 8, body.end());
            if (type == 6)
                xsave_bytes += blob;
        } else {
            throw std::runtime_error("unknown libxc record type " + std::to_string(type) + " in a PV stream");
        }
    }
    // The stream is complete: as x86_pv_stream_complete.
    std::lock_guard lock(d.step_mutex);
    for (std::uint64_t pfn = 0; pfn < d.spec.pages; ++pfn)
        if (!populated[pfn])
            d.holes.insert(pfn); // never populated: no RAM there
    auto mfn = [&](std::uint64_t pfn, const std::string &what) {
        if (pfn > max_pfn || !populated[pfn])
            throw std::runtime_error(what + " (pfn " + std::to_string(pfn) + ") has bad mfn");
        return d.frames.mfn_of(pfn);
    };
    for (std::uint64_t pfn = 0; pfn <= max_pfn; ++pfn) {
        const auto level = (types[pfn] >> 28) & 0x7;
        if (level == 0)
            continue;
        for (unsigned i = 0; i < 512; ++i) {
            std::uint64_t e;
            std::memcpy(&e, memory_at(pfn) + i * 8, 8);
            if (!(e & 1))
                continue;
            e = (e & ~kFrame) | mfn((e & kFrame) >> 12, "L" + std::to_string(level) + "[" + std::to_string(i) + "]")
                                    << 12;
            std::memcpy(memory_at(pfn) + i * 8, &e, 8);
        }
    }
    if (!basic.count(0))
        throw std::runtime_error("Sender didn't send vcpu0's basic state");
    if (shared.empty())
        throw std::runtime_error("no SHARED_INFO record");
    auto vcpu0 = *reinterpret_cast<const vcpu_guest_context_x86_64_t *>(basic[0].data());
    const auto start_info = vcpu0.user_regs.rdx;
    if (start_info > max_pfn || types[start_info] != 0)
        throw std::runtime_error("Start Info pfn " + std::to_string(start_info) + " out of range or of a bad type");
    vcpu0.user_regs.rdx = mfn(start_info, "Start Info");
    start_info_t si;
    std::memcpy(&si, memory_at(start_info), sizeof si);
    si.store_mfn = mfn(si.store_mfn, "XenStore pfn");
    si.console.domU.mfn = mfn(si.console.domU.mfn, "Console pfn");
    std::memcpy(memory_at(start_info), &si, sizeof si);
    for (unsigned i = 0; i < (vcpu0.gdt_ents + 511) / 512; ++i) {
        if (types[vcpu0.gdt_frames[i]] != 0)
            throw std::runtime_error("GDT frame of a bad type");
        vcpu0.gdt_frames[i] = mfn(vcpu0.gdt_frames[i], "GDT frame");
    }
    const auto cr3 = vcpu0.ctrlreg[3] >> 12;
    if (cr3 > max_pfn || ((types[cr3] >> 28) & 0x7) != 4)
        throw std::runtime_error("cr3 (pfn " + std::to_string(cr3) + ") has bad type, expected 4");
    vcpu0.ctrlreg[3] = mfn(cr3, "cr3") << 12;
    if (vcpu0.ctrlreg[1] & 1) {
        const auto cr1 = vcpu0.ctrlreg[1] >> 12;
        if (cr1 > max_pfn || ((types[cr1] >> 28) & 0x7) != 4)
            throw std::runtime_error("cr1 (pfn " + std::to_string(cr1) + ") has bad type, expected 4");
        vcpu0.ctrlreg[1] = mfn(cr1, "cr1") << 12;
    }
    d.restored_vcpu0 = vcpu0;
    d.counter = vcpu0.user_regs.rip;
    d.suspend_result = vcpu0.user_regs.rax;
    d.context_loaded = xsave_bytes > 0;
    d.pins = 0;
    for (auto t : types)
        d.pins += (t & XEN_DOMCTL_PFINFO_LPINTAB) ? 1 : 0;
    d.types = types;
    for (std::size_t i = 0; i < p2m_frames.size(); ++i) { // the guest's p2m, for its new frames
        const auto pfn = p2m_frames[i];
        if (pfn > max_pfn || types[pfn] != 0 || !populated[pfn])
            throw std::runtime_error("pfn for p2m_frame_list[" + std::to_string(i) + "] bad");
        for (unsigned k = 0; k < 512; ++k) {
            const std::uint64_t of = i * 512 + k;
            const std::uint64_t entry = of <= max_pfn ? d.frames.mfn_of(of) : xd::pv::kNone;
            std::memcpy(memory_at(pfn) + k * 8, &entry, 8);
        }
    }
    auto *new_shared = d.shared_info;
    const auto *old_shared = reinterpret_cast<const shared_info_x86_64 *>(shared.data());
    std::memcpy(new_shared->vcpu_info, old_shared->vcpu_info, sizeof new_shared->vcpu_info);
    new_shared->arch = old_shared->arch;
    new_shared->arch.pfn_to_mfn_frame_list_list = 0; // the guest publishes it again when it resumes
    std::memset(new_shared->evtchn_pending, 0, sizeof new_shared->evtchn_pending);
    std::memset(new_shared->evtchn_mask, 0xff, sizeof new_shared->evtchn_mask);
}

void restore_hvm(xd::Domain &d, StreamReader &in);

// Xen's restore of one domain from a non-checkpointed stream, as
// xg_sr_restore.c does it into domain `d`, and libxl's records around it.
void restore_into(xd::Domain &d, StreamReader &in)
{
    if (in.big(8) != kLibxlIdent || in.big(4) != 2 || in.big(4) != 0)
        throw std::runtime_error("not a libxl v2 little-endian stream");
    if (auto [type, body] = in.record(); type != 1 || !body.empty())
        throw std::runtime_error("first libxl record is not LIBXC_CONTEXT");
    if (in.big(8) != ~std::uint64_t{0} || in.big(4) != kXenfId || in.big(4) != 3 || in.big(2) != 0)
        throw std::runtime_error("bad libxc image header");
    in.big(2);
    in.big(4);
    const auto domain_type = in.little(4);
    if (in.little(2) != 12)
        throw std::runtime_error("libxc domain header without 4 KiB pages");
    in.little(2);
    in.little(4);
    in.little(4);
    if (domain_type == 1) {
        if (!d.pv())
            throw std::runtime_error("Unable to restore x86 PV domain into an x86 HVM domain");
        restore_pv(d, in);
    } else {
        if (domain_type != 2 || d.pv())
            throw std::runtime_error("libxc domain header is not for this domain's type");
        restore_hvm(d, in);
    }
    for (;;) { // libxl's records after libxc's
        auto [type, body] = in.record();
        if (type == 0)
            break;
        if (type == 3) {
            if (field<std::uint32_t>(body, 0) != 2 || field<std::uint32_t>(body, 4) != 0)
                throw std::runtime_error("EMULATOR_CONTEXT not for QEMU upstream, emulator 0");
            d.emulator_context.assign(body.begin() + 8, body.end());
            continue;
        }
        throw std::runtime_error("unexpected libxl record type " + std::to_string(type));
    }
    if (d.spec.type == "hvm" && d.emulator_context.empty())
        throw std::runtime_error("an HVM domain restored without its device model's state: QEMU cannot start");
}

// libxc's records of an HVM or PVH domain, up to its END.
void restore_hvm(xd::Domain &d, StreamReader &in)
{
    bool static_end = false, context = false;
    std::vector<std::uint8_t> cpuid, msrs;
    for (;;) {
        auto [type, body] = in.record();
        if (type == 0)
            break;
        if (type == 0x11) {
            cpuid = body;
        } else if (type == 0x12) {
            msrs = body;
        } else if (type == 0x10) {
            static_end = true;
            if (!cpuid.empty() || !msrs.empty()) {
                uint32_t el = 0, es = 0, em = 0;
                if (xc_set_domain_cpu_policy(nullptr, d.domid, static_cast<uint32_t>(cpuid.size() / 24),
                                             reinterpret_cast<xen_cpuid_leaf_t *>(cpuid.data()),
                                             static_cast<uint32_t>(msrs.size() / 16),
                                             reinterpret_cast<xen_msr_entry_t *>(msrs.data()), &el, &es, &em) != 0)
                    throw std::runtime_error("Failed to set CPUID policy");
            }
        } else if (type == 1) {
            if (!static_end)
                throw std::runtime_error("PAGE_DATA before STATIC_DATA_END");
            const auto count = field<std::uint32_t>(body, 0);
            if (count == 0)
                throw std::runtime_error("PAGE_DATA with no pages");
            std::size_t data_at = 8 + std::size_t{count} * 8;
            for (std::uint32_t i = 0; i < count; ++i) {
                const auto entry = field<std::uint64_t>(body, 8 + std::size_t{i} * 8);
                const auto pfn = entry & 0x000fffffffffffffULL;
                const auto kind = entry >> 60;
                if (pfn >= d.spec.pages)
                    throw std::runtime_error("populating pfn " + std::to_string(pfn) + " beyond the domain's " +
                                             std::to_string(d.spec.pages) + " pages: out of memory");
                if (kind == 0) {
                    if (data_at + kPage > body.size())
                        throw std::runtime_error("PAGE_DATA shorter than its pages");
                    if (::pwrite(d.memfd, body.data() + data_at, kPage, static_cast<off_t>(pfn * kPage)) !=
                        static_cast<ssize_t>(kPage))
                        throw std::runtime_error("writing guest memory");
                    data_at += kPage;
                    ++d.populated;
                } else if (kind == 0xe) {
                    ++d.populated; // allocated, zero
                } else if (kind != 0xf) {
                    throw std::runtime_error("page type " + std::to_string(kind) + " in an HVM stream");
                } // XTAB: not populated
            }
            if (data_at != body.size())
                throw std::runtime_error("PAGE_DATA longer than its pages");
        } else if (type == 8) {
            d.tsc = xd::TscInfo{field<std::uint32_t>(body, 0), field<std::uint32_t>(body, 4),
                                field<std::uint32_t>(body, 16), field<std::uint64_t>(body, 8)};
        } else if (type == 10) {
            const auto count = field<std::uint32_t>(body, 0);
            if (body.size() != 8 + std::size_t{count} * 16)
                throw std::runtime_error("HVM_PARAMS truncated");
            for (std::uint32_t i = 0; i < count; ++i) {
                const auto index = field<std::uint64_t>(body, 8 + std::size_t{i} * 16);
                const auto value = field<std::uint64_t>(body, 16 + std::size_t{i} * 16);
                if (index == HVM_PARAM_CONSOLE_PFN || index == HVM_PARAM_STORE_PFN || index == HVM_PARAM_IOREQ_PFN ||
                    index == HVM_PARAM_BUFIOREQ_PFN)
                    xc_clear_domain_pages(nullptr, d.domid, static_cast<unsigned long>(value), 1);
                d.params[static_cast<std::uint32_t>(index)] = value;
            }
        } else if (type == 9) {
            if (xc_domain_hvm_setcontext(nullptr, d.domid, body.data(), static_cast<uint32_t>(body.size())) != 0)
                throw std::runtime_error("HVM_CONTEXT refused");
            context = true;
        } else {
            throw std::runtime_error("unknown libxc record type " + std::to_string(type));
        }
    }
    if (!context)
        throw std::runtime_error("no HVM context in the stream");
}

} // namespace

extern "C" {

int libxl_domain_create_new(libxl_ctx *, libxl_domain_config *d_config, uint32_t *domid, const libxl_asyncop_how *,
                            const libxl_asyncprogress_how *)
{
    if (xd::intercept("libxl_domain_create_new"))
        return ERROR_FAIL;
    return create_paused(d_config, domid);
}

int libxl_domain_create_restore(libxl_ctx *, libxl_domain_config *d_config, uint32_t *domid, int restore_fd,
                                int send_back_fd, const libxl_domain_restore_params *params,
                                const libxl_asyncop_how *, const libxl_asyncprogress_how *)
{
    if (xd::intercept("libxl_domain_create_restore"))
        return ERROR_FAIL;
    if (send_back_fd != -1 || !params || params->stream_version != 2 ||
        params->checkpointed_stream != LIBXL_CHECKPOINTED_STREAM_NONE)
        return ERROR_INVAL;
    if (int rc = create_paused(d_config, domid); rc != 0)
        return rc;
    auto d = xd::find(*domid);
    std::vector<std::uint8_t> copy;
    StreamReader in{restore_fd, &copy};
    try {
        restore_into(*d, in);
        if (d->real_dm) { // libxl starts QEMU loading the stream's EMULATOR_CONTEXT (-incoming fd:N)
            std::string run_dir, binary;
            {
                std::lock_guard lock(xd::g_mutex);
                run_dir = xd::g_run_dir;
                binary = xd::g_real_dm_binary;
            }
            const auto saved = run_dir + "/qemu-resume." + std::to_string(*domid);
            std::ofstream(saved, std::ios::binary | std::ios::trunc)
                .write(reinterpret_cast<const char *>(d->emulator_context.data()),
                       static_cast<std::streamsize>(d->emulator_context.size()));
            d->real_dm.reset();
            try {
                d->real_dm = std::make_unique<xd::RealDeviceModel>(binary, run_dir, *domid, saved);
            } catch (const std::exception &e) {
                ::unlink(saved.c_str());
                throw std::runtime_error(std::string("the device model did not start from its saved state: ") +
                                         e.what());
            }
            ::unlink(saved.c_str());
        }
    } catch (const std::exception &e) {
        {
            std::lock_guard lock(xd::g_mutex);
            xd::g_restore_error = e.what();
            xd::g_last_stream = std::move(copy);
        }
        xd::destroy_domain(*domid);
        return ERROR_FAIL;
    }
    std::lock_guard lock(xd::g_mutex);
    xd::g_restore_error.clear();
    xd::g_last_stream = std::move(copy);
    d->restored = true;
    return 0;
}

libxl_device_nic *libxl_device_nic_list(libxl_ctx *, uint32_t domid, int *num)
{
    *num = 0;
    if (xd::intercept("libxl_device_nic_list"))
        return nullptr;
    auto d = xd::find(domid);
    if (!d || d->spec.vif_macs.empty())
        return nullptr;
    auto *list = static_cast<libxl_device_nic *>(std::calloc(d->spec.vif_macs.size(), sizeof(libxl_device_nic)));
    for (std::size_t i = 0; i < d->spec.vif_macs.size(); ++i) {
        libxl_device_nic_init(&list[i]); // the real library's: plain data
        list[i].devid = static_cast<libxl_devid>(i);
        unsigned b[6] = {};
        std::sscanf(d->spec.vif_macs[i].c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
        for (int k = 0; k < 6; ++k)
            list[i].mac[k] = static_cast<std::uint8_t>(b[k]);
    }
    *num = static_cast<int>(d->spec.vif_macs.size());
    return list;
}

int libxl_get_stubdom_id(libxl_ctx *, int guest_domid)
{
    std::lock_guard lock(xd::g_mutex);
    for (const auto &[id, d] : xd::g_domains)
        if (d->spec.stubdom_for != 0 && d->spec.stubdom_for == static_cast<std::uint32_t>(guest_domid))
            return static_cast<int>(id);
    return 0;
}

int libxl_is_stubdom(libxl_ctx *, uint32_t domid, uint32_t *target_domid)
{
    auto d = xd::find(domid);
    if (!d || d->spec.stubdom_for == 0)
        return 0;
    if (target_domid)
        *target_domid = d->spec.stubdom_for;
    return 1;
}

libxl_device_disk *libxl_device_disk_list(libxl_ctx *, uint32_t domid, int *num)
{
    *num = 0;
    if (xd::intercept("libxl_device_disk_list"))
        return nullptr;
    auto d = xd::find(domid);
    if (!d || d->spec.disk_targets.empty())
        return nullptr;
    auto *list = static_cast<libxl_device_disk *>(std::calloc(d->spec.disk_targets.size(), sizeof(libxl_device_disk)));
    for (std::size_t i = 0; i < d->spec.disk_targets.size(); ++i) {
        libxl_device_disk_init(&list[i]);
        list[i].pdev_path = strdup(d->spec.disk_targets[i].c_str());
    }
    *num = static_cast<int>(d->spec.disk_targets.size());
    return list;
}

int libxl_domain_unpause(libxl_ctx *, uint32_t domid, const libxl_asyncop_how *)
{
    if (xd::intercept("libxl_domain_unpause"))
        return ERROR_FAIL;
    auto d = xd::find(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    {
        std::lock_guard lock(d->step_mutex);
        if (d->pause_count)
            --d->pause_count;
    }
    d->step_cv.notify_all();
    return 0;
}

int xc_physinfo(xc_interface *, xc_physinfo_t *info)
{
    if (xd::intercept("xc_physinfo"))
        return -1;
    *info = {};
    std::lock_guard lock(xd::g_mutex);
    info->capabilities = xd::g_hypervisor_caps;
    info->nr_cpus = 2;
    info->max_cpu_id = 1;
    return 0;
}

int xc_version(xc_interface *, int cmd, void *)
{
    if (xd::intercept("xc_version"))
        return -1;
    if (cmd != XENVER_version) {
        errno = ENOSYS;
        return -1;
    }
    return 4 << 16 | 17; // Xen 4.17, as Debian 12's
}

int xc_domain_get_tsc_info(xc_interface *, uint32_t domid, uint32_t *tsc_mode, uint64_t *elapsed_nsec,
                           uint32_t *gtsc_khz, uint32_t *incarnation)
{
    auto d = xd::enter("xc_domain_get_tsc_info", domid);
    if (!d)
        return -1;
    std::lock_guard lock(xd::g_mutex);
    *tsc_mode = d->tsc.mode;
    *elapsed_nsec = d->counter.load() * 1000; // time moves with the workload
    *gtsc_khz = d->tsc.khz;
    *incarnation = d->tsc.incarnation;
    return 0;
}

xc_cpu_policy_t *xc_cpu_policy_init(void)
{
    return new (std::nothrow) xc_cpu_policy;
}

void xc_cpu_policy_destroy(xc_cpu_policy_t *policy)
{
    delete policy;
}

int xc_cpu_policy_get_size(xc_interface *, uint32_t *nr_leaves, uint32_t *nr_msrs)
{
    if (xd::intercept("xc_cpu_policy_get_size"))
        return -1;
    *nr_leaves = 64;
    *nr_msrs = 8;
    return 0;
}

int xc_cpu_policy_get_domain(xc_interface *, uint32_t domid, xc_cpu_policy_t *policy)
{
    auto d = xd::enter("xc_cpu_policy_get_domain", domid);
    if (!d)
        return -1;
    std::lock_guard lock(xd::g_mutex);
    *policy = d->policy;
    return 0;
}

int xc_cpu_policy_get_system(xc_interface *, unsigned int, xc_cpu_policy_t *policy)
{
    if (xd::intercept("xc_cpu_policy_get_system"))
        return -1;
    std::lock_guard lock(xd::g_mutex);
    policy->leaves = {{0x0, XEN_CPUID_NO_SUBLEAF, xd::g_host_max_leaf, 0, 0, 0},
                      {0x1, XEN_CPUID_NO_SUBLEAF, 0, 0, xd::g_host_leaf1_ecx, 0xffffffff}};
    policy->msrs = {{xd::kMsrPlatformInfo, 0, 0}};
    return 0;
}

int xc_cpu_policy_serialise(xc_interface *, const xc_cpu_policy_t *policy, xen_cpuid_leaf_t *leaves,
                            uint32_t *nr_leaves, xen_msr_entry_t *msrs, uint32_t *nr_msrs)
{
    if (policy->leaves.size() > *nr_leaves || policy->msrs.size() > *nr_msrs) {
        errno = ENOBUFS;
        return -1;
    }
    std::copy(policy->leaves.begin(), policy->leaves.end(), leaves);
    std::copy(policy->msrs.begin(), policy->msrs.end(), msrs);
    *nr_leaves = static_cast<uint32_t>(policy->leaves.size());
    *nr_msrs = static_cast<uint32_t>(policy->msrs.size());
    return 0;
}

int xc_cpu_policy_update_cpuid(xc_interface *, xc_cpu_policy_t *policy, const xen_cpuid_leaf_t *leaves, uint32_t nr)
{
    for (uint32_t i = 0; i < nr; ++i) {
        auto same = [&](const xen_cpuid_leaf_t &l) { return l.leaf == leaves[i].leaf && l.subleaf == leaves[i].subleaf; };
        if (auto it = std::find_if(policy->leaves.begin(), policy->leaves.end(), same); it != policy->leaves.end())
            *it = leaves[i];
        else
            policy->leaves.push_back(leaves[i]);
    }
    return 0;
}

int xc_cpu_policy_update_msrs(xc_interface *, xc_cpu_policy_t *policy, const xen_msr_entry_t *msrs, uint32_t nr)
{
    for (uint32_t i = 0; i < nr; ++i) {
        auto same = [&](const xen_msr_entry_t &m) { return m.idx == msrs[i].idx; };
        if (auto it = std::find_if(policy->msrs.begin(), policy->msrs.end(), same); it != policy->msrs.end())
            *it = msrs[i];
        else
            policy->msrs.push_back(msrs[i]);
    }
    return 0;
}

namespace {
std::uint32_t max_leaf_of(const xc_cpu_policy_t &p)
{
    for (const auto &l : p.leaves)
        if (l.leaf == 0)
            return l.a;
    return 0;
}
} // namespace

// Xen's rule (x86_cpu_policies_are_compatible): the guest's highest leaves
// within the host's.
bool xc_cpu_policy_is_compatible(xc_interface *, xc_cpu_policy_t *host, xc_cpu_policy_t *guest)
{
    return max_leaf_of(*guest) <= max_leaf_of(*host);
}

int xc_set_domain_cpu_policy(xc_interface *, uint32_t domid, uint32_t nr_leaves, xen_cpuid_leaf_t *leaves,
                             uint32_t nr_msrs, xen_msr_entry_t *msrs, uint32_t *err_leaf_p, uint32_t *err_subleaf_p,
                             uint32_t *err_msr_p)
{
    auto d = xd::enter("xc_set_domain_cpu_policy", domid);
    if (!d)
        return -1;
    std::lock_guard lock(xd::g_mutex);
    xc_cpu_policy wanted{{leaves, leaves + nr_leaves}, {msrs, msrs + nr_msrs}};
    if (max_leaf_of(wanted) > xd::g_host_max_leaf) {
        *err_leaf_p = 0;
        *err_subleaf_p = XEN_CPUID_NO_SUBLEAF;
        errno = EOPNOTSUPP;
        return -1;
    }
    for (auto &l : wanted.leaves)
        if (l.leaf == 1)
            l.c &= xd::g_host_leaf1_ecx; // Xen masks what the host lacks
    d->policy = std::move(wanted);
    d->policy_set = true;
    (void)err_msr_p;
    return 0;
}

// As libxl does for a guest with PV drivers: asks it to suspend, and waits
// until it has (here at once, between two steps). Its suspend hypercall
// returns 0 unless a resume cancels it.
int libxl_domain_suspend_only(libxl_ctx *, uint32_t domid, const libxl_asyncop_how *)
{
    if (xd::intercept("libxl_domain_suspend_only"))
        return ERROR_FAIL;
    auto d = xd::find(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    if (!d->spec.pv_drivers)
        return ERROR_GUEST_TIMEDOUT; // libxl gives up after its timeout
    {
        std::lock_guard lock(d->step_mutex);
        if (d->suspended)
            return ERROR_FAIL;
        d->suspended = true;
        d->suspend_result = 0;
        ++d->suspend_count;
        if (d->pv()) // as Linux's xen_pre_suspend: its start info names the xenstore and console pages by pfn
            xd::canonicalise_start_info(*d, true);
    }
    // An HVM domain's device model saves its state, as libxl has QEMU do
    // (xen-save-devices-state) into XEN_LIB_DIR/qemu-save.DOMID.
    std::string lib;
    {
        std::lock_guard lock(xd::g_mutex);
        lib = xd::g_device_model_dir;
    }
    if (d->spec.type == "hvm" && !lib.empty()) {
        try {
            xd::run_device_model(*d, false);
            xd::save_device_model(*d, lib + "/qemu-save." + std::to_string(domid), "libxl suspend");
        } catch (const std::exception &) {
            return ERROR_FAIL; // libxl: QMP failed
        }
    }
    return 0;
}

int libxl_domain_resume(libxl_ctx *, uint32_t domid, int suspend_cancel, const libxl_asyncop_how *)
{
    if (xd::intercept("libxl_domain_resume"))
        return ERROR_FAIL;
    auto d = xd::find(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    {
        std::lock_guard lock(d->step_mutex);
        if (!d->suspended)
            return ERROR_FAIL; // xc_domain_resume of a domain that is not suspended
        d->suspended = false;
        if (suspend_cancel)
            d->suspend_result = 1;
        if (d->pv()) // xen_post_suspend: back to machine frames
            xd::canonicalise_start_info(*d, false);
    }
    d->step_cv.notify_all();
    if (d->spec.type == "hvm") {
        try {
            xd::run_device_model(*d, true);
        } catch (const std::exception &) {
            return ERROR_FAIL; // libxl: QMP failed
        }
    }
    return 0;
}

int libxl_domain_destroy(libxl_ctx *, uint32_t domid, const libxl_asyncop_how *)
{
    if (xd::intercept("libxl_domain_destroy"))
        return ERROR_FAIL;
    if (!xd::exists(domid))
        return ERROR_DOMAIN_NOTFOUND;
    xd::destroy_domain(domid);
    return 0;
}

} // extern "C"
