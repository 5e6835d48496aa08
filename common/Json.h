#pragma once
// A deliberately small JSON value: enough to read and write safetensors headers and to print
// machine-readable CLI output. Not a general-purpose library (no \u surrogate pairs on output).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace segnode {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;

  Json() = default;
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(double d) : type_(Type::Number), number_(d) {}
  Json(int v) : Json(double(v)) {}
  Json(int64_t v) : Json(double(v)) {}
  Json(uint64_t v) : Json(double(v)) {}
  Json(const char* s) : type_(Type::String), string_(s) {}
  Json(std::string s) : type_(Type::String), string_(std::move(s)) {}
  Json(Array a) : type_(Type::Array), array_(std::make_shared<Array>(std::move(a))) {}
  Json(Object o) : type_(Type::Object), object_(std::make_shared<Object>(std::move(o))) {}

  // Throws segnode::Error(BadInput) with the byte offset of the first problem.
  static Json parse(const std::string& text);
  std::string dump() const;  // compact, keys sorted

  Type type() const { return type_; }
  bool isObject() const { return type_ == Type::Object; }
  bool isArray() const { return type_ == Type::Array; }
  bool isString() const { return type_ == Type::String; }
  bool isNumber() const { return type_ == Type::Number; }
  double number() const;
  const std::string& string() const;
  const Array& array() const;
  const Object& object() const;
  bool contains(const std::string& key) const;
  const Json& at(const std::string& key) const;

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::shared_ptr<Array> array_;
  std::shared_ptr<Object> object_;
};

}  // namespace segnode
