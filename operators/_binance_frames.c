/* Binance combined-stream frames read into columns of fields, in C: the book tickers,
   trades and diffs that make up nearly all of a recording.

   Each field of the typed payload (operators.binance_columns.ROW_FIELDS) is a column,
   `unset` where a frame lacks it: exactly what msgspec's typed payload would hold. Only
   frames of one strict shape are read here: `{"stream":"...","data":{...}}` with no
   whitespace, no escapes, ASCII only, each field once, integers within int64 and written
   as JSON integers. Every other frame is left unread, and Python reads it with msgspec, so
   this file never decides anything the typed path would decide differently.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { F_E_TYPE, F_E_TIME, F_S, F_FIRST, F_LAST, F_B, F_A, F_B_SIZE, F_A_SIZE, F_T_ID, F_P, F_Q, F_T_TIME, F_M, F_M_BEST, FIELDS };

/* What a field may hold. */
enum { TEXT, COUNT, TIME, LEVELS_OR_TEXT, FLAG };

static const struct { char name; int type; } field_of[FIELDS] = {
    {'e', TEXT}, {'E', TIME}, {'s', TEXT}, {'U', COUNT}, {'u', COUNT}, {'b', LEVELS_OR_TEXT},
    {'a', LEVELS_OR_TEXT}, {'B', TEXT}, {'A', TEXT}, {'t', COUNT}, {'p', TEXT}, {'q', TEXT},
    {'T', TIME}, {'m', FLAG}, {'M', FLAG},
};

typedef struct {
    const char *at;
    const char *end;
} Cursor;

static int take(Cursor *c, const char *literal, size_t length)
{
    if ((size_t)(c->end - c->at) < length || memcmp(c->at, literal, length) != 0)
        return 0;
    c->at += length;
    return 1;
}

/* A string without escapes or control characters; the cursor stands after its closing quote. */
static PyObject *read_text(Cursor *c)
{
    if (c->at >= c->end || *c->at != '"')
        return NULL;
    const char *start = ++c->at;
    while (c->at < c->end && *c->at != '"') {
        if (*c->at == '\\' || (unsigned char)*c->at < 0x20)
            return NULL;
        c->at++;
    }
    if (c->at >= c->end)
        return NULL;
    Py_ssize_t length = c->at - start;
    c->at++;
    PyObject *text = PyUnicode_New(length, 127);
    if (text != NULL)
        memcpy(PyUnicode_1BYTE_DATA(text), start, (size_t)length);
    return text;
}

/* A non-negative JSON integer up to 2**63 - 1 (no sign, no leading zero, no fraction). */
static PyObject *read_count(Cursor *c)
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

/* [[text, ...], ...]: a side's levels, each a non-empty list of texts. */
static PyObject *read_levels(Cursor *c)
{
    PyObject *levels = PyList_New(0);
    if (levels == NULL || !take(c, "[", 1))
        goto fail;
    if (take(c, "]", 1))
        return levels;
    do {
        PyObject *level = PyList_New(0);
        if (level == NULL)
            goto fail;
        int appended = PyList_Append(levels, level);
        Py_DECREF(level);
        if (appended < 0 || !take(c, "[", 1))
            goto fail;
        do {
            PyObject *text = read_text(c);
            if (text == NULL)
                goto fail;
            appended = PyList_Append(level, text);
            Py_DECREF(text);
            if (appended < 0)
                goto fail;
        } while (take(c, ",", 1));
        if (!take(c, "]", 1))
            goto fail;
    } while (take(c, ",", 1));
    if (take(c, "]", 1))
        return levels;
fail:
    Py_XDECREF(levels);
    return NULL;
}

static PyObject *read_value(Cursor *c, int type)
{
    switch (type) {
    case TEXT:
        return read_text(c);
    case COUNT:
        return read_count(c);
    case TIME:
        if (take(c, "null", 4))
            return Py_NewRef(Py_None);
        return read_count(c);
    case LEVELS_OR_TEXT:
        return c->at < c->end && *c->at == '[' ? read_levels(c) : read_text(c);
    case FLAG:
        if (take(c, "true", 4))
            return Py_NewRef(Py_True);
        if (take(c, "false", 5))
            return Py_NewRef(Py_False);
        return NULL;
    }
    return NULL;
}

static void forget(PyObject **fields)
{
    for (int field = 0; field < FIELDS; field++)
        Py_CLEAR(fields[field]);
}

/* One frame's fields (NULL where absent) when the frame is of the strict shape: 1; 0 when
   it is not (no error set, `fields` all NULL), -1 on a memory error. */
static int read_frame(PyObject *text, Py_ssize_t max_length, PyObject **fields)
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text) || PyUnicode_GET_LENGTH(text) > max_length)
        return 0;
    Cursor c = {(const char *)PyUnicode_1BYTE_DATA(text), NULL};
    c.end = c.at + PyUnicode_GET_LENGTH(text);
    if (!take(&c, "{\"stream\":", 10))
        return 0;
    PyObject *stream = read_text(&c);
    if (stream == NULL)
        goto refused;
    Py_DECREF(stream);
    if (!take(&c, ",\"data\":{", 9))
        return 0;
    if (!take(&c, "}", 1)) {
        do {
            if (c.end - c.at < 4 || c.at[0] != '"' || c.at[2] != '"' || c.at[3] != ':')
                goto refused;
            int field = 0;
            while (field < FIELDS && field_of[field].name != c.at[1])
                field++;
            if (field == FIELDS || fields[field] != NULL)
                goto refused; /* a field the fast path does not read, or one given twice */
            c.at += 4;
            fields[field] = read_value(&c, field_of[field].type);
            if (fields[field] == NULL)
                goto refused;
        } while (take(&c, ",", 1));
        if (!take(&c, "}", 1))
            goto refused;
    }
    if (!take(&c, "}", 1) || c.at != c.end)
        goto refused;
    PyObject *event = fields[F_E_TYPE];
    if (event != NULL && !(PyUnicode_CompareWithASCIIString(event, "trade") == 0
                           || PyUnicode_CompareWithASCIIString(event, "depthUpdate") == 0))
        goto refused; /* klines, aggTrades and the rest are read one by one */
    return 1;
refused:
    forget(fields);
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError))
            return -1;
        PyErr_Clear(); /* an int Python refused to build: Python reads the frame */
    }
    return 0;
}

PyDoc_STRVAR(binance_columns_doc,
"binance_columns(texts, unset, max_length) -> (columns, unread)\n\n"
"The frames' typed fields as columns (one list per field of ROW_FIELDS, `unset` where a\n"
"frame lacks the field, None for the frames not read) and the positions of the frames\n"
"Python must read itself (frames longer than max_length among them).");

static PyObject *binance_columns(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "binance_columns takes a list of texts, the unset marker and a length");
        return NULL;
    }
    PyObject *texts = args[0], *unset = args[1];
    Py_ssize_t max_length = PyLong_AsSsize_t(args[2]);
    if (max_length == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(texts);
    PyObject *columns = PyTuple_New(FIELDS), *unread = PyList_New(0), *answer = NULL;
    if (columns == NULL || unread == NULL)
        goto done;
    for (int field = 0; field < FIELDS; field++) {
        PyObject *column = PyList_New(count);
        if (column == NULL)
            goto done;
        PyTuple_SET_ITEM(columns, field, column);
    }
    for (Py_ssize_t at = 0; at < count; at++) {
        PyObject *fields[FIELDS] = {NULL};
        int read = read_frame(PyList_GET_ITEM(texts, at), max_length, fields);
        if (read < 0)
            goto done;
        if (read == 0) {
            PyObject *position = PyLong_FromSsize_t(at);
            int appended = position == NULL ? -1 : PyList_Append(unread, position);
            Py_XDECREF(position);
            if (appended < 0)
                goto done;
        }
        for (int field = 0; field < FIELDS; field++) {
            PyObject *value = fields[field] != NULL ? fields[field] : Py_NewRef(read ? unset : Py_None);
            PyList_SET_ITEM(PyTuple_GET_ITEM(columns, field), at, value);
        }
    }
    answer = PyTuple_Pack(2, columns, unread);
done:
    Py_XDECREF(columns); /* columns not yet filled hold NULLs, which a list deallocates cleanly */
    Py_XDECREF(unread);
    return answer;
}

static PyMethodDef methods[] = {
    {"binance_columns", (PyCFunction)(void (*)(void))binance_columns, METH_FASTCALL, binance_columns_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "operators._binance_frames",
    "Binance combined-stream frames read into rows of typed fields.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__binance_frames(void)
{
    return PyModule_Create(&module);
}
