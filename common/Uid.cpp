#include "common/Uid.h"

#include <random>

namespace segnode {

std::string newDicomUid() {
  static thread_local std::random_device device;  // the kernel's CSPRNG on Linux
  unsigned __int128 v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 32) | device();
  // RFC 4122 version 4 (random) and variant 10xx bits.
  v &= ~((unsigned __int128)0xF << 76);
  v |= (unsigned __int128)0x4 << 76;
  v &= ~((unsigned __int128)0x3 << 62);
  v |= (unsigned __int128)0x2 << 62;
  std::string digits;
  do {
    digits.insert(digits.begin(), char('0' + int(v % 10)));
    v /= 10;
  } while (v != 0);
  return "2.25." + digits;
}

}  // namespace segnode
