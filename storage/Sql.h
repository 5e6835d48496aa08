#pragma once
// Binding optional values: an empty string or an absent number is stored as SQL NULL.
#include <SQLiteCpp/SQLiteCpp.h>

#include <optional>
#include <string>

namespace segnode::storage {

template <typename Key>
void bindText(SQLite::Statement& s, Key key, const std::string& v) {
  if (v.empty()) s.bind(key);
  else s.bind(key, v);
}

template <typename Key, typename T>
void bindOptional(SQLite::Statement& s, Key key, const std::optional<T>& v) {
  if (v) s.bind(key, *v);
  else s.bind(key);
}

}  // namespace segnode::storage
