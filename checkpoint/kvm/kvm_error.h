// Errors of the kvm backend. KvmError: the host side failed (an ioctl, a
// file). GuestFault: the guest asked for something it may not have; the VM is
// stopped, the VMM carries on.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace understudy::kvm {

class KvmError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class GuestFault : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// "what: strerror(errno)" for the errno of the call that just failed.
[[nodiscard]] inline KvmError system_error(const std::string &what, int err = errno)
{
    return KvmError(what + ": " + std::strerror(err));
}

} // namespace understudy::kvm
