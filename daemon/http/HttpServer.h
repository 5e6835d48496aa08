#pragma once
// A small HTTP/1.1 server for the operators' endpoints (/healthz, /readyz, /metrics, /api/*), on
// the daemon's io_context with Boost.Beast. GET and HEAD only, one request per connection, a
// request of at most 8 KiB read within 10 s: it serves monitoring, not the public.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace segnode::http {

struct Response {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

// Called on the io thread with the request's query string ("state=failed&limit=5", or "").
using Handler = std::function<Response(const std::string& query)>;

class HttpServer {
 public:
  // Binds at once: throws Error(Io) naming the address when it cannot.
  HttpServer(boost::asio::io_context& io, const std::string& address, uint16_t port, std::map<std::string, Handler> routes);
  ~HttpServer();
  uint16_t port() const;  // the bound port (for port 0)
  void stop();

 private:
  void accept();
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<const std::map<std::string, Handler>> routes_;
};

// The value of `key` in a query string, or `fallback`.
std::string queryValue(const std::string& query, const std::string& key, const std::string& fallback = "");

}  // namespace segnode::http
