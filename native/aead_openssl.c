/*
 * meshwire's packet AEAD in the OpenSSL that Node itself carries (its EVP symbols are
 * exported for addons): ChaCha20-Poly1305 or AES-256-GCM, one reusable EVP_CIPHER_CTX per
 * direction, sealing and opening in place.
 *
 * Why: node:crypto builds a cipher object per packet (most of its cost), and libsodium's
 * ChaCha20 runs at about a third of OpenSSL's AVX2/AVX-512 code. Same RFC 8439 / GCM bytes
 * as the other backends, so nodes on any of them interoperate.
 *
 * The API (a bad argument throws; a packet that fails authentication is not an exception):
 *   createKey(algorithm, key, iv, encrypt) -> handle    key 32 bytes, iv 12 bytes
 *   seal(handle, packet, headerLength, plainLength, pn)
 *       encrypts packet[headerLength, +plainLength) in place, authenticates
 *       packet[0, headerLength), writes the 16-byte tag right after the ciphertext
 *   open(handle, packet, headerLength, end, pn) -> boolean
 *       authenticates and decrypts packet[headerLength, end) in place, tag at end; on
 *       failure the body is zeroed (it was decrypted before the tag was checked)
 * The nonce is the IV with pn XORed into its last 4 bytes (as packet-protection.ts does).
 */
#include <node_api.h>
#include "napi_util.h"
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define KEY_LENGTH 32
#define IV_LENGTH 12
#define TAG_LENGTH 16

typedef struct {
  EVP_CIPHER_CTX *ctx;
  uint8_t iv[IV_LENGTH];
  int encrypt;
} aead_key;

static void finalize_key(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_key *k = (aead_key *)data;
  EVP_CIPHER_CTX_free(k->ctx);
  OPENSSL_cleanse(k->iv, sizeof k->iv);
  free(k);
}

static napi_value js_create_key(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  char alg[32];
  size_t alg_len;
  uint8_t *key, *iv;
  size_t key_len, iv_len;
  bool encrypt;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_string_utf8(env, argv[0], alg, sizeof alg, &alg_len) != napi_ok ||
      get_buffer(env, argv[1], &key, &key_len) || get_buffer(env, argv[2], &iv, &iv_len) ||
      napi_get_value_bool(env, argv[3], &encrypt) != napi_ok || key_len != KEY_LENGTH ||
      iv_len != IV_LENGTH) {
    napi_throw_type_error(env, NULL, "createKey(algorithm, key[32], iv[12], encrypt)");
    return NULL;
  }
  const EVP_CIPHER *cipher = strcmp(alg, "chacha20-poly1305") == 0 ? EVP_chacha20_poly1305()
                             : strcmp(alg, "aes-256-gcm") == 0     ? EVP_aes_256_gcm()
                                                                   : NULL;
  if (!cipher) {
    napi_throw_type_error(env, NULL, "createKey: algorithm must be chacha20-poly1305 or aes-256-gcm");
    return NULL;
  }
  aead_key *k = calloc(1, sizeof *k);
  if (!k) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  k->ctx = EVP_CIPHER_CTX_new();
  k->encrypt = encrypt;
  memcpy(k->iv, iv, IV_LENGTH);
  if (!k->ctx || EVP_CipherInit_ex(k->ctx, cipher, NULL, NULL, NULL, encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_AEAD_SET_IVLEN, IV_LENGTH, NULL) != 1 ||
      EVP_CipherInit_ex(k->ctx, NULL, NULL, key, NULL, encrypt) != 1) {
    EVP_CIPHER_CTX_free(k->ctx);
    free(k);
    napi_throw_error(env, NULL, "createKey: OpenSSL refused the cipher");
    return NULL;
  }
  if (napi_create_object(env, &self) != napi_ok ||
      napi_wrap(env, self, k, finalize_key, NULL, NULL) != napi_ok) {
    EVP_CIPHER_CTX_free(k->ctx);
    free(k);
    napi_throw_error(env, NULL, "createKey: wrap failed");
    return NULL;
  }
  return self;
}

/* The common arguments of seal and open: (handle, packet, headerLength, n, pn). */
static aead_key *packet_args(napi_env env, napi_callback_info info, int encrypt, uint8_t **packet,
                             uint32_t *header_len, uint32_t *n, uint8_t nonce[IV_LENGTH]) {
  size_t argc = 5, len;
  napi_value argv[5];
  aead_key *k = NULL;
  uint32_t pn;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_unwrap(env, argv[0], (void **)&k) != napi_ok || k == NULL ||
      get_buffer(env, argv[1], packet, &len) ||
      napi_get_value_uint32(env, argv[2], header_len) != napi_ok ||
      napi_get_value_uint32(env, argv[3], n) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &pn) != napi_ok) {
    napi_throw_type_error(env, NULL, "(handle, packet, headerLength, length, pn) expected");
    return NULL;
  }
  if (k->encrypt != encrypt) {
    napi_throw_type_error(env, NULL, encrypt ? "seal with a receive key" : "open with a send key");
    return NULL;
  }
  /* seal: n is the plaintext length and the tag goes after it; open: n is where the tag is */
  size_t need = encrypt ? (size_t)*header_len + *n + TAG_LENGTH : (size_t)*n + TAG_LENGTH;
  if (need > len || *header_len > (encrypt ? len : *n)) {
    napi_throw_range_error(env, NULL, "packet too short for header, body and tag");
    return NULL;
  }
  memcpy(nonce, k->iv, IV_LENGTH);
  uint32_t last = ((uint32_t)nonce[8] << 24 | (uint32_t)nonce[9] << 16 |
                   (uint32_t)nonce[10] << 8 | nonce[11]) ^ pn;
  nonce[8] = last >> 24;
  nonce[9] = last >> 16;
  nonce[10] = last >> 8;
  nonce[11] = last;
  return k;
}

static napi_value js_seal(napi_env env, napi_callback_info info) {
  uint8_t *p, nonce[IV_LENGTH];
  uint32_t hl, plain;
  int outl, finl;
  aead_key *k = packet_args(env, info, 1, &p, &hl, &plain, nonce);
  if (!k) return NULL;
  if (EVP_EncryptInit_ex(k->ctx, NULL, NULL, NULL, nonce) != 1 ||
      EVP_EncryptUpdate(k->ctx, NULL, &outl, p, (int)hl) != 1 ||
      EVP_EncryptUpdate(k->ctx, p + hl, &outl, p + hl, (int)plain) != 1 ||
      EVP_EncryptFinal_ex(k->ctx, p + hl + outl, &finl) != 1 ||
      EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LENGTH, p + hl + plain) != 1) {
    napi_throw_error(env, NULL, "seal: OpenSSL failed");
  }
  return NULL;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  uint8_t *p, nonce[IV_LENGTH];
  uint32_t hl, end;
  int outl, finl;
  napi_value result;
  aead_key *k = packet_args(env, info, 0, &p, &hl, &end, nonce);
  if (!k) return NULL;
  int ok = EVP_DecryptInit_ex(k->ctx, NULL, NULL, NULL, nonce) == 1 &&
           EVP_DecryptUpdate(k->ctx, NULL, &outl, p, (int)hl) == 1 &&
           EVP_DecryptUpdate(k->ctx, p + hl, &outl, p + hl, (int)(end - hl)) == 1 &&
           EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LENGTH, p + end) == 1 &&
           EVP_DecryptFinal_ex(k->ctx, p + hl + outl, &finl) == 1;
  if (!ok) memset(p + hl, 0, end - hl); /* never leave unauthenticated plaintext behind */
  napi_get_boolean(env, ok, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"createKey", NULL, js_create_key, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, js_seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
