#include "common/Uid.h"

#include <random>

namespace segnode {

namespace {
unsigned __int128 random128() {
  static thread_local std::random_device device;  // the kernel's CSPRNG on Linux
  unsigned __int128 v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 32) | device();
  return v;
}

std::string decimal(unsigned __int128 v) {
  std::string digits;
  do {
    digits.insert(digits.begin(), char('0' + int(v % 10)));
    v /= 10;
  } while (v != 0);
  return digits;
}
}  // namespace

std::string newDicomUid(const std::string& root) {
  if (!root.empty()) {
    // A component may not start with 0 (PS3.5 9.1); random digits up to the 64-character limit.
    std::string digits = decimal(random128()) + decimal(random128());
    digits.erase(0, digits.find_first_not_of('0'));
    return root + "." + digits.substr(0, 64 - root.size() - 1);
  }
  unsigned __int128 v = random128();
  // RFC 4122 version 4 (random) and variant 10xx bits.
  v &= ~((unsigned __int128)0xF << 76);
  v |= (unsigned __int128)0x4 << 76;
  v &= ~((unsigned __int128)0x3 << 62);
  v |= (unsigned __int128)0x2 << 62;
  return "2.25." + decimal(v);
}

}  // namespace segnode
