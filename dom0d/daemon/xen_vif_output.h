// Output commit for a protected Xen domain's vifs (ARCHITECTURE.md §5): for
// each vif<domid>.<n>, `scripts/netbuf-setup add` redirects everything the
// guest sends to a TAP, and a TapRedirectOutput holds it there until its
// epoch is acked. Set up when protection starts, torn down when it ends (what
// is held goes out first), so a domain that is not protected sends directly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/xen/xl_config.h"
#include "netbuffer_qdisc/tap_redirect.h"

namespace understudy::daemon {

class XenVifOutput {
  public:
    using Log = std::function<void(const std::string &)>;
    // Throws std::runtime_error (after undoing what it set up) if a vif is
    // missing or netbuf-setup fails.
    XenVifOutput(std::uint32_t domid, const std::vector<xen::XlNic> &nics, std::filesystem::path netbuf_setup,
                 OutputBufferSettings settings, Log log);
    ~XenVifOutput();
    XenVifOutput(const XenVifOutput &) = delete;
    XenVifOutput &operator=(const XenVifOutput &) = delete;

    [[nodiscard]] std::vector<OutputBuffer *> buffers();
    [[nodiscard]] const std::vector<std::string> &vifs() const noexcept { return vifs_; }

  private:
    void run_setup(const std::string &op, const std::string &vif) const;
    void tear_down() noexcept;

    std::filesystem::path netbuf_setup_;
    Log log_;
    std::vector<std::string> vifs_; // set up so far
    std::vector<std::unique_ptr<TapRedirectOutput>> outputs_;
};

// The name Xen's netback gives NIC `devid` of domain `domid`.
[[nodiscard]] std::string vif_name(std::uint32_t domid, unsigned devid);

} // namespace understudy::daemon
