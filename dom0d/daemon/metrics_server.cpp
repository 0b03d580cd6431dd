#include "dom0d/daemon/metrics_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace understudy::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, MetricsServer::Render &render) : stream_(std::move(socket)), render_(render) {}

    void run()
    {
        stream_.expires_after(std::chrono::seconds(5));
        http::async_read(stream_, buffer_, request_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->respond(ec); });
    }

  private:
    void respond(beast::error_code ec)
    {
        if (ec)
            return;
        response_.version(request_.version());
        response_.keep_alive(false);
        if (request_.method() == http::verb::get && request_.target() == "/metrics") {
            response_.result(http::status::ok);
            response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            response_.body() = render_();
        } else {
            response_.result(http::status::not_found);
            response_.set(http::field::content_type, "text/plain");
            response_.body() = "understudyd serves only GET /metrics\n";
        }
        response_.prepare_payload();
        http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, std::size_t) {
            beast::error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }

    beast::tcp_stream stream_;
    MetricsServer::Render &render_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
};

} // namespace

struct MetricsServer::Impl {
    asio::io_context io;
    tcp::acceptor acceptor{io};
    asio::steady_timer retry{io};
    Render render;
    std::uint64_t accept_errors = 0;

    void accept()
    {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
            if (ec == asio::error::operation_aborted)
                return; // stopping
            if (ec) {
                // Out of descriptors or memory: the connection waits in the
                // kernel's queue; try again shortly, never give up.
                ++accept_errors;
                retry.expires_after(std::chrono::milliseconds(100));
                retry.async_wait([this](beast::error_code e) {
                    if (!e)
                        accept();
                });
                return;
            }
            std::make_shared<Session>(std::move(socket), render)->run();
            accept();
        });
    }
};

MetricsServer::MetricsServer(const Endpoint &at, Render render) : impl_(std::make_unique<Impl>())
{
    impl_->render = std::move(render);
    tcp::resolver resolver(impl_->io);
    beast::error_code ec;
    auto results = resolver.resolve(at.host, std::to_string(at.port), ec);
    if (ec || results.empty())
        throw std::runtime_error("metrics endpoint " + at.to_string() + ": " + ec.message());
    tcp::endpoint endpoint = *results.begin();
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint, ec);
    if (ec)
        throw std::runtime_error("metrics endpoint " + at.to_string() + ": " + ec.message());
    impl_->acceptor.listen();
}

MetricsServer::~MetricsServer()
{
    stop();
}

void MetricsServer::start()
{
    impl_->accept();
    thread_ = std::thread([this] { impl_->io.run(); });
}

void MetricsServer::stop()
{
    impl_->io.stop();
    if (thread_.joinable())
        thread_.join();
}

std::uint16_t MetricsServer::port() const
{
    return impl_->acceptor.local_endpoint().port();
}

} // namespace understudy::daemon
