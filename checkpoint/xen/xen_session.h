// The three handles the Xen backend talks to Xen through, opened together:
// libxenctrl (domctls: pause, log-dirty, HVM context), libxenforeignmemory
// (mapping guest pages) and libxenlight (domains by name, creation at
// failover). Xen's own messages go to our log, not to stderr.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct xc_interface_core;
struct xenforeignmemory_handle;
struct libxl__ctx;

namespace understudy::xen {

// A failed call into Xen: which call, on which domain, errno and what it
// usually means there.
class XenError : public std::runtime_error {
  public:
    XenError(const std::string &what, int error) : std::runtime_error(what), errno_(error) {}
    [[nodiscard]] int error() const noexcept { return errno_; }

  private:
    int errno_;
};

// Throws XenError for `call` failing with `error` (an errno value).
[[noreturn]] void throw_xen_error(const std::string &call, std::uint32_t domid, int error);

class XenSession {
  public:
    using Log = std::function<void(const std::string &)>;
    // Throws XenError when Xen cannot be reached (not a Dom0, not root).
    static std::shared_ptr<XenSession> open(Log log);
    ~XenSession();
    XenSession(const XenSession &) = delete;
    XenSession &operator=(const XenSession &) = delete;

    [[nodiscard]] xc_interface_core *xc() const noexcept { return xc_; }
    [[nodiscard]] xenforeignmemory_handle *foreign() const noexcept { return fmem_; }
    [[nodiscard]] libxl__ctx *libxl() const noexcept { return ctx_; }
    void log(const std::string &line) const;
    // Xen's directories, as Debian's Xen is built: XEN_LIB_DIR, where libxl
    // writes a suspended HVM domain's device model (QEMU) state
    // (qemu-save.DOMID), and XEN_RUN_DIR, where QEMU's QMP socket is
    // (qmp-libxl-DOMID).
    struct Dirs {
        std::string lib = "/var/lib/xen";
        std::string run = "/var/run/xen";
    };
    void set_dirs(Dirs dirs) { dirs_ = std::move(dirs); }
    [[nodiscard]] const Dirs &dirs() const noexcept { return dirs_; }
    [[nodiscard]] std::string device_model_save_file(std::uint32_t domid) const;
    [[nodiscard]] std::string device_model_qmp_socket(std::uint32_t domid) const;

    struct Logger;

  private:
    explicit XenSession(Log log);
    Log log_;
    std::unique_ptr<Logger> logger_;
    xc_interface_core *xc_ = nullptr;
    xenforeignmemory_handle *fmem_ = nullptr;
    libxl__ctx *ctx_ = nullptr;
    Dirs dirs_;
};

// "web01" or "7": the domid of a running domain. Throws XenError (ESRCH)
// naming what was looked for when there is none.
[[nodiscard]] std::uint32_t find_domain(const XenSession &xen, const std::string &name_or_domid);

struct DomainFacts {
    std::uint32_t domid = 0;
    std::string name;
    std::string type;            // "pv", "hvm" or "pvh"
    std::uint64_t pages = 0;     // guest-physical frames 0..pages-1 (max_gpfn + 1)
    std::uint64_t max_memkb = 0;
    unsigned vcpus = 0;
    bool paused = false;
};

[[nodiscard]] DomainFacts describe_domain(const XenSession &xen, std::uint32_t domid);

// The devices a running domain has, as libxenlight lists them.
struct DomainDevices {
    std::vector<std::string> vif_macs;     // "00:16:3e:12:34:56", by devid order
    std::vector<std::string> disk_targets; // pdev_path: file, device or DRBD resource
};
[[nodiscard]] DomainDevices domain_devices(const XenSession &xen, std::uint32_t domid);

} // namespace understudy::xen
