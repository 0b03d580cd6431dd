#include "checkpoint/xen/hypercall_buffer.h"

#include <cerrno>
#include <string>

#include "checkpoint/xen/xen_session.h"

extern "C" {
#include <xenctrl.h>
}

namespace understudy::xen {

HypercallBuffer::HypercallBuffer(xc_interface_core *xch, std::size_t size)
    : xch_(xch), buffer_(std::make_unique<xc_hypercall_buffer>()), size_(size)
{
    *buffer_ = xc_hypercall_buffer{};
    buffer_->ubuf = reinterpret_cast<void *>(-1); // no bounce: Xen reads and writes it directly
    data_ = xc__hypercall_buffer_alloc(xch_, buffer_.get(), size);
    if (!data_) {
        const int error = errno ? errno : ENOMEM;
        buffer_.reset();
        throw XenError("allocating a hypercall buffer of " + std::to_string(size) + " bytes failed", error);
    }
}

HypercallBuffer::~HypercallBuffer()
{
    if (buffer_ && data_)
        xc__hypercall_buffer_free(xch_, buffer_.get());
}

} // namespace understudy::xen
