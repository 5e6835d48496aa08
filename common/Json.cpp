#include "common/Json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/Error.h"

namespace segnode {
namespace {

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  Json document() {
    Json v = value();
    skipSpace();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::BadInput, "JSON: " + what + " at byte " + std::to_string(pos_));
  }
  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  char peek() {
    skipSpace();
    if (pos_ >= s_.size()) fail("unexpected end");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  bool literal(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (s_.compare(pos_, n, word) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  Json value() {
    if (++depth_ > 64) fail("nesting too deep");
    Json v;
    char c = peek();
    if (c == '{') v = object();
    else if (c == '[') v = array();
    else if (c == '"') v = Json(string());
    else if (literal("true")) v = Json(true);
    else if (literal("false")) v = Json(false);
    else if (literal("null")) v = Json();
    else v = Json(number());
    --depth_;
    return v;
  }

  Json object() {
    expect('{');
    Json::Object o;
    if (peek() == '}') {
      ++pos_;
      return Json(std::move(o));
    }
    while (true) {
      if (peek() != '"') fail("expected a key string");
      std::string key = string();
      expect(':');
      o[key] = value();
      char c = peek();
      ++pos_;
      if (c == '}') break;
      if (c != ',') fail("expected ',' or '}'");
    }
    return Json(std::move(o));
  }

  Json array() {
    expect('[');
    Json::Array a;
    if (peek() == ']') {
      ++pos_;
      return Json(std::move(a));
    }
    while (true) {
      a.push_back(value());
      char c = peek();
      ++pos_;
      if (c == ']') break;
      if (c != ',') fail("expected ',' or ']'");
    }
    return Json(std::move(a));
  }

  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') break;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          if (pos_ + 4 > s_.size()) fail("short \\u escape");
          unsigned cp = unsigned(std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16));
          pos_ += 4;
          if (cp < 0x80) {
            out.push_back(char(cp));
          } else if (cp < 0x800) {
            out.push_back(char(0xC0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3F)));
          } else {
            out.push_back(char(0xE0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: fail("bad escape");
      }
    }
    return out;
  }

  double number() {
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    double d = std::strtod(begin, &end);
    if (end == begin) fail("expected a value");
    pos_ += size_t(end - begin);
    return d;
  }

  const std::string& s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

void dumpString(const std::string& s, std::string& out) {
  out.push_back('"');
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out.push_back(char(c));
  }
  out.push_back('"');
}

void dumpValue(const Json& v, std::string& out) {
  switch (v.type()) {
    case Json::Type::Null: out += "null"; break;
    case Json::Type::Bool: out += (v.dump() == "true" ? "true" : "false"); break;
    case Json::Type::Number: {
      double d = v.number();
      char buf[32];
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) std::snprintf(buf, sizeof buf, "%.0f", d);
      else if (std::isfinite(d)) std::snprintf(buf, sizeof buf, "%.6g", d);
      else std::snprintf(buf, sizeof buf, "null");
      out += buf;
      break;
    }
    case Json::Type::String: dumpString(v.string(), out); break;
    case Json::Type::Array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.array()) {
        if (!first) out.push_back(',');
        first = false;
        dumpValue(e, out);
      }
      out.push_back(']');
      break;
    }
    case Json::Type::Object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.object()) {
        if (!first) out.push_back(',');
        first = false;
        dumpString(k, out);
        out.push_back(':');
        dumpValue(e, out);
      }
      out.push_back('}');
      break;
    }
  }
}

[[noreturn]] void wrongType(const char* want) {
  throw Error(ErrorCode::BadInput, std::string("JSON: expected ") + want);
}

}  // namespace

Json Json::parse(const std::string& text) { return Parser(text).document(); }

std::string Json::dump() const {
  if (type_ == Type::Bool) return bool_ ? "true" : "false";
  std::string out;
  dumpValue(*this, out);
  return out;
}

double Json::number() const {
  if (type_ != Type::Number) wrongType("a number");
  return number_;
}
const std::string& Json::string() const {
  if (type_ != Type::String) wrongType("a string");
  return string_;
}
const Json::Array& Json::array() const {
  if (type_ != Type::Array) wrongType("an array");
  return *array_;
}
const Json::Object& Json::object() const {
  if (type_ != Type::Object) wrongType("an object");
  return *object_;
}
bool Json::contains(const std::string& key) const {
  return type_ == Type::Object && object_->count(key) > 0;
}
const Json& Json::at(const std::string& key) const {
  const auto& o = object();
  auto it = o.find(key);
  if (it == o.end()) throw Error(ErrorCode::BadInput, "JSON: missing key '" + key + "'");
  return it->second;
}

}  // namespace segnode
