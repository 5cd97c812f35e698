/* unit.db_sha256 — SHA-256 against the FIPS 180-4 / NIST example vectors, and the streaming
 * form against the one-shot form at every split point across block boundaries. */
#include "autotune/sha256.h"
#include "tests/unit/check.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
  char hex[65];
  at_sha256_hex("abc", 3, hex);
  CHECK_EQ_STR("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex);
  at_sha256_hex("", 0, hex);
  CHECK_EQ_STR("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hex);
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK_EQ_INT(56, strlen(m448));
  at_sha256_hex(m448, strlen(m448), hex);
  CHECK_EQ_STR("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", hex);
  const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                     "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  at_sha256_hex(m896, strlen(m896), hex);
  CHECK_EQ_STR("cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1", hex);

  /* A million 'a', fed in uneven pieces. */
  char *a = malloc(1000000);
  REQUIRE(a != NULL);
  memset(a, 'a', 1000000);
  at_sha256_hex(a, 1000000, hex);
  CHECK_EQ_STR("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", hex);
  at_sha256_ctx c;
  at_sha256_init(&c);
  for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 1000 + 1)
    at_sha256_update(&c, a + off, off + step > 1000000 ? 1000000 - off : step);
  unsigned char d[32];
  at_sha256_final(&c, d);
  at_hex32(d, hex);
  CHECK_EQ_STR("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", hex);
  free(a);

  /* Every split of a 130-byte message gives the one-shot digest. */
  unsigned char msg[130], want[32], got[32];
  for (int i = 0; i < 130; i++)
    msg[i] = (unsigned char)(i * 7 + 1);
  at_sha256(msg, sizeof msg, want);
  int bad = 0;
  for (size_t split = 0; split <= sizeof msg; split++) {
    at_sha256_init(&c);
    at_sha256_update(&c, msg, split);
    at_sha256_update(&c, msg + split, sizeof msg - split);
    at_sha256_final(&c, got);
    bad += memcmp(want, got, 32) != 0;
  }
  CHECK_EQ_INT(0, bad);
  return TEST_MAIN_END();
}
