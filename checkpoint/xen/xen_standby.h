// The backup's standby copy of a Xen guest: pages and state held in memory
// (StandbyImage) and, at failover, a domain built by Xen's own restore
// (libxl_domain_create_restore) from the guest's xl.cfg on this host and a
// migration stream written from the standby (restore_stream.h), then
// unpaused (docs/xen.md).
#pragma once

#include <functional>

#include "checkpoint/standby_image.h"
#include "checkpoint/xen/pv_page_table.h"
#include "checkpoint/xen/xen_session.h"
#include "checkpoint/xen/xl_config.h"

namespace understudy::xen {

class XenStandby final : public StandbyImage {
  public:
    using OpenXen = std::function<std::shared_ptr<XenSession>()>;
    // `before_create` runs first at activation (DRBD promotion of the
    // guest's disks); it throws to stop the activation.
    XenStandby(XlConfig config, std::uint64_t memory_size, OpenXen open_xen, std::function<void()> before_create);

    // Only Xen HVM/PVH state of sane size, only the HVM parameters Xen's
    // own save carries (a peer must not set any other parameter here), and a
    // CPU policy this host can run (checked once per policy).
    std::string cpu_problem(const proto::CpuState &cpu) const override;
    // An HVM domain's device model state must be QEMU's (device_model_state.h);
    // PVH and PV domains have no device model.
    std::string devices_problem(const proto::DeviceState &devices) const override;
    // A PV domain's checkpoint carries its page tables in full once, then
    // their changes: applied here as it commits, all or none.
    void load_cpu(proto::CpuState cpu) override;
    // A PV standby's page tables as committed (pfn -> type).
    [[nodiscard]] const PageTableMap &page_tables() const noexcept { return page_tables_; }

    // Creates, fills and starts the domain. On failure it destroys what it
    // created and throws.
    std::unique_ptr<Guest> activate() override;

  private:
    std::uint32_t restore_paused(XenSession &xen);

    XlConfig config_;
    PageTableMap page_tables_;
    bool page_tables_committed_ = false;
    OpenXen open_xen_;
    std::function<void()> before_create_;
    mutable std::string policy_checked_; // the CPUID and MSR policy last checked against this host
    mutable std::string policy_verdict_; // and why this host cannot run it ("" if it can)
};

// Why a standby cannot be made from this xl.cfg ("" if it can): vifs need a
// fixed mac, or the guest's NIC would change address at failover.
[[nodiscard]] std::string standby_config_problem(const XlConfig &config);

} // namespace understudy::xen
