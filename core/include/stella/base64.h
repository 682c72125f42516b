/* base64.h: RFC 4648 base64, written for untrusted input.
 *
 * Encoding always produces padded standard base64 (what DSSE verifiers in Go require).
 * Decoding accepts the standard or the URL-safe alphabet, padded or not, and is strict
 * otherwise: no whitespace or other characters, one alphabet per string, padding only at
 * the end and only as much as the length needs, no impossible length (4n+1), and the
 * unused low bits of the last character must be zero, so each byte string has exactly one
 * accepted spelling per alphabet/padding choice. (OpenSSL's EVP_DecodeBlock skips
 * whitespace and pads output with zeros, which is why this module exists.)
 *
 * Ownership: output is appended to the caller's st_buf_t, whose cap bounds the size.
 * Thread rules: pure functions, safe from any thread. Errors: ST_EPARSE with the offset
 * of the first bad character in err, ST_ETOOBIG past the buffer cap, ST_ENOMEM.
 */
#ifndef STELLA_BASE64_H
#define STELLA_BASE64_H

#include <stddef.h>

#include "stella/buf.h"
#include "stella/err.h"

/* Length of the padded encoding of n bytes (excluding a terminator); 0 on overflow. */
size_t st_base64_encoded_len(size_t n);

/* Append the padded standard base64 of data[0..len) to out. */
int st_base64_encode(st_buf_t *out, const void *data, size_t len) ST_MUST_CHECK;

/* Append the bytes that s[0..len) encodes to out; see the top comment for the rules. */
int st_base64_decode(st_buf_t *out, const char *s, size_t len, st_error_t *err) ST_MUST_CHECK;

#endif
