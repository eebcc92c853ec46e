/* Small helpers shared by the bench receivers and the relay: time, SHA-1 and
 * base64 for the WebSocket handshake, WebSocket frame headers. */
#ifndef VIGIL_BENCH_WSUTIL_H
#define VIGIL_BENCH_WSUTIL_H

#include <stddef.h>
#include <stdint.h>

uint64_t bench_now_ns(void);
void bench_sha1(const void *data, size_t len, unsigned char out[20]);
size_t bench_b64(const unsigned char *in, size_t n, char *out); /* out: 4*ceil(n/3)+1 */
/* Header of an unmasked server frame (opcode 0x1 text, FIN); returns its size. */
size_t ws_server_header(unsigned char *h, size_t payload_len);
/* Writes a masked client frame (FIN, opcode op) into out; returns its size.
 * out must hold len + 14 bytes. */
size_t ws_client_frame(unsigned char *out, int op, const void *payload, size_t len);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key; out holds 29+ bytes. */
void ws_accept_key(const char *key, size_t keylen, char *out);

int vigil_relay_main(int argc, char **argv);

#endif
