// A standby written as the migration stream Xen's own restore reads, so that
// libxl_domain_create_restore builds the domain at failover exactly as after
// `xl migrate`: libxl's stream format v2 around libxc's format v3 (Xen's
// docs/specs/libxl-migration-stream.pandoc and libxc-migration-stream.pandoc).
//
//   libxl header, LIBXC_CONTEXT
//     image header, domain header (x86 HVM for HVM and PVH; x86 PV)
//     [PV: X86_PV_INFO] X86_CPUID_POLICY, X86_MSR_POLICY, STATIC_DATA_END
//     [PV: X86_PV_P2M_FRAMES]
//     PAGE_DATA ... (every RAM frame; all-zero frames as XALLOC, without
//                    data; PV page tables with their type, normalised)
//     X86_TSC_INFO,
//       HVM and PVH: HVM_PARAMS, HVM_CONTEXT
//       PV: SHARED_INFO, X86_PV_VCPU_BASIC/EXTENDED/XSAVE/MSRS per vCPU
//     END
//   EMULATOR_CONTEXT (HVM: QEMU upstream's state, which QEMU starts from)
//   END
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "checkpoint/xen/pv_page_table.h"
#include "proto/vm_state.pb.h"

namespace understudy::xen {

struct RestoreSource {
    const proto::XenCpuState *state = nullptr; // CPU state, parameters or PV state, policy, not-RAM frames
    std::uint64_t pages = 0;                     // frames 0 .. pages-1
    std::function<std::span<const std::uint8_t>(std::uint64_t pfn)> page;
    std::uint32_t xen_major = 4, xen_minor = 17; // the Xen that writes it (the domain header says so)
    std::string_view device_model;               // HVM: QEMU's saved state ("" for PVH)
    const PageTableMap *page_tables = nullptr;   // PV: its page tables (pfn -> type)
};

// Writes the whole stream through `out`, which throws to stop it.
void write_restore_stream(const RestoreSource &source,
                          const std::function<void(std::span<const std::uint8_t>)> &out);

// Record types and page types of the formats (for the test double's reader).
namespace stream {
inline constexpr std::uint64_t kLibxlIdent = 0x4c6962786c466d74; // "LibxlFmt"
inline constexpr std::uint32_t kLibxlVersion = 2;
inline constexpr std::uint32_t kLibxlEnd = 0, kLibxlLibxcContext = 1, kLibxlEmulatorContext = 3;
inline constexpr std::uint32_t kEmulatorQemuUpstream = 2;
inline constexpr std::uint64_t kImageMarker = ~std::uint64_t{0};
inline constexpr std::uint32_t kImageId = 0x58454e46; // "XENF"
inline constexpr std::uint32_t kImageVersion = 3;
inline constexpr std::uint32_t kDomainX86Pv = 1, kDomainX86Hvm = 2;
inline constexpr std::uint32_t kEnd = 0, kPageData = 1, kX86PvInfo = 2, kX86PvP2mFrames = 3, kX86PvVcpuBasic = 4,
                               kX86PvVcpuExtended = 5, kX86PvVcpuXsave = 6, kSharedInfo = 7, kTscInfo = 8,
                               kHvmContext = 9, kHvmParams = 10, kX86PvVcpuMsrs = 0x0c, kStaticDataEnd = 0x10,
                               kCpuidPolicy = 0x11, kMsrPolicy = 0x12;
inline constexpr std::uint64_t kPfnMask = 0x000fffffffffffff;
inline constexpr std::uint64_t kTypeNotab = 0, kTypeXalloc = 0xe; // in bits 63-60 of a PAGE_DATA pfn
inline constexpr std::size_t kBatchPages = 1024;                  // Xen's MAX_BATCH_SIZE
} // namespace stream

} // namespace understudy::xen
