#include "checkpoint/xen/xen_session.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
}

namespace understudy::xen {

namespace {

std::string errno_hint(int error)
{
    switch (error) {
    case EPERM:
    case EACCES:
        return " (understudyd must run as root in Dom0, and an XSM/FLASK policy must allow it)";
    case ESRCH:
        return " (the domain no longer exists: it was destroyed, or shut down)";
    case ENOMEM:
        return " (Xen or Dom0 is out of memory, e.g. the domain's shadow/paging pool for log-dirty)";
    case ENOENT:
        return " (no such page or object in the domain)";
    default:
        return "";
    }
}

} // namespace

void throw_xen_error(const std::string &call, std::uint32_t domid, int error)
{
    throw XenError(call + " on domain " + std::to_string(domid) + " failed: " + std::strerror(error) + errno_hint(error),
                   error);
}

// Forwards Xen's log messages (libxc, libxl) to the daemon's log.
struct XenSession::Logger {
    xentoollog_logger base{}; // first: Xen hands back a pointer to it
    const XenSession *session = nullptr;

    static void vmessage(xentoollog_logger *logger, xentoollog_level level, int errnoval, const char *context,
                         const char *format, va_list al)
    {
        if (level < XTL_WARN)
            return;
        auto *self = reinterpret_cast<Logger *>(logger);
        char text[512];
        std::vsnprintf(text, sizeof text, format, al);
        std::string line = std::string("xen ") + (context ? context : "") + ": " + text;
        if (errnoval > 0)
            line += std::string(": ") + std::strerror(errnoval);
        self->session->log(line);
    }
    static void destroy(xentoollog_logger *) {}
};

XenSession::XenSession(Log log) : log_(std::move(log)), logger_(std::make_unique<Logger>())
{
    logger_->base.vmessage = &Logger::vmessage;
    logger_->base.destroy = &Logger::destroy;
    logger_->session = this;
}

std::shared_ptr<XenSession> XenSession::open(Log log)
{
    std::shared_ptr<XenSession> session(new XenSession(std::move(log)));
    auto *logger = &session->logger_->base;
    session->xc_ = xc_interface_open(logger, logger, 0);
    if (!session->xc_)
        throw XenError(std::string("cannot open libxenctrl (xc_interface_open): ") + std::strerror(errno) +
                           "; is this Xen's Dom0, and does understudyd run as root?",
                       errno);
    session->fmem_ = xenforeignmemory_open(logger, 0);
    if (!session->fmem_)
        throw XenError(std::string("cannot open libxenforeignmemory: ") + std::strerror(errno), errno);
    libxl_ctx *ctx = nullptr;
    if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, logger) != 0 || !ctx)
        throw XenError("cannot open libxenlight (libxl_ctx_alloc failed; is xenstored running?)", EIO);
    session->ctx_ = ctx;
    return session;
}

XenSession::~XenSession()
{
    if (ctx_)
        libxl_ctx_free(ctx_);
    if (fmem_)
        xenforeignmemory_close(fmem_);
    if (xc_)
        xc_interface_close(xc_);
}

void XenSession::log(const std::string &line) const
{
    if (log_)
        log_(line);
}

std::uint32_t find_domain(const XenSession &xen, const std::string &name_or_domid)
{
    if (name_or_domid.empty() || name_or_domid.size() > 64)
        throw XenError("a Xen domain is named by its xl name or its domid (1 to 64 characters)", EINVAL);
    const bool numeric = name_or_domid.find_first_not_of("0123456789") == std::string::npos;
    std::uint32_t domid = 0;
    if (numeric) {
        if (name_or_domid.size() > 5)
            throw XenError("domid " + name_or_domid + " is out of range", EINVAL);
        domid = static_cast<std::uint32_t>(std::stoul(name_or_domid));
        if (domid == 0)
            throw XenError("domain 0 is Dom0 itself; understudy protects guests (DomUs)", EINVAL);
        libxl_dominfo info;
        libxl_dominfo_init(&info);
        const int rc = libxl_domain_info(xen.libxl(), &info, domid);
        libxl_dominfo_dispose(&info);
        if (rc != 0)
            throw XenError("no running domain with domid " + name_or_domid + " (see `xl list`)", ESRCH);
    } else if (libxl_name_to_domid(xen.libxl(), name_or_domid.c_str(), &domid) != 0) {
        throw XenError("no running domain named " + name_or_domid + " (see `xl list`)", ESRCH);
    }
    if (domid == 0)
        throw XenError("domain 0 is Dom0 itself; understudy protects guests (DomUs)", EINVAL);
    return domid;
}

DomainFacts describe_domain(const XenSession &xen, std::uint32_t domid)
{
    DomainFacts facts;
    facts.domid = domid;
    libxl_dominfo info;
    libxl_dominfo_init(&info);
    if (libxl_domain_info(xen.libxl(), &info, domid) != 0) {
        libxl_dominfo_dispose(&info);
        throw_xen_error("libxl_domain_info", domid, ESRCH);
    }
    switch (info.domain_type) {
    case LIBXL_DOMAIN_TYPE_HVM: facts.type = "hvm"; break;
    case LIBXL_DOMAIN_TYPE_PVH: facts.type = "pvh"; break;
    case LIBXL_DOMAIN_TYPE_PV: facts.type = "pv"; break;
    default: facts.type = "unknown"; break;
    }
    // libxl_domain_info says HVM for a PVH domain too (it reads only Xen's
    // hvm flag; seen on Xen 4.17). Xen emulates no devices but the local
    // APIC for PVH, all of them for HVM.
    if (facts.type == "hvm") {
        xc_dominfo_t xc_info{};
        if (xc_domain_getinfo(xen.xc(), domid, 1, &xc_info) == 1 && xc_info.domid == domid &&
            (xc_info.arch_config.emulation_flags & XEN_X86_EMU_ALL & ~(XEN_X86_EMU_LAPIC | XEN_X86_EMU_VPCI)) == 0)
            facts.type = "pvh";
    }
    facts.max_memkb = info.max_memkb;
    facts.vcpus = info.vcpu_max_id + 1;
    facts.paused = info.paused;
    const bool dying = info.dying || info.shutdown;
    libxl_dominfo_dispose(&info);
    if (dying)
        throw XenError("domain " + std::to_string(domid) + " is shutting down or dying", ESRCH);
    if (char *name = libxl_domid_to_name(xen.libxl(), domid)) {
        facts.name = name;
        std::free(name);
    } else {
        throw_xen_error("libxl_domid_to_name", domid, ESRCH);
    }
    xen_pfn_t max_gpfn = 0;
    if (xc_domain_maximum_gpfn(xen.xc(), domid, &max_gpfn) != 0)
        throw_xen_error("xc_domain_maximum_gpfn", domid, errno);
    facts.pages = static_cast<std::uint64_t>(max_gpfn) + 1;
    return facts;
}

DomainDevices domain_devices(const XenSession &xen, std::uint32_t domid)
{
    DomainDevices devices;
    int n = 0;
    if (libxl_device_nic *nics = libxl_device_nic_list(xen.libxl(), domid, &n)) {
        for (int i = 0; i < n; ++i) {
            char mac[18];
            const auto &m = nics[i].mac;
            std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
            devices.vif_macs.push_back(mac);
        }
        libxl_device_nic_list_free(nics, n);
    }
    n = 0;
    if (libxl_device_disk *disks = libxl_device_disk_list(xen.libxl(), domid, &n)) {
        for (int i = 0; i < n; ++i)
            devices.disk_targets.push_back(disks[i].pdev_path ? disks[i].pdev_path : "");
        libxl_device_disk_list_free(disks, n);
    }
    return devices;
}

std::string XenSession::device_model_save_file(std::uint32_t domid) const
{
    return dirs_.lib + "/qemu-save." + std::to_string(domid);
}

std::string XenSession::device_model_qmp_socket(std::uint32_t domid) const
{
    return dirs_.run + "/qmp-libxl-" + std::to_string(domid);
}

} // namespace understudy::xen
