#include "checkpoint/xen/device_model_state.h"

namespace understudy::xen {

std::string device_model_state_problem(std::string_view state)
{
    // QEMU_VM_FILE_MAGIC and QEMU_VM_FILE_VERSION, big-endian.
    constexpr std::string_view kHeader{"QEVM\0\0\0\3", 8};
    if (state.size() > kMaxDeviceModelState)
        return std::to_string(state.size()) + " bytes of device model state, more than the " +
               std::to_string(kMaxDeviceModelState) + " a checkpoint carries";
    if (state.size() <= kHeader.size())
        return std::to_string(state.size()) + " bytes, too short for QEMU device state";
    if (state.substr(0, 4) != kHeader.substr(0, 4))
        return "not QEMU device state (no QEVM magic at its start)";
    if (state.substr(0, kHeader.size()) != kHeader)
        return "QEMU device state of a file format version other than 3, which Xen 4.17's QEMU writes";
    return "";
}

} // namespace understudy::xen
