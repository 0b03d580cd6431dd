// Output commit for a protected Xen domain's vifs (ARCHITECTURE.md §5): for
// each vif<domid>.<n>, `scripts/netbuf-setup add` redirects everything the
// guest sends, and it is held until its epoch is acked: by a plug qdisc on an
// IFB where the kernel has sch_plug (PlugOutput), else in a TAP this process
// reads (TapRedirectOutput). Set up when protection starts, torn down when it
// ends (what is held goes out first), so an unprotected domain sends directly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/xen/xl_config.h"
#include "netbuffer_qdisc/plug_qdisc.h"
#include "netbuffer_qdisc/tap_redirect.h"

namespace understudy::daemon {

class XenVifOutput {
  public:
    using Log = std::function<void(const std::string &)>;
    // Throws std::runtime_error (after undoing what it set up) if a vif is
    // missing or netbuf-setup fails.
    enum class Way { tap_redirect, plug };
    XenVifOutput(std::uint32_t domid, const std::vector<xen::XlNic> &nics, std::filesystem::path netbuf_setup,
                 Way way, OutputBufferSettings settings, Log log);
    ~XenVifOutput();
    XenVifOutput(const XenVifOutput &) = delete;
    XenVifOutput &operator=(const XenVifOutput &) = delete;

    // What takes part in each checkpoint: one per vif.
    [[nodiscard]] std::vector<CheckpointParticipant *> participants();
    // Tap redirect: the buffers holding the frames (none with plug: the kernel holds them).
    [[nodiscard]] std::vector<OutputBuffer *> buffers();
    [[nodiscard]] std::vector<PlugOutput *> plugs();
    [[nodiscard]] Way way() const noexcept { return way_; }
    // A simulated crash (drill): nothing held may leave any more. Plug: the
    // redirect and the IFBs are removed, dropping what the kernel holds.
    void cut_off();
    // The last epoch whose output went out on every vif.
    [[nodiscard]] std::uint64_t released_epoch();
    [[nodiscard]] const std::vector<std::string> &vifs() const noexcept { return vifs_; }

  private:
    void run_setup(const std::string &op, const std::string &vif) const;
    void tear_down() noexcept;

    std::filesystem::path netbuf_setup_;
    Way way_;
    Log log_;
    std::vector<std::string> vifs_; // set up so far
    std::vector<std::unique_ptr<TapRedirectOutput>> outputs_;
    std::vector<std::unique_ptr<PlugOutput>> plugs_;
};

// The name Xen's netback gives NIC `devid` of domain `domid`.
[[nodiscard]] std::string vif_name(std::uint32_t domid, unsigned devid);

} // namespace understudy::daemon
