/* merkle.h: RFC 6962 / RFC 9162 Merkle trees over SHA-256.
 *
 * Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right); the
 * root of the empty tree is SHA-256(""). A tree of n leaves splits at the largest power
 * of two below n, so appending never rewrites earlier subtrees.
 *
 * st_merkle_t computes the root while leaves are appended, keeping only the roots of
 * the complete subtrees seen so far (at most 64 digests, O(log n)); the root can be read
 * at any point and appending may continue afterwards. Proof generation needs every leaf
 * hash (the caller keeps them: a manifest has them anyway); verification needs only the
 * proof, as RFC 9162 §2.1.3.2 and §2.1.4.2 describe.
 *
 * Ownership: st_merkle_init/st_merkle_release for the caller-allocated tree; a generated
 * proof owns its hash array, freed by st_merkle_proof_release.
 * Thread rules: a tree or proof belongs to one thread at a time; the other functions are
 * safe from any thread.
 * Errors: ST_ENOMEM, ST_ECRYPTO; ST_EINVAL for an index or size out of range (message
 * says which); verification returns ST_EVERIFY with the reason.
 */
#ifndef STELLA_MERKLE_H
#define STELLA_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"
#include "stella/sha256.h"

#define ST_MERKLE_MAX_LEVELS 64
/* No valid inclusion or consistency proof for a 64-bit tree size is longer. */
#define ST_MERKLE_MAX_PROOF (ST_MERKLE_MAX_LEVELS + 1)

typedef struct st_merkle_s {
  st_sha256_t h;
  uint64_t count; /* leaves appended */
  size_t depth;   /* complete-subtree roots on the stack, one per set bit of count */
  uint8_t stack[ST_MERKLE_MAX_LEVELS][ST_SHA256_LEN];
} st_merkle_t;

/* Digests travel as flat arrays: hash i of a list is bytes [32*i, 32*i + 32). */
typedef struct st_merkle_proof_s {
  uint8_t *hash; /* owned, len digests, leaf side first */
  size_t len;
} st_merkle_proof_t;

int st_merkle_init(st_merkle_t *m) ST_MUST_CHECK;
void st_merkle_release(st_merkle_t *m);
/* Append a leaf by its data (hashed as a leaf here). */
int st_merkle_add(st_merkle_t *m, const void *data, size_t len) ST_MUST_CHECK;
/* Append a leaf by its leaf hash (already SHA-256(0x00 || data)). */
int st_merkle_add_hash(st_merkle_t *m, const uint8_t leaf_hash[ST_SHA256_LEN]) ST_MUST_CHECK;
/* Root of the leaves appended so far; the tree stays appendable. */
int st_merkle_root(st_merkle_t *m, uint8_t root[ST_SHA256_LEN]) ST_MUST_CHECK;

/* SHA-256(0x00 || data). */
int st_merkle_leaf_hash(const void *data, size_t len, uint8_t out[ST_SHA256_LEN]) ST_MUST_CHECK;

/* Audit path for leaf `index` (0-based) of the tree over the n leaf hashes in `leaves`
 * (32 * n bytes). ST_EINVAL if
 * index >= n. On success *proof is set up (release it); on failure it is empty. */
int st_merkle_inclusion_proof(const uint8_t *leaves, uint64_t n,
                              uint64_t index, st_merkle_proof_t *proof,
                              st_error_t *err) ST_MUST_CHECK;
/* Consistency proof between the tree of the first m leaves and the tree of all n
 * leaves (0 <= m <= n; empty when m == 0 or m == n). ST_EINVAL if m > n. */
int st_merkle_consistency_proof(const uint8_t *leaves, uint64_t n,
                                uint64_t m, st_merkle_proof_t *proof,
                                st_error_t *err) ST_MUST_CHECK;
void st_merkle_proof_release(st_merkle_proof_t *proof);

/* `proof` holds proof_len digests (32 * proof_len bytes).
 * 0 if `proof` proves that leaf_hash is leaf `index` of the tree of `tree_size` leaves
 * whose root is `root`; ST_EVERIFY otherwise. */
int st_merkle_verify_inclusion(const uint8_t leaf_hash[ST_SHA256_LEN], uint64_t index,
                               uint64_t tree_size, const uint8_t *proof,
                               size_t proof_len, const uint8_t root[ST_SHA256_LEN],
                               st_error_t *err) ST_MUST_CHECK;
/* 0 if `proof` proves that the tree (size1, root1) is a prefix of (size2, root2);
 * ST_EVERIFY otherwise. size1 == size2 needs an empty proof and equal roots; size1 == 0
 * needs an empty proof and root1 == SHA-256(""). */
int st_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                 const uint8_t root1[ST_SHA256_LEN],
                                 const uint8_t root2[ST_SHA256_LEN],
                                 const uint8_t *proof, size_t proof_len,
                                 st_error_t *err) ST_MUST_CHECK;

#endif
