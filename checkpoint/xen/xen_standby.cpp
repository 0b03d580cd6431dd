#include "checkpoint/xen/xen_standby.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <thread>

extern "C" {
#include <libxl.h>
#include <xenctrl.h>
}

#include "checkpoint/unique_fd.h"
#include "checkpoint/xen/cpu_policy.h"
#include "checkpoint/xen/device_model_state.h"
#include "checkpoint/xen/domain_config.h"
#include "checkpoint/xen/pv_state.h"
#include "checkpoint/xen/restore_stream.h"
#include "checkpoint/xen/xen_guest.h"

namespace understudy::xen {

std::string standby_config_problem(const XlConfig &config)
{
    for (std::size_t i = 0; i < config.nics.size(); ++i)
        if (config.nics[i].mac.empty())
            return "vif " + std::to_string(i) + " of " + config.name +
                   " has no mac= in its xl.cfg; give it the primary's MAC, or the standby's NIC gets another "
                   "address and clients lose it at failover";
    return "";
}

XenStandby::XenStandby(XlConfig config, std::uint64_t memory_size, OpenXen open_xen, std::function<void()> before_create)
    : StandbyImage(config.name, memory_size, 0, {}, config.type == "pv" ? Memory::committed : Memory::sparse),
      config_(std::move(config)), open_xen_(std::move(open_xen)),
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
    if (x.domain_type() == "pv") {
        if (!x.has_pv())
            return "a PV domain's state without its PV part";
        if (auto problem =
                pv_state_problem(x.pv(), pages(), config_.vcpus, page_tables_committed_ ? &page_tables_ : nullptr);
            !problem.empty())
            return problem;
    } else if (x.hvm_context().size() < 24 || x.hvm_context().size() > kMaxContext) {
        return "an HVM context of " + std::to_string(x.hvm_context().size()) + " bytes";
    }
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

void XenStandby::load_cpu(proto::CpuState cpu)
{
    if (cpu.has_xen() && cpu.xen().has_pv()) { // checked by cpu_problem against what is committed here
        apply_page_tables(cpu.xen().pv(), page_tables_); // all or none
        page_tables_committed_ = true;
    }
    StandbyImage::load_cpu(std::move(cpu));
}

std::string XenStandby::devices_problem(const proto::DeviceState &devices) const
{
    const auto &state = devices.xen_device_model();
    if (config_.type != "hvm")
        return state.empty() ? "" : "device model state for " + name() + ", a " + config_.type + " domain, which has none";
    if (state.empty())
        return "no device model (QEMU) state for HVM domain " + name();
    if (auto problem = device_model_state_problem(state); !problem.empty())
        return "device model state of " + name() + ": " + problem;
    return "";
}

std::unique_ptr<Guest> XenStandby::activate()
{
    if (!cpu() || !cpu()->has_xen())
        throw std::runtime_error("standby of " + name() + " holds no Xen CPU state (no checkpoint committed)");
    // Refused before anything changes here (the disks are promoted next).
    if (config_.type == "hvm" && (!devices() || devices()->xen_device_model().empty()))
        throw std::runtime_error("standby of HVM domain " + name() + " holds no device model (QEMU) state, which "
                                 "Xen's restore starts QEMU from; the primary sends it with every checkpoint");
    if (before_create_)
        before_create_();
    auto xen = open_xen_();
    // Built by Xen's own restore from a migration stream of the standby.
    const std::uint32_t domid = restore_paused(*xen);
    try {
        // Xen masks CPU features this host lacks: say which.
        for (const auto &change : policy_changes(*xen, domid, cpu()->xen()))
            xen->log("domain " + name() + ": " + change + " (Xen masks what this host's CPUs lack)");
        if (int rc = libxl_domain_unpause(xen->libxl(), domid, nullptr); rc != 0)
            throw XenError("libxl_domain_unpause of new domain " + std::to_string(domid) + " failed (libxl error " +
                               std::to_string(rc) + ")",
                           EIO);
        // A PV guest is protected by suspending it (XenGuest says why).
        return std::make_unique<XenGuest>(xen, domid,
                                          config_.type == "pv" ? CheckpointWay::suspend : CheckpointWay::pause);
    } catch (...) {
        xen->log("domain " + name() + ": activation failed; destroying the half-built domain " + std::to_string(domid));
        libxl_domain_destroy(xen->libxl(), domid, nullptr);
        throw;
    }
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
    source.page_tables = &page_tables_;
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
                           "; Xen's own messages are in the log above" +
                           (config_.type == "hvm" ? "; QEMU's, where its device model did not start from the "
                                                    "saved state, in /var/log/xen/qemu-dm-" + name() + ".log"
                                                  : std::string()) +
                           ")" +
                           (write_error.empty() ? std::string() : "; writing the stream: " + write_error),
                       EIO);
    xen.log("domain " + name() + ": restored paused as domain " + std::to_string(domid) +
            " by Xen's restore (libxl_domain_create_restore) from the standby");
    return domid;
}

} // namespace understudy::xen
