#include "checkpoint/xen/qmp_client.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "checkpoint/unique_fd.h"

namespace understudy::xen {

namespace {

namespace pb = google::protobuf;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxMessage = 1 << 20;

} // namespace

class QmpMonitor::Connection {
  public:
    explicit Connection(const std::string &path) : path_(path)
    {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path)
            throw QmpError("QMP socket path " + path + " is too long");
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd_ || ::connect(fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
            throw QmpError("cannot connect to QEMU's QMP socket " + path + ": " + std::strerror(errno) +
                           " (is the domain's device model running, and XEN_RUN_DIR right?)");
    }

    // By when QEMU must have answered.
    void answer_by(Clock::time_point deadline) { deadline_ = deadline; }

    // The next message that is not an asynchronous event.
    pb::Struct reply()
    {
        for (;;) {
            auto message = next();
            if (message.fields().count("event"))
                continue;
            return message;
        }
    }

    // `passed` (if not -1) travels with the first bytes, as SCM_RIGHTS.
    void send(const std::string &json, int passed)
    {
        std::string line = json + "\n";
        std::size_t sent = 0;
        while (sent < line.size()) {
            iovec io{line.data() + sent, line.size() - sent};
            msghdr message{};
            message.msg_iov = &io;
            message.msg_iovlen = 1;
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
            if (passed >= 0 && sent == 0) {
                message.msg_control = control;
                message.msg_controllen = sizeof control;
                auto *c = CMSG_FIRSTHDR(&message);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
            }
            const auto n = ::sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw QmpError("QMP socket " + path_ + ": sending failed: " + std::strerror(errno));
            sent += static_cast<std::size_t>(n);
        }
    }

  private:
    pb::Struct next()
    {
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
                    line.pop_back();
                if (line.empty())
                    continue;
                pb::Struct message;
                if (!pb::util::JsonStringToMessage(line, &message).ok())
                    throw QmpError("QMP socket " + path_ + ": not a JSON object: " + line.substr(0, 200));
                return message;
            }
            if (buffer_.size() > kMaxMessage)
                throw QmpError("QMP socket " + path_ + ": a message longer than 1 MiB");
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
            pollfd p{fd_.get(), POLLIN, 0};
            const int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
            if (ready < 0 && errno == EINTR)
                continue;
            if (ready <= 0)
                throw QmpError("QMP socket " + path_ + ": QEMU did not answer in time");
            char chunk[4096];
            const auto n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw QmpError("QMP socket " + path_ + ": QEMU closed the connection" +
                               (n < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    std::string path_;
    Clock::time_point deadline_ = Clock::now();
    UniqueFd fd_;
    std::string buffer_;
};

namespace {

std::string text_of(const pb::Struct &s, const char *key)
{
    auto it = s.fields().find(key);
    return it != s.fields().end() && it->second.kind_case() == pb::Value::kStringValue ? it->second.string_value()
                                                                                         : std::string();
}

// QEMU's answer to a command: nothing on success, QmpError on "error".
void expect_return(const pb::Struct &reply, const std::string &command, const std::string &path)
{
    if (reply.fields().count("return"))
        return;
    if (auto e = reply.fields().find("error");
        e != reply.fields().end() && e->second.kind_case() == pb::Value::kStructValue)
        throw QmpError("QEMU refused " + command + " (QMP socket " + path + "): " +
                       text_of(e->second.struct_value(), "class") + ": " + text_of(e->second.struct_value(), "desc"));
    throw QmpError("QMP socket " + path + ": an answer to " + command + " that is neither return nor error");
}

} // namespace

QmpMonitor::QmpMonitor(const std::string &socket_path, std::chrono::milliseconds timeout)
    : connection_(std::make_unique<Connection>(socket_path)), path_(socket_path), timeout_(timeout)
{
    connection_->answer_by(Clock::now() + timeout_);
    if (!connection_->reply().fields().count("QMP"))
        throw QmpError("QMP socket " + path_ + ": no QMP greeting (is it QEMU's monitor?)");
    execute("qmp_capabilities");
}

int QmpMonitor::add_fd(int fd)
{
    const auto added = execute("add-fd", "", fd);
    const auto &fields = added.struct_value().fields();
    const auto id = fields.find("fdset-id");
    if (id == fields.end() || id->second.kind_case() != pb::Value::kNumberValue || id->second.number_value() < 0 ||
        id->second.number_value() > 1e9 || id->second.number_value() != static_cast<int>(id->second.number_value()))
        throw QmpError("QMP socket " + path_ + ": add-fd answered without a usable fdset-id");
    return static_cast<int>(id->second.number_value());
}

void QmpMonitor::remove_fd_set(int fdset)
{
    execute("remove-fd", R"({"fdset-id":)" + std::to_string(fdset) + "}");
}

QmpMonitor::~QmpMonitor() = default;

pb::Value QmpMonitor::execute(const std::string &command, const std::string &arguments, int passed_fd)
{
    connection_->answer_by(Clock::now() + timeout_);
    connection_->send(R"({"execute":)" + qmp_string(command) +
                          (arguments.empty() ? std::string() : R"(,"arguments":)" + arguments) + "}",
                      passed_fd);
    auto reply = connection_->reply();
    expect_return(reply, command, path_);
    return reply.fields().at("return");
}

std::string qmp_string(const std::string &s)
{
    pb::Value v;
    v.set_string_value(s);
    std::string out;
    (void)pb::util::MessageToJsonString(v, &out);
    return out;
}

} // namespace understudy::xen
