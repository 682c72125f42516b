/* test_merkle.c: RFC 6962 trees against the Certificate Transparency reference vectors
 * (google/certificate-transparency cpp/merkletree/merkle_tree_test.cc: eight leaves,
 * roots of sizes 1..8, audit paths and consistency proofs), a recursive reference
 * implementation for sizes up to 70, and tampered or out-of-range proofs. */
#include "st_test.h"

#include "stella/merkle.h"
#include "stella/mem.h"

typedef uint8_t digest_t[ST_SHA256_LEN];

static const char *INPUTS[8] = {"", "00", "10", "2021", "3031", "40414243",
                                "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
static const char *EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *ROOTS[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

/* CT numbers leaves from 1; index = leaf - 1. */
static const struct {
  int leaf, size, len;
  const char *path[3];
} PATHS[] = {
    {1, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {3, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {2, 5, 3, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {1, 1, 0, {NULL}},
};

static const struct {
  int m, n, len;
  const char *proof[3];
} PROOFS[] = {
    {1, 1, 0, {NULL}},
    {1, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5, 2, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static digest_t leaves[8];
static digest_t roots[8];

static void unhex(const char *hex, uint8_t *out, size_t *len) {
  size_t n = strlen(hex) / 2;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  *len = n;
}

static void digest_of(const char *hex, digest_t out) {
  assert_int_equal(st_sha256_from_hex(hex, strlen(hex), out), 0);
}

static int setup(void **state) {
  for (int i = 0; i < 8; i++) {
    uint8_t data[16];
    size_t n;
    unhex(INPUTS[i], data, &n);
    if (st_merkle_leaf_hash(data, n, leaves[i]))
      return -1;
    if (st_sha256_from_hex(ROOTS[i], 64, roots[i]))
      return -1;
  }
  return 0;
}

static void roots_streaming(void **state) {
  st_merkle_t m;
  digest_t r, empty;
  assert_int_equal(st_merkle_init(&m), 0);
  assert_int_equal(st_merkle_root(&m, r), 0);
  digest_of(EMPTY_ROOT, empty);
  assert_memory_equal(r, empty, ST_SHA256_LEN);
  for (int i = 0; i < 8; i++) {
    uint8_t data[16];
    size_t n;
    unhex(INPUTS[i], data, &n);
    if (i % 2)
      assert_int_equal(st_merkle_add(&m, data, n), 0);
    else
      assert_int_equal(st_merkle_add_hash(&m, leaves[i]), 0);
    assert_int_equal(m.count, (uint64_t)i + 1);
    assert_int_equal(st_merkle_root(&m, r), 0);
    assert_memory_equal(r, roots[i], ST_SHA256_LEN);
  }
  /* HashLeaf("") is the root of the one-leaf tree. */
  assert_memory_equal(leaves[0], roots[0], ST_SHA256_LEN);
  st_merkle_release(&m);
}

static void tamper_inclusion(digest_t lh, uint64_t index, uint64_t size, uint8_t *proof,
                             size_t len, const digest_t root) {
  st_error_t err = ST_ERROR_INIT;
  digest_t longer[ST_MERKLE_MAX_PROOF + 1];

  assert_int_equal(st_merkle_verify_inclusion(lh, index, size, proof, len, root, &err), 0);
  for (size_t j = 0; j < len; j++) {
    proof[j * ST_SHA256_LEN + 7] ^= 0x10;
    assert_int_equal(st_merkle_verify_inclusion(lh, index, size, proof, len, root, &err),
                     ST_EVERIFY);
    proof[j * ST_SHA256_LEN + 7] ^= 0x10;
  }
  if (len) {
    assert_int_equal(st_merkle_verify_inclusion(lh, index, size, proof, len - 1, root, &err),
                     ST_EVERIFY);
    assert_int_equal(st_merkle_verify_inclusion(lh, index ^ 1, size, proof, len, root, &err),
                     ST_EVERIFY);
  }
  memcpy(longer, proof, len * sizeof(digest_t));
  memcpy(longer[len], root, sizeof(digest_t));
  assert_int_equal(st_merkle_verify_inclusion(lh, index, size, longer[0], len + 1, root, &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_inclusion(lh, index, size * 2, proof, len, root, &err),
                   ST_EVERIFY);
  if (size > 1)
    assert_int_equal(st_merkle_verify_inclusion(lh, index, size / 2, proof, len, root, &err),
                     ST_EVERIFY);
  lh[0] ^= 1;
  assert_int_equal(st_merkle_verify_inclusion(lh, index, size, proof, len, root, &err),
                   ST_EVERIFY);
  lh[0] ^= 1;
}

static void inclusion_vectors(void **state) {
  for (size_t t = 0; t < sizeof(PATHS) / sizeof(PATHS[0]); t++) {
    st_merkle_proof_t p;
    st_error_t err = ST_ERROR_INIT;
    uint64_t index = (uint64_t)PATHS[t].leaf - 1, size = (uint64_t)PATHS[t].size;
    assert_int_equal(st_merkle_inclusion_proof(leaves[0], size, index, &p, &err), 0);
    assert_int_equal(p.len, PATHS[t].len);
    for (int j = 0; j < PATHS[t].len; j++) {
      digest_t want;
      digest_of(PATHS[t].path[j], want);
      assert_memory_equal(p.hash + j * ST_SHA256_LEN, want, ST_SHA256_LEN);
    }
    tamper_inclusion(leaves[index], index, size, p.hash, p.len, roots[size - 1]);
    st_merkle_proof_release(&p);
  }
}

static void inclusion_out_of_range(void **state) {
  st_merkle_proof_t p;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_merkle_inclusion_proof(leaves[0], 8, 8, &p, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "8 out of range"));
  assert_null(p.hash);
  assert_int_equal(st_merkle_inclusion_proof(leaves[0], 0, 0, &p, &err), ST_EINVAL);
  assert_int_equal(st_merkle_verify_inclusion(leaves[0], 8, 8, NULL, 0, roots[7], &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_inclusion(leaves[0], 0, 0, NULL, 0, roots[0], &err),
                   ST_EVERIFY);
}

static void tamper_consistency(uint64_t m, uint64_t n, uint8_t *proof, size_t len) {
  st_error_t err = ST_ERROR_INIT;
  const uint8_t *r1 = roots[m - 1], *r2 = roots[n - 1];
  digest_t longer[ST_MERKLE_MAX_PROOF + 1];

  assert_int_equal(st_merkle_verify_consistency(m, n, r1, r2, proof, len, &err), 0);
  if (!len)
    return;
  for (size_t j = 0; j < len; j++) {
    proof[j * ST_SHA256_LEN + 3] ^= 0x04;
    assert_int_equal(st_merkle_verify_consistency(m, n, r1, r2, proof, len, &err), ST_EVERIFY);
    proof[j * ST_SHA256_LEN + 3] ^= 0x04;
  }
  assert_int_equal(st_merkle_verify_consistency(m, n, r1, r2, proof, len - 1, &err), ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(m, n, r1, r2, proof, 0, &err), ST_EVERIFY);
  memcpy(longer, proof, len * sizeof(digest_t));
  memcpy(longer[len], proof + (len - 1) * ST_SHA256_LEN, sizeof(digest_t));
  assert_int_equal(st_merkle_verify_consistency(m, n, r1, r2, longer[0], len + 1, &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(m, n, r2, r1, proof, len, &err), ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(m - 1 ? m - 1 : 2, n, r1, r2, proof, len, &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(m, n * 2, r1, r2, proof, len, &err), ST_EVERIFY);
}

static void consistency_vectors(void **state) {
  for (size_t t = 0; t < sizeof(PROOFS) / sizeof(PROOFS[0]); t++) {
    st_merkle_proof_t p;
    st_error_t err = ST_ERROR_INIT;
    uint64_t m = (uint64_t)PROOFS[t].m, n = (uint64_t)PROOFS[t].n;
    assert_int_equal(st_merkle_consistency_proof(leaves[0], n, m, &p, &err), 0);
    assert_int_equal(p.len, PROOFS[t].len);
    for (int j = 0; j < PROOFS[t].len; j++) {
      digest_t want;
      digest_of(PROOFS[t].proof[j], want);
      assert_memory_equal(p.hash + j * ST_SHA256_LEN, want, ST_SHA256_LEN);
    }
    tamper_consistency(m, n, p.hash, p.len);
    st_merkle_proof_release(&p);
  }
}

static void consistency_edges(void **state) {
  st_merkle_proof_t p;
  st_error_t err = ST_ERROR_INIT;
  digest_t empty;
  digest_of(EMPTY_ROOT, empty);
  assert_int_equal(st_merkle_consistency_proof(leaves[0], 4, 5, &p, &err), ST_EINVAL);
  assert_int_equal(st_merkle_consistency_proof(leaves[0], 8, 0, &p, &err), 0);
  assert_int_equal(p.len, 0);
  st_merkle_proof_release(&p);
  assert_int_equal(st_merkle_verify_consistency(0, 8, empty, roots[7], NULL, 0, &err), 0);
  assert_int_equal(st_merkle_verify_consistency(0, 8, roots[0], roots[7], NULL, 0, &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(0, 8, empty, roots[7], empty, 1, &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(3, 3, roots[2], roots[2], NULL, 0, &err), 0);
  assert_int_equal(st_merkle_verify_consistency(3, 3, roots[2], roots[3], NULL, 0, &err),
                   ST_EVERIFY);
  assert_int_equal(st_merkle_verify_consistency(5, 4, roots[4], roots[3], NULL, 0, &err),
                   ST_EVERIFY);
}

/* RFC 6962 MTH written straight from the definition, for cross-checking. */
static void ref_mth(digest_t *d, uint64_t n, digest_t out) {
  uint64_t k = 1;
  digest_t l, r;
  uint8_t buf[1 + 2 * ST_SHA256_LEN];
  if (n == 0) {
    assert_int_equal(st_sha256(NULL, 0, out), 0);
    return;
  }
  if (n == 1) {
    memcpy(out, d[0], ST_SHA256_LEN);
    return;
  }
  while (k * 2 < n)
    k *= 2;
  ref_mth(d, k, l);
  ref_mth(d + k, n - k, r);
  buf[0] = 1;
  memcpy(buf + 1, l, ST_SHA256_LEN);
  memcpy(buf + 1 + ST_SHA256_LEN, r, ST_SHA256_LEN);
  assert_int_equal(st_sha256(buf, sizeof(buf), out), 0);
}

static void all_sizes_against_reference(void **state) {
  enum { N = 70 };
  digest_t d[N], rootsn[N + 1];
  st_merkle_t m;
  st_error_t err = ST_ERROR_INIT;

  assert_int_equal(st_merkle_init(&m), 0);
  assert_int_equal(st_merkle_root(&m, rootsn[0]), 0);
  for (int i = 0; i < N; i++) {
    uint8_t b = (uint8_t)i;
    digest_t want;
    assert_int_equal(st_merkle_leaf_hash(&b, 1, d[i]), 0);
    assert_int_equal(st_merkle_add(&m, &b, 1), 0);
    assert_int_equal(st_merkle_root(&m, rootsn[i + 1]), 0);
    ref_mth(d, (uint64_t)i + 1, want);
    assert_memory_equal(rootsn[i + 1], want, ST_SHA256_LEN);
  }
  st_merkle_release(&m);
  for (uint64_t n = 1; n <= N; n++) {
    for (uint64_t i = 0; i < n; i++) {
      st_merkle_proof_t p;
      assert_int_equal(st_merkle_inclusion_proof(d[0], n, i, &p, &err), 0);
      assert_int_equal(st_merkle_verify_inclusion(d[i], i, n, p.hash, p.len, rootsn[n], &err), 0);
      if (p.len)
        assert_int_equal(
            st_merkle_verify_inclusion(d[i], i, n, p.hash, p.len, rootsn[n - 1], &err),
            ST_EVERIFY);
      st_merkle_proof_release(&p);
    }
    for (uint64_t k = 0; k <= n; k++) {
      st_merkle_proof_t p;
      assert_int_equal(st_merkle_consistency_proof(d[0], n, k, &p, &err), 0);
      assert_int_equal(
          st_merkle_verify_consistency(k, n, rootsn[k], rootsn[n], p.hash, p.len, &err), 0);
      if (k > 0 && k < n)
        assert_int_equal(
            st_merkle_verify_consistency(k, n, rootsn[k - 1], rootsn[n], p.hash, p.len, &err),
            ST_EVERIFY);
      st_merkle_proof_release(&p);
    }
  }
}

static void proof_alloc_failure(void **state) {
  st_merkle_proof_t p;
  st_error_t err = ST_ERROR_INIT;
  st_mem_fail_after(0);
  assert_int_equal(st_merkle_inclusion_proof(leaves[0], 8, 3, &p, &err), ST_ENOMEM);
  assert_null(p.hash);
  st_mem_fail_after(0);
  assert_int_equal(st_merkle_consistency_proof(leaves[0], 8, 3, &p, &err), ST_ENOMEM);
  assert_null(p.hash);
  st_mem_fail_after(-1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(roots_streaming),
      cmocka_unit_test(inclusion_vectors),
      cmocka_unit_test(inclusion_out_of_range),
      cmocka_unit_test(consistency_vectors),
      cmocka_unit_test(consistency_edges),
      cmocka_unit_test(all_sizes_against_reference),
      cmocka_unit_test(proof_alloc_failure),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
