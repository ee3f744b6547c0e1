/* dbr.h — DBR types: sizes, encoding a PV as any DBR type, decoding writes.
 *
 * Private to ca/ (and its tests). Layouts and conversion rules are those of
 * ../shared/docs/ca-protocol.md section 4: every multi-byte field big-endian,
 * strings NUL-terminated and zero-padded, limits of integer types truncated
 * from the PV's double limits, NaN float alarm limits when a PV has none.
 */
#ifndef GUARDIAND_DBR_H
#define GUARDIAND_DBR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvdb/pvdb.h"

enum dbr_type {
    DBR_STRING = 0, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_CHAR, DBR_LONG, DBR_DOUBLE,
    DBR_STS_STRING = 7, DBR_STS_SHORT, DBR_STS_FLOAT, DBR_STS_ENUM, DBR_STS_CHAR, DBR_STS_LONG,
    DBR_STS_DOUBLE,
    DBR_TIME_STRING = 14, DBR_TIME_SHORT, DBR_TIME_FLOAT, DBR_TIME_ENUM, DBR_TIME_CHAR,
    DBR_TIME_LONG, DBR_TIME_DOUBLE,
    DBR_GR_STRING = 21, DBR_GR_SHORT, DBR_GR_FLOAT, DBR_GR_ENUM, DBR_GR_CHAR, DBR_GR_LONG,
    DBR_GR_DOUBLE,
    DBR_CTRL_STRING = 28, DBR_CTRL_SHORT, DBR_CTRL_FLOAT, DBR_CTRL_ENUM, DBR_CTRL_CHAR,
    DBR_CTRL_LONG, DBR_CTRL_DOUBLE,
    DBR_PUT_ACKT = 35,
    DBR_PUT_ACKS = 36,
    DBR_STSACK_STRING = 37,
    DBR_CLASS_NAME = 38,
};
#define DBR_LAST 38

bool dbr_valid(unsigned type);              /* 0..38 */
/* Named apart from libca's exported tables dbr_size, dbr_value_size and
 * dbr_value_offset: a test or bench that links libca must not interpose them. */
size_t dbr_struct_size(unsigned type); /* struct size holding one element */
size_t dbr_elem_size(unsigned type);   /* size of each further element */
size_t dbr_elem_offset(unsigned type); /* offset of the first element */
/* dbr_struct_size + (n-1)*elem_size for n >= 1; the metadata alone for n == 0. Not
 * rounded to 8. Returns SIZE_MAX for an invalid type. */
size_t dbr_struct_size_n(unsigned type, uint32_t n);
/* The value type (0..6) of a type code, or -1 (PUT_ACKT/ACKS, STSACK and
 * CLASS_NAME have value types of their own: they return -1 too). */
int dbr_value_type(unsigned type);

/* Encode pv as DBR type `type` with n elements (n >= 1) into out, which holds
 * at least dbr_struct_size_n(type, n) bytes. Elements past pv_nelm() are zero; all
 * padding is zero. Returns ECA_NORMAL, or ECA_GETFAIL with out zeroed when the
 * type cannot be read (PUT_ACKT, PUT_ACKS) or a conversion fails. */
uint32_t dbr_encode(uint8_t *out, unsigned type, uint32_t n, const pv *pv);

/* The same, but on a conversion failure out keeps what was encoded: the
 * metadata and the *good elements before the first that failed (*good is n,
 * or the valid elements when fewer, on success; 0 for PUT_ACKT/PUT_ACKS).
 * Encodings are prefixes of each other: the encoding of k < n elements is
 * the first dbr_struct_size_n(type, k) bytes of this one, and more than the
 * valid elements are zeros. The CA server encodes once and answers every
 * count from it. */
uint32_t dbr_encode_prefix(uint8_t *out, unsigned type, uint32_t n, const pv *pv, uint32_t *good);

/* Decode the value part of a written payload (type `type`, n elements, len
 * bytes available) into the PV's native type. out must hold pv_count(pv)
 * elements; *n_out receives how many were decoded (min(n, pv_count)).
 * Returns ECA_NORMAL; ECA_PUTFAIL for unparseable text, an enum string that
 * matches no state, a payload shorter than the elements claimed, or a type
 * that cannot be written (STSACK_STRING, CLASS_NAME); ECA_BADTYPE for an
 * invalid type. PUT_ACKT/PUT_ACKS return ECA_NORMAL with *n_out = 0 (the
 * caller treats them as accepted no-ops: guardiand keeps no alarm ack state). */
uint32_t dbr_decode(void *out, uint32_t *n_out, const pv *pv, unsigned type, uint32_t n,
                    const uint8_t *payload, size_t len);

/* Format one native element as a DBR string (EPICS rules: PREC digits for
 * FLOAT/DOUBLE, state text for ENUM). out holds PV_STRING_SIZE bytes. */
void dbr_format_element(char out[PV_STRING_SIZE], const pv *pv, uint32_t i);

#endif
