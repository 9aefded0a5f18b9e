/* A cursor over JSON text, for the compiled readers of strict shapes
   (operators/_binance_frames.c, connectors/_recording_lines.c): each reads only the one
   shape it knows and leaves everything else to Python. */
#ifndef MARKETPRISM_JSON_CURSOR_H
#define MARKETPRISM_JSON_CURSOR_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *at;
    const char *end;
} Cursor;

/* The literal next: 1 and the cursor past it, else 0 and the cursor where it was. */
static inline int take(Cursor *c, const char *literal, size_t length)
{
    if ((size_t)(c->end - c->at) < length || memcmp(c->at, literal, length) != 0)
        return 0;
    c->at += length;
    return 1;
}

/* A non-negative JSON integer up to 2**63 - 1 (no sign, no leading zero, no fraction or
   exponent), as a new int; NULL (no error set) when the text is not one. */
static inline PyObject *read_count(Cursor *c)
{
    const char *start = c->at;
    uint64_t value = 0;
    while (c->at < c->end && *c->at >= '0' && *c->at <= '9') {
        unsigned digit = (unsigned)(*c->at - '0');
        if (value > (UINT64_C(9223372036854775807) - digit) / 10)
            return NULL;
        value = value * 10 + digit;
        c->at++;
    }
    Py_ssize_t digits = c->at - start;
    if (digits == 0 || (digits > 1 && *start == '0'))
        return NULL;
    if (c->at < c->end && (*c->at == '.' || *c->at == 'e' || *c->at == 'E'))
        return NULL;
    return PyLong_FromLongLong((long long)value);
}

#endif
