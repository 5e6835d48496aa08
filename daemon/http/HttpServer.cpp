#include "daemon/http/HttpServer.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/Error.h"
#include "common/Log.h"

namespace segnode::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::asio::ip::tcp;

namespace {

constexpr auto kTimeout = std::chrono::seconds(10);
constexpr uint64_t kMaxRequestBytes = 8192;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const std::map<std::string, Handler>> routes)
      : stream_(std::move(socket)), routes_(std::move(routes)) {
    parser_.header_limit(kMaxRequestBytes);
    parser_.body_limit(kMaxRequestBytes);
  }

  void start() {
    stream_.expires_after(kTimeout);
    bhttp::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (!ec) self->respond(self->parser_.get());
    });
  }

 private:
  void respond(const bhttp::request<bhttp::string_body>& req) {
    Response r = answer(req);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(bhttp::status(r.status), req.version());
    res->set(bhttp::field::server, "segnoded");
    res->set(bhttp::field::content_type, r.contentType);
    res->set(bhttp::field::cache_control, "no-store");
    res->keep_alive(false);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (req.method() == bhttp::verb::head) res->body().clear();
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  Response answer(const bhttp::request<bhttp::string_body>& req) {
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) return {405, "text/plain", "GET or HEAD only\n"};
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    std::string query = path.size() < target.size() ? target.substr(path.size() + 1) : "";
    auto found = routes_->find(path);
    if (found == routes_->end()) return {404, "text/plain", "not found; try /healthz, /readyz, /metrics, /api/status, /api/jobs\n"};
    try {
      return found->second(query);
    } catch (const std::exception& e) {  // a handler's failure is the request's, never the daemon's
      SEGNODE_LOG(Error, App, "HTTP " << path << ": " << e.what());
      return {500, "text/plain", std::string(e.what()) + "\n"};
    }
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request_parser<bhttp::string_body> parser_;
  std::shared_ptr<const std::map<std::string, Handler>> routes_;
};

}  // namespace

HttpServer::HttpServer(boost::asio::io_context& io, const std::string& address, uint16_t port,
                       std::map<std::string, Handler> routes)
    : acceptor_(io), routes_(std::make_shared<const std::map<std::string, Handler>>(std::move(routes))) {
  try {
    tcp::endpoint endpoint(boost::asio::ip::make_address(address), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Io, "HTTP endpoint " + address + ":" + std::to_string(port) + ": " + e.what() +
                                   " (http.address / http.port in the config)");
  }
  accept();
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return acceptor_.local_endpoint().port(); }

void HttpServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) std::make_shared<Session>(std::move(socket), routes_)->start();
    accept();
  });
}

std::string queryValue(const std::string& query, const std::string& key, const std::string& fallback) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(pos, end - pos);
    if (pair.rfind(key + "=", 0) == 0) return pair.substr(key.size() + 1);
    pos = end + 1;
  }
  return fallback;
}

}  // namespace segnode::http
