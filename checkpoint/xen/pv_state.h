// What a 64-bit PV domain's checkpoint carries besides its memory, read as
// Xen's PV save reads it (xg_sr_save_x86_pv.c): page types, and per online
// vCPU its basic context (xc_vcpu_getcontext), extended context, xsave area
// and MSRs, with every machine frame in them turned into a pfn.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/xen/hypercall_buffer.h"
#include "checkpoint/xen/pv_p2m.h"
#include "checkpoint/xen/pv_page_table.h"
#include "proto/vm_state.pb.h"

namespace understudy::xen {

class XenSession;

inline constexpr std::size_t kTypeBatch = 1024; // frames per XEN_DOMCTL_getpageframeinfo3

// Replaces each machine frame in `frames` (at most kTypeBatch) by its page
// type (XEN_DOMCTL_PFINFO_*), through `scratch`, a hypercall buffer of at
// least kTypeBatch entries.
void read_page_types(const XenSession &xen, std::uint32_t domid, HypercallBuffer &scratch,
                     std::span<std::uint64_t> frames);

// Adds the state of every online vCPU of `domid` to `into`. The domain must
// be suspended by its guest: vCPU 0's rdx then holds the machine frame of
// its start info page (the suspend record), made a pfn like the others.
// Throws XenError naming the vCPU and frame when one is not the domain's.
void save_pv_vcpus(const XenSession &xen, std::uint32_t domid, unsigned max_vcpus, const PvP2m &p2m,
                   proto::XenPvState &into);

// Why `pv` (from the network) cannot be the state of a 64-bit PV domain of
// `pages` frames and at most `max_vcpus` vCPUs; "" if it can. Checks what
// Xen's restore checks of the same records, so that a bad one is refused
// before it is committed, not at failover. A checkpoint that carries only
// the changes of the page tables is checked against `committed`, the page
// tables as of the checkpoint before (null: none was committed).
[[nodiscard]] std::string pv_state_problem(const proto::XenPvState &pv, std::uint64_t pages, unsigned max_vcpus,
                                           const PageTableMap *committed);

// The page tables after `pv`'s checkpoint: its complete list, or `tables`
// with its changes applied. All or nothing: if it throws (no memory),
// `tables` is unchanged.
void apply_page_tables(const proto::XenPvState &pv, PageTableMap &tables);

} // namespace understudy::xen
