#include "dom0d/daemon/control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace understudy::daemon {

namespace {

sockaddr_un address_of(const std::filesystem::path &path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof addr.sun_path)
        throw std::runtime_error("control socket path " + path.string() + " is too long");
    std::memcpy(addr.sun_path, path.c_str(), path.native().size() + 1);
    return addr;
}

bool io_all(int fd, void *data, std::size_t size, bool write, std::chrono::milliseconds timeout)
{
    auto *p = static_cast<std::uint8_t *>(data);
    while (size) {
        pollfd pfd{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
        if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0)
            return false;
        ssize_t n = write ? ::send(fd, p, size, MSG_NOSIGNAL) : ::recv(fd, p, size, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return false;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

bool send_message(int fd, const google::protobuf::MessageLite &m, std::chrono::milliseconds timeout)
{
    std::string bytes = m.SerializeAsString();
    std::uint32_t len = static_cast<std::uint32_t>(bytes.size());
    std::uint8_t prefix[4] = {static_cast<std::uint8_t>(len), static_cast<std::uint8_t>(len >> 8),
                              static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 24)};
    return io_all(fd, prefix, 4, true, timeout) && io_all(fd, bytes.data(), bytes.size(), true, timeout);
}

std::uint32_t length_of(const std::uint8_t *prefix)
{
    return prefix[0] | (prefix[1] << 8) | (prefix[2] << 16) | (std::uint32_t{prefix[3]} << 24);
}

bool length_allowed(std::uint32_t len, std::string *why)
{
    if (len <= kMaxControlMessage)
        return true;
    *why = "message of " + std::to_string(len) + " bytes is over the limit";
    return false;
}

bool receive_message(int fd, google::protobuf::MessageLite &m, std::chrono::milliseconds timeout, std::string *why)
{
    std::uint8_t prefix[4];
    if (!io_all(fd, prefix, 4, false, timeout)) {
        *why = "no answer";
        return false;
    }
    const std::uint32_t len = length_of(prefix);
    if (!length_allowed(len, why))
        return false;
    std::string bytes(len, '\0');
    if (!io_all(fd, bytes.data(), len, false, timeout)) {
        *why = "message cut short";
        return false;
    }
    if (!m.ParseFromString(bytes)) {
        *why = "message does not parse";
        return false;
    }
    return true;
}

} // namespace

bool parse_control_frame(std::span<const std::uint8_t> frame, google::protobuf::MessageLite &message, std::string *why)
{
    if (frame.size() < 4) {
        *why = "message cut short";
        return false;
    }
    const std::uint32_t len = length_of(frame.data());
    if (!length_allowed(len, why))
        return false;
    if (frame.size() - 4 != len) {
        *why = frame.size() - 4 < len ? "message cut short" : "bytes after the message";
        return false;
    }
    if (!message.ParseFromArray(frame.data() + 4, static_cast<int>(len))) {
        *why = "message does not parse";
        return false;
    }
    return true;
}

ControlServer::ControlServer(std::filesystem::path path, Handler handler, Log log)
    : path_(std::move(path)), handler_(std::move(handler)), log_(std::move(log))
{
}

ControlServer::~ControlServer()
{
    stop();
}

void ControlServer::start()
{
    std::filesystem::create_directories(path_.parent_path());
    auto addr = address_of(path_);
    fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_)
        throw std::runtime_error("control socket: " + std::string(std::strerror(errno)));
    // A socket file left by a daemon that died is stale; a live daemon answers.
    if (std::filesystem::exists(path_)) {
        UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(probe.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
            throw std::runtime_error("control socket " + path_.string() + ": another understudyd is running");
        std::filesystem::remove(path_);
    }
    const mode_t old = umask(0077);
    int rc = ::bind(fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    umask(old);
    if (rc != 0 || ::listen(fd_.get(), 16) != 0)
        throw std::runtime_error("control socket " + path_.string() + ": " + std::strerror(errno));
    thread_ = std::thread([this] {
        while (!stopping_) {
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0)
                continue;
            UniqueFd client(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (client)
                serve(client.get());
        }
    });
}

void ControlServer::serve(int fd)
{
    proto::ControlRequest request;
    std::string why;
    proto::ControlResponse response;
    if (!receive_message(fd, request, std::chrono::milliseconds(2000), &why)) {
        log_("control socket: refused a request: " + why);
        response.set_ok(false);
        response.set_error("bad request: " + why);
    } else {
        response = handler_(request);
    }
    send_message(fd, response, std::chrono::milliseconds(2000));
}

void ControlServer::stop()
{
    if (stopping_.exchange(true))
        return;
    if (thread_.joinable())
        thread_.join();
    if (fd_)
        std::filesystem::remove(path_);
}

proto::ControlResponse ask_daemon(const std::filesystem::path &path, const proto::ControlRequest &request,
                                  std::chrono::milliseconds timeout)
{
    auto addr = address_of(path);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        throw std::runtime_error("cannot reach understudyd at " + path.string() + ": " + std::strerror(errno) +
                                 " (is it running? see `systemctl status understudyd`)");
    if (!send_message(fd.get(), request, timeout))
        throw std::runtime_error("understudyd at " + path.string() + " did not take the request");
    proto::ControlResponse response;
    std::string why;
    if (!receive_message(fd.get(), response, timeout, &why))
        throw std::runtime_error("understudyd at " + path.string() + ": " + why);
    return response;
}

} // namespace understudy::daemon
