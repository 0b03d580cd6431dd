#include "tests/support/xen_double/fake_qmp.h"

#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace understudy::testing::xen_double {

namespace {

bool send_line(int fd, const std::string &json)
{
    const std::string line = json + "\r\n";
    return ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
}

} // namespace

FakeQmp::FakeQmp(std::string path, Handler handler) : path_(std::move(path)), handler_(std::move(handler))
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("fake QMP: socket path too long: " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 1) != 0)
        throw std::runtime_error("fake QMP: cannot listen on " + path_ + ": " + std::strerror(errno));
    thread_ = std::thread([this] { serve(); });
}

FakeQmp::~FakeQmp()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
    for (auto &[id, fd] : fdsets_)
        ::close(fd);
    ::close(listener_);
    ::unlink(path_.c_str());
}

void FakeQmp::serve()
{
    while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0)
            continue;
        const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0)
            continue;
        talk(client);
        ::close(client);
    }
}

void FakeQmp::talk(int client)
{
    if (!send_line(client, R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"))
        return;
    bool negotiated = false;
    std::string buffer;
    int passed = -1; // the last descriptor passed, until add-fd takes it
    while (!stop_) {
        auto nl = buffer.find('\n');
        if (nl == std::string::npos) {
            pollfd p{client, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            char chunk[4096];
            iovec io{chunk, sizeof chunk};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
            msghdr message{};
            message.msg_iov = &io;
            message.msg_iovlen = 1;
            message.msg_control = control;
            message.msg_controllen = sizeof control;
            const auto n = ::recvmsg(client, &message, MSG_CMSG_CLOEXEC);
            if (n <= 0)
                return; // the client is done
            for (auto *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                    if (passed >= 0)
                        ::close(passed); // QEMU keeps one: the last
                    std::memcpy(&passed, CMSG_DATA(c), sizeof(int));
                }
            buffer.append(chunk, static_cast<std::size_t>(n));
            continue;
        }
        const std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        google::protobuf::Struct request;
        if (!google::protobuf::util::JsonStringToMessage(line, &request).ok()) {
            send_line(client, R"({"error": {"class": "GenericError", "desc": "JSON parse error"}})");
            continue;
        }
        const auto &fields = request.fields();
        const auto execute = fields.count("execute") ? fields.at("execute").string_value() : std::string();
        google::protobuf::Struct arguments =
            fields.count("arguments") ? fields.at("arguments").struct_value() : google::protobuf::Struct();
        std::string reply;
        if (execute == "qmp_capabilities") {
            negotiated = true;
            reply = R"({"return": {}})";
        } else if (!negotiated) {
            reply = R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}})";
        } else if (execute == "add-fd") { // as QEMU: the fd passed with the command joins a new fd set
            if (passed < 0) {
                reply = R"({"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}})";
            } else {
                std::lock_guard lock(mutex_);
                const int id = next_fdset_++;
                fdsets_[id] = passed;
                reply = R"({"return": {"fdset-id": )" + std::to_string(id) + R"(, "fd": )" + std::to_string(passed) + "}}";
                passed = -1;
            }
        } else if (execute == "remove-fd") {
            const auto id = arguments.fields().count("fdset-id")
                                ? static_cast<int>(arguments.fields().at("fdset-id").number_value())
                                : -1;
            std::lock_guard lock(mutex_);
            if (auto it = fdsets_.find(id); it == fdsets_.end()) {
                reply = R"({"error": {"class": "GenericError", "desc": "File descriptor named 'fdset-id:)" +
                        std::to_string(id) + R"(' not found"}})";
            } else {
                ::close(it->second);
                fdsets_.erase(it);
                reply = R"({"return": {}})";
            }
        } else {
            // A file name "/dev/fdset/ID" opens the fd set's descriptor, as
            // QEMU's qemu_open does: the handler gets a path to it.
            if (auto f = arguments.mutable_fields()->find("filename");
                f != arguments.mutable_fields()->end() && f->second.string_value().rfind("/dev/fdset/", 0) == 0) {
                std::lock_guard lock(mutex_);
                const auto it = fdsets_.find(std::atoi(f->second.string_value().c_str() + 11));
                f->second.set_string_value(it == fdsets_.end() ? "/nonexistent/fdset"
                                                               : "/proc/self/fd/" + std::to_string(it->second));
            }
            send_line(client, R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"})");
            reply = handler_(execute, arguments);
        }
        if (!send_line(client, reply))
            break;
    }
    if (passed >= 0)
        ::close(passed);
}

std::size_t FakeQmp::fdsets() const
{
    std::lock_guard lock(mutex_);
    return fdsets_.size();
}

} // namespace understudy::testing::xen_double
