#include "checkpoint/xen/xen_standby.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <sys/socket.h>
#include <thread>

extern "C" {
#include <libxl.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xen/hvm/params.h>
}

#include "checkpoint/xen/cpu_policy.h"
#include "checkpoint/unique_fd.h"
#include "checkpoint/xen/domain_config.h"
#include "checkpoint/xen/restore_stream.h"
#include "checkpoint/xen/xen_guest.h"

namespace understudy::xen {

namespace {

constexpr std::uint64_t kFillChunkPages = 32768;

bool all_zero(std::span<const std::uint8_t> page)
{
    return std::all_of(page.begin(), page.end(), [](std::uint8_t b) { return b == 0; });
}

} // namespace

std::string standby_config_problem(const XlConfig &config)
{
    for (std::size_t i = 0; i < config.nics.size(); ++i)
        if (config.nics[i].mac.empty())
            return "vif " + std::to_string(i) + " of " + config.name +
                   " has no mac= in its xl.cfg; give it the primary's MAC, or the standby's NIC gets another "
                   "address and clients lose it at failover";
    if (config.type == "pv")
        return config.name + " is a PV guest; understudy protects HVM and PVH guests (see docs/xen.md)";
    return "";
}

XenStandby::XenStandby(XlConfig config, std::uint64_t memory_size, OpenXen open_xen, std::function<void()> before_create)
    : StandbyImage(config.name, memory_size, 0, {}), config_(std::move(config)), open_xen_(std::move(open_xen)),
      before_create_(std::move(before_create))
{
}

std::string XenStandby::cpu_problem(const proto::CpuState &cpu) const
{
    constexpr std::size_t kMaxContext = 16 << 20; // Xen's are a few KiB per vCPU
    if (!cpu.has_xen())
        return "not the state of a Xen domain";
    const auto &x = cpu.xen();
    if (x.domain_type() != config_.type)
        return "a " + x.domain_type() + " domain, while " + name() + " is " + config_.type + " here";
    if (x.hvm_context().size() < 24 || x.hvm_context().size() > kMaxContext)
        return "an HVM context of " + std::to_string(x.hvm_context().size()) + " bytes";
    if (x.vcpus() == 0 || x.vcpus() > config_.vcpus)
        return std::to_string(x.vcpus()) + " vCPUs, while its xl.cfg here gives it " + std::to_string(config_.vcpus);
    const auto carried = carried_hvm_params();
    for (const auto &p : x.params())
        if (std::find(carried.begin(), carried.end(), p.index()) == carried.end())
            return "HVM parameter " + std::to_string(p.index()) + ", which is not one a checkpoint carries";
    if (auto problem = cpu_policy_problem(x); !problem.empty())
        return problem;
    if (x.not_ram_size() > 65536)
        return std::to_string(x.not_ram_size()) + " runs of frames that are not RAM";
    for (const auto &r : x.not_ram())
        if (r.count() == 0 || r.first() >= pages() || r.count() > pages() - r.first())
            return "frames " + std::to_string(r.first()) + "+" + std::to_string(r.count()) +
                   " marked not RAM, outside the guest's " + std::to_string(pages()) + " frames";
    // Whether this host's CPUs can give the guest the CPU it has: known now,
    // not at failover. Once per policy (it is fixed while the domain runs).
    std::string policy = x.domain_type() + '\0' + x.cpuid_policy() + '\0' + x.msr_policy();
    if (policy != policy_checked_ && open_xen_) {
        std::shared_ptr<XenSession> xen;
        try {
            xen = open_xen_();
        } catch (const std::exception &e) {
            return std::string("a CPU policy that cannot be checked here: ") + e.what();
        }
        if (xen) { // null only where a test has no Xen at all
            policy_verdict_ = host_cannot_run(*xen, x);
            policy_checked_ = policy;
        }
    }
    if (policy == policy_checked_ && !policy_verdict_.empty())
        return "a domain this host cannot run: " + policy_verdict_;
    return "";
}

std::unique_ptr<Guest> XenStandby::activate()
{
    if (!cpu() || !cpu()->has_xen())
        throw std::runtime_error("standby of " + name() + " holds no Xen CPU state (no checkpoint committed)");
    if (before_create_)
        before_create_();
    auto xen = open_xen_();
    // Built by Xen's own restore from a migration stream of the standby
    // when the standby holds all it needs: PVH always; HVM when its device
    // model's state came along (checkpoint = suspend), since Xen's restore
    // starts QEMU from it. Otherwise (HVM, checkpoint = pause) the domain
    // is created new and overwritten (docs/xen.md compares the two).
    const bool xen_restore =
        config_.type == "pvh" || (devices() && !devices()->xen_device_model().empty());
    if (!xen_restore)
        xen->log("domain " + name() + ": the standby holds no device model state (checkpoint = pause), which Xen's "
                 "restore needs for an HVM domain: creating it new from its xl.cfg and overwriting it; its emulated "
                 "devices start from reset");
    const std::uint32_t domid = xen_restore ? restore_paused(*xen) : create_paused(*xen);
    try {
        if (!xen_restore) {
            populate(*xen, domid);
            load_state(*xen, domid);
        }
        if (int rc = libxl_domain_unpause(xen->libxl(), domid, nullptr); rc != 0)
            throw XenError("libxl_domain_unpause of new domain " + std::to_string(domid) + " failed (libxl error " +
                               std::to_string(rc) + ")",
                           EIO);
        return std::make_unique<XenGuest>(xen, domid);
    } catch (...) {
        xen->log("domain " + name() + ": activation failed; destroying the half-built domain " + std::to_string(domid));
        libxl_domain_destroy(xen->libxl(), domid, nullptr);
        throw;
    }
}

std::uint32_t XenStandby::create_paused(XenSession &xen)
{
    libxl_domain_config cfg;
    libxl_domain_config_init(&cfg);
    std::uint32_t domid = 0;
    try {
        build_domain_config(config_, &cfg);
        // libxl_domain_create_new leaves the new domain paused (as `xl create -p`).
        if (int rc = libxl_domain_create_new(xen.libxl(), &cfg, &domid, nullptr, nullptr); rc != 0)
            throw XenError("libxl_domain_create_new for " + name() + " failed (libxl error " + std::to_string(rc) +
                               "; Xen's own messages are in the log above)",
                           EIO);
    } catch (...) {
        libxl_domain_config_dispose(&cfg);
        throw;
    }
    libxl_domain_config_dispose(&cfg);
    xen.log("domain " + name() + ": created paused as domain " + std::to_string(domid));
    return domid;
}

std::uint32_t XenStandby::restore_paused(XenSession &xen)
{
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
        throw XenError(std::string("socketpair for the restore stream: ") + std::strerror(errno), errno);
    UniqueFd ours(ends[0]), theirs(ends[1]);
    const int version = xc_version(xen.xc(), XENVER_version, nullptr);
    RestoreSource source;
    source.state = &cpu()->xen();
    source.pages = pages();
    source.page = [this](std::uint64_t pfn) { return page(Pfn{pfn}); };
    if (devices())
        source.device_model = devices()->xen_device_model();
    if (version > 0) {
        source.xen_major = static_cast<std::uint32_t>(version) >> 16;
        source.xen_minor = static_cast<std::uint32_t>(version) & 0xffff;
    }
    std::string write_error;
    std::thread writer([&] {
        try {
            write_restore_stream(source, [&](std::span<const std::uint8_t> bytes) {
                while (!bytes.empty()) {
                    const auto n = ::send(ours.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n <= 0)
                        throw std::runtime_error(std::string("libxl stopped reading it: ") + std::strerror(errno));
                    bytes = bytes.subspan(static_cast<std::size_t>(n));
                }
            });
        } catch (const std::exception &e) {
            write_error = e.what();
        }
        ::shutdown(ours.get(), SHUT_WR);
    });

    libxl_domain_config cfg;
    libxl_domain_config_init(&cfg);
    libxl_domain_restore_params params;
    libxl_domain_restore_params_init(&params);
    params.checkpointed_stream = LIBXL_CHECKPOINTED_STREAM_NONE;
    params.stream_version = 2;
    std::uint32_t domid = 0;
    int rc = 0;
    std::string config_error;
    try {
        build_domain_config(config_, &cfg);
        // Leaves the new domain paused, as `xl restore -p`.
        rc = libxl_domain_create_restore(xen.libxl(), &cfg, &domid, theirs.get(), -1, &params, nullptr, nullptr);
    } catch (const std::exception &e) {
        config_error = e.what();
    }
    theirs.reset(); // a writer still sending gets EPIPE and stops
    writer.join();
    libxl_domain_restore_params_dispose(&params);
    libxl_domain_config_dispose(&cfg);
    if (!config_error.empty())
        throw XenError(config_error, EINVAL);
    if (rc != 0)
        throw XenError("libxl_domain_create_restore for " + name() + " failed (libxl error " + std::to_string(rc) +
                           "; Xen's own messages are in the log above)" +
                           (write_error.empty() ? std::string() : "; writing the stream: " + write_error),
                       EIO);
    xen.log("domain " + name() + ": restored paused as domain " + std::to_string(domid) +
            " by Xen's restore (libxl_domain_create_restore) from the standby");
    return domid;
}

void XenStandby::populate(XenSession &xen, std::uint32_t domid)
{
    xen_pfn_t max_gpfn = 0;
    if (xc_domain_maximum_gpfn(xen.xc(), domid, &max_gpfn) != 0)
        throw_xen_error("xc_domain_maximum_gpfn", domid, errno);
    const std::uint64_t frames = std::min<std::uint64_t>(static_cast<std::uint64_t>(max_gpfn) + 1, pages());
    std::uint64_t lost = 0;
    for (std::uint64_t first = 0; first < frames; first += kFillChunkPages) {
        const auto count = std::min(kFillChunkPages, frames - first);
        std::vector<xen_pfn_t> pfns(count);
        std::vector<int> err(count, 0);
        for (std::uint64_t i = 0; i < count; ++i)
            pfns[i] = first + i;
        void *base = xenforeignmemory_map(xen.foreign(), domid, PROT_READ | PROT_WRITE, count, pfns.data(), err.data());
        if (!base)
            throw_xen_error("xenforeignmemory_map (filling " + std::to_string(count) + " pages)", domid, errno);
        for (std::uint64_t i = 0; i < count; ++i) {
            auto src = page(Pfn{first + i});
            if (err[i] != 0) {
                lost += all_zero(src) ? 0 : 1;
                continue;
            }
            std::memcpy(static_cast<std::uint8_t *>(base) + i * kPageSize, src.data(), kPageSize);
        }
        xenforeignmemory_unmap(xen.foreign(), base, count);
    }
    for (std::uint64_t p = frames; p < pages(); ++p)
        lost += all_zero(page(Pfn{p})) ? 0 : 1;
    if (lost)
        throw XenError("the new domain " + std::to_string(domid) + " has no frame for " + std::to_string(lost) +
                           " pages of the standby that hold data: its xl.cfg (memory, maxmem, type) on this host "
                           "differs from the primary's",
                       ENOMEM);
}

void XenStandby::load_state(XenSession &xen, std::uint32_t domid)
{
    // As Xen's restore (xg_sr_restore_x86_hvm.c): the parameters first; the
    // xenstore and ioreq rings start empty on this host (their other ends,
    // xenstored and the device model, are new), then the HVM context, then
    // the grant table entries for the console and xenstore rings. The event
    // channels stay those libxenlight gave the new domain.
    const auto &x = cpu()->xen();
    // Before anything runs: the CPU it had (CPUID, MSRs) and its TSC.
    if (x.cpuid_policy().empty())
        xen.log("domain " + name() + ": the primary sent no CPUID policy; the guest gets this host's default");
    for (const auto &change : apply_cpu_policy(xen, domid, x))
        xen.log("domain " + name() + ": " + change + " (Xen masks what this host's CPUs lack)");
    xen_pfn_t console_gfn = 0, store_gfn = 0;
    for (const auto &p : x.params()) {
        if (xc_hvm_param_set(xen.xc(), domid, p.index(), p.value()) != 0)
            throw_xen_error("xc_hvm_param_set(" + std::to_string(p.index()) + ")", domid, errno);
        if (p.index() == HVM_PARAM_CONSOLE_PFN)
            console_gfn = p.value();
        if (p.index() == HVM_PARAM_STORE_PFN)
            store_gfn = p.value();
        if ((p.index() == HVM_PARAM_STORE_PFN || p.index() == HVM_PARAM_IOREQ_PFN ||
             p.index() == HVM_PARAM_BUFIOREQ_PFN) &&
            xc_clear_domain_page(xen.xc(), domid, p.value()) != 0)
            throw_xen_error("xc_clear_domain_page(" + std::to_string(p.value()) + ")", domid, errno);
    }
    std::string context = x.hvm_context();
    if (xc_domain_hvm_setcontext(xen.xc(), domid, reinterpret_cast<std::uint8_t *>(context.data()),
                                 static_cast<std::uint32_t>(context.size())) != 0)
        throw_xen_error("xc_domain_hvm_setcontext", domid, errno);
    if (xc_dom_gnttab_seed(xen.xc(), domid, true, console_gfn, store_gfn, 0, 0) != 0)
        throw_xen_error("xc_dom_gnttab_seed", domid, errno);
}

} // namespace understudy::xen
