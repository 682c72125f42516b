/* merkle.c: RFC 6962 Merkle tree hash, audit and consistency proofs (see merkle.h).
 *
 * The appendable tree keeps one digest per set bit of the leaf count: appending a leaf
 * merges equal-sized subtrees like a binary counter carries. The root folds that stack
 * from the right, which is exactly RFC 6962's split at the largest power of two below n.
 *
 * Proof generation walks the RFC's recursive PATH / SUBPROOF definitions top-down as a
 * loop (each step appends one subtree hash, the total hashing is O(n)) and reverses the
 * result, since the RFC lists the nodes from the leaf side up. Verification follows
 * RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
 */
#include "stella/merkle.h"

#include <string.h>

#include "stella/mem.h"

/* Digest i of a flat digest list. */
#define AT(base, i) ((base) + (size_t)(i) * ST_SHA256_LEN)

static int node_hash(st_sha256_t *h, const uint8_t l[ST_SHA256_LEN],
                     const uint8_t r[ST_SHA256_LEN], uint8_t out[ST_SHA256_LEN]) {
  static const uint8_t prefix = 0x01;
  int rc;
  if ((rc = st_sha256_update(h, &prefix, 1)) || (rc = st_sha256_update(h, l, ST_SHA256_LEN)) ||
      (rc = st_sha256_update(h, r, ST_SHA256_LEN)))
    return rc;
  return st_sha256_final(h, out);
}

static int leaf_hash(st_sha256_t *h, const void *data, size_t len, uint8_t out[ST_SHA256_LEN]) {
  static const uint8_t prefix = 0x00;
  int rc;
  if ((rc = st_sha256_update(h, &prefix, 1)) || (rc = st_sha256_update(h, data, len)))
    return rc;
  return st_sha256_final(h, out);
}

int st_merkle_init(st_merkle_t *m) {
  m->count = 0;
  m->depth = 0;
  return st_sha256_init(&m->h);
}

void st_merkle_release(st_merkle_t *m) {
  st_sha256_release(&m->h);
  m->count = 0;
  m->depth = 0;
}

int st_merkle_add_hash(st_merkle_t *m, const uint8_t lh[ST_SHA256_LEN]) {
  uint8_t acc[ST_SHA256_LEN];
  uint64_t c = m->count;
  int rc;

  if (c == UINT64_MAX)
    return ST_ETOOBIG;
  memcpy(acc, lh, ST_SHA256_LEN);
  while (c & 1) {
    if ((rc = node_hash(&m->h, m->stack[--m->depth], acc, acc)))
      return rc; /* the tree is unusable after a hashing failure: release it */
    c >>= 1;
  }
  memcpy(m->stack[m->depth++], acc, ST_SHA256_LEN);
  m->count++;
  return 0;
}

int st_merkle_add(st_merkle_t *m, const void *data, size_t len) {
  uint8_t lh[ST_SHA256_LEN];
  int rc = leaf_hash(&m->h, data, len, lh);
  return rc ? rc : st_merkle_add_hash(m, lh);
}

int st_merkle_root(st_merkle_t *m, uint8_t root[ST_SHA256_LEN]) {
  uint8_t acc[ST_SHA256_LEN];
  int rc;

  if (m->depth == 0)
    return st_sha256(NULL, 0, root);
  memcpy(acc, m->stack[m->depth - 1], ST_SHA256_LEN);
  for (size_t i = m->depth - 1; i-- > 0;)
    if ((rc = node_hash(&m->h, m->stack[i], acc, acc)))
      return rc;
  memcpy(root, acc, ST_SHA256_LEN);
  return 0;
}

int st_merkle_leaf_hash(const void *data, size_t len, uint8_t out[ST_SHA256_LEN]) {
  st_sha256_t h;
  int rc = st_sha256_init(&h);
  if (rc)
    return rc;
  rc = leaf_hash(&h, data, len, out);
  st_sha256_release(&h);
  return rc;
}

/* Root of the subtree over leaves[0..n), reusing t's context and stack. */
static int range_root(st_merkle_t *t, const uint8_t *leaves, uint64_t n,
                      uint8_t out[ST_SHA256_LEN]) {
  int rc;
  t->count = 0;
  t->depth = 0;
  for (uint64_t i = 0; i < n; i++)
    if ((rc = st_merkle_add_hash(t, AT(leaves, i))))
      return rc;
  return st_merkle_root(t, out);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n) {
  uint64_t k = 1;
  while (k < n - k)
    k <<= 1;
  return k;
}

static void proof_reverse(st_merkle_proof_t *p) {
  uint8_t tmp[ST_SHA256_LEN];
  for (size_t i = 0, j = p->len; i + 1 < j; i++, j--) {
    memcpy(tmp, AT(p->hash, i), ST_SHA256_LEN);
    memcpy(AT(p->hash, i), AT(p->hash, j - 1), ST_SHA256_LEN);
    memcpy(AT(p->hash, j - 1), tmp, ST_SHA256_LEN);
  }
}

static int proof_start(st_merkle_proof_t *p, st_merkle_t *t) {
  int rc;
  p->len = 0;
  p->hash = st_calloc(ST_MERKLE_MAX_PROOF, ST_SHA256_LEN);
  if (!p->hash)
    return ST_ENOMEM;
  if ((rc = st_merkle_init(t))) {
    st_free(p->hash);
    p->hash = NULL;
  }
  return rc;
}

/* Both proofs follow RFC 6962 §2.1.1/§2.1.2 top-down: PATH(m, D[n]) when consistency is
 * 0, PROOF(m, D[n]) = SUBPROOF(m, D[n], true) when it is 1. `whole` is SUBPROOF's flag b:
 * the old tree's root is one the verifier already has, so it is left out. */
static int build_proof(const uint8_t *leaves, uint64_t n, uint64_t m, int consistency,
                       st_merkle_proof_t *proof) {
  st_merkle_t t;
  uint64_t lo = 0;
  int whole = 1, rc;

  if ((rc = proof_start(proof, &t)))
    return rc;
  while (consistency ? m > 0 && m < n : n > 1) {
    uint64_t k = split_point(n);
    if (m < k || (consistency && m == k)) {
      rc = range_root(&t, AT(leaves, lo + k), n - k, AT(proof->hash, proof->len));
      n = k;
    } else {
      rc = range_root(&t, AT(leaves, lo), k, AT(proof->hash, proof->len));
      lo += k, m -= k, n -= k;
      whole = 0;
    }
    if (rc)
      goto done;
    proof->len++;
  }
  if (consistency && m > 0 && !whole) {
    if ((rc = range_root(&t, AT(leaves, lo), m, AT(proof->hash, proof->len))))
      goto done;
    proof->len++;
  }
  proof_reverse(proof);
done:
  st_merkle_release(&t);
  if (rc)
    st_merkle_proof_release(proof);
  return rc;
}

int st_merkle_inclusion_proof(const uint8_t *leaves, uint64_t n, uint64_t index,
                              st_merkle_proof_t *proof, st_error_t *err) {
  int rc;
  proof->hash = NULL;
  proof->len = 0;
  if (index >= n)
    return st_fail(err, ST_EINVAL, "merkle: leaf index %llu out of range for %llu leaves",
                   (unsigned long long)index, (unsigned long long)n);
  if ((rc = build_proof(leaves, n, index, 0, proof)))
    return st_fail(err, rc, "merkle: inclusion proof: %s", st_strerror(rc));
  return 0;
}

int st_merkle_consistency_proof(const uint8_t *leaves, uint64_t n, uint64_t m,
                                st_merkle_proof_t *proof, st_error_t *err) {
  int rc;
  proof->hash = NULL;
  proof->len = 0;
  if (m > n)
    return st_fail(err, ST_EINVAL, "merkle: old size %llu exceeds new size %llu",
                   (unsigned long long)m, (unsigned long long)n);
  if ((rc = build_proof(leaves, n, m, 1, proof)))
    return st_fail(err, rc, "merkle: consistency proof: %s", st_strerror(rc));
  return 0;
}

void st_merkle_proof_release(st_merkle_proof_t *proof) {
  st_free(proof->hash);
  proof->hash = NULL;
  proof->len = 0;
}

int st_merkle_verify_inclusion(const uint8_t lh[ST_SHA256_LEN], uint64_t index,
                               uint64_t tree_size, const uint8_t *proof,
                               size_t proof_len, const uint8_t root[ST_SHA256_LEN],
                               st_error_t *err) {
  st_sha256_t h;
  uint8_t r[ST_SHA256_LEN];
  uint64_t fn = index, sn;
  int rc;

  if (index >= tree_size)
    return st_fail(err, ST_EVERIFY, "merkle: leaf index %llu not in a tree of %llu leaves",
                   (unsigned long long)index, (unsigned long long)tree_size);
  if (proof_len > ST_MERKLE_MAX_LEVELS)
    return st_fail(err, ST_EVERIFY, "merkle: inclusion proof of %zu hashes is too long",
                   proof_len);
  if ((rc = st_sha256_init(&h)))
    return st_fail(err, rc, "merkle: %s", st_strerror(rc));
  sn = tree_size - 1;
  memcpy(r, lh, ST_SHA256_LEN);
  for (size_t i = 0; i < proof_len; i++) {
    if (sn == 0) {
      rc = st_fail(err, ST_EVERIFY, "merkle: inclusion proof longer than the tree is deep");
      goto done;
    }
    if ((fn & 1) || fn == sn) {
      rc = node_hash(&h, AT(proof, i), r, r);
      while (!(fn & 1) && fn != 0)
        fn >>= 1, sn >>= 1;
    } else {
      rc = node_hash(&h, r, AT(proof, i), r);
    }
    if (rc) {
      st_fail(err, rc, "merkle: %s", st_strerror(rc));
      goto done;
    }
    fn >>= 1, sn >>= 1;
  }
  if (sn != 0)
    rc = st_fail(err, ST_EVERIFY, "merkle: inclusion proof too short for leaf %llu of %llu",
                 (unsigned long long)index, (unsigned long long)tree_size);
  else if (!st_sha256_equal(r, root))
    rc = st_fail(err, ST_EVERIFY, "merkle: inclusion proof does not lead to the root");
done:
  st_sha256_release(&h);
  return rc;
}

int st_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                 const uint8_t root1[ST_SHA256_LEN],
                                 const uint8_t root2[ST_SHA256_LEN],
                                 const uint8_t *proof, size_t proof_len,
                                 st_error_t *err) {
  st_sha256_t h;
  uint8_t fr[ST_SHA256_LEN], sr[ST_SHA256_LEN], empty[ST_SHA256_LEN];
  uint64_t fn, sn;
  size_t i = 0;
  int rc;

  if (size1 > size2)
    return st_fail(err, ST_EVERIFY, "merkle: old size %llu exceeds new size %llu",
                   (unsigned long long)size1, (unsigned long long)size2);
  if (size1 == 0 || size1 == size2) {
    if (proof_len)
      return st_fail(err, ST_EVERIFY, "merkle: consistency proof must be empty");
    if (size1 == size2)
      return st_sha256_equal(root1, root2)
                 ? 0
                 : st_fail(err, ST_EVERIFY, "merkle: trees of equal size have different roots");
    if ((rc = st_sha256(NULL, 0, empty)))
      return st_fail(err, rc, "merkle: %s", st_strerror(rc));
    return st_sha256_equal(root1, empty)
               ? 0
               : st_fail(err, ST_EVERIFY, "merkle: empty tree has a non-empty root");
  }
  if (proof_len == 0 || proof_len > ST_MERKLE_MAX_PROOF)
    return st_fail(err, ST_EVERIFY, "merkle: consistency proof of %zu hashes", proof_len);
  if ((rc = st_sha256_init(&h)))
    return st_fail(err, rc, "merkle: %s", st_strerror(rc));
  /* Step 2: a complete old tree is its own first node, which the proof leaves out. */
  if ((size1 & (size1 - 1)) == 0) {
    memcpy(fr, root1, ST_SHA256_LEN);
  } else {
    memcpy(fr, proof, ST_SHA256_LEN);
    i = 1;
  }
  memcpy(sr, fr, ST_SHA256_LEN);
  fn = size1 - 1;
  sn = size2 - 1;
  while (fn & 1)
    fn >>= 1, sn >>= 1;
  for (; i < proof_len; i++) {
    const uint8_t *c = AT(proof, i);
    if (sn == 0) {
      rc = st_fail(err, ST_EVERIFY, "merkle: consistency proof too long");
      goto done;
    }
    if ((fn & 1) || fn == sn) {
      if (!(rc = node_hash(&h, c, fr, fr)))
        rc = node_hash(&h, c, sr, sr);
      while (!(fn & 1) && fn != 0)
        fn >>= 1, sn >>= 1;
    } else {
      rc = node_hash(&h, sr, c, sr);
    }
    if (rc) {
      st_fail(err, rc, "merkle: %s", st_strerror(rc));
      goto done;
    }
    fn >>= 1, sn >>= 1;
  }
  if (sn != 0)
    rc = st_fail(err, ST_EVERIFY, "merkle: consistency proof too short");
  else if (!st_sha256_equal(fr, root1))
    rc = st_fail(err, ST_EVERIFY, "merkle: consistency proof does not lead to the old root");
  else if (!st_sha256_equal(sr, root2))
    rc = st_fail(err, ST_EVERIFY, "merkle: consistency proof does not lead to the new root");
done:
  st_sha256_release(&h);
  return rc;
}
