/* Binance combined-stream frames read into columns of fields, in C: the book tickers,
   trades and diffs that make up nearly all of a recording.

   The frames are gathered by group (tickers, trades, diffs), and each field a group's
   builder reads (operators.binance_columns.GROUP_FIELDS) is a column of it, `unset`
   where a frame lacks it: exactly what msgspec's typed payload would hold. Only
   frames of one strict shape are read here: `{"stream":"...","data":{...}}` with no
   whitespace, no escapes, ASCII only, each field once, integers within int64 and written
   as JSON integers. Every other frame is left unread, and Python reads it with msgspec, so
   this file never decides anything the typed path would decide differently.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../schemas/_json_cursor.h"

enum { F_E_TYPE, F_E_TIME, F_S, F_FIRST, F_LAST, F_B, F_A, F_B_SIZE, F_A_SIZE, F_T_ID, F_P, F_Q, F_T_TIME, F_M, F_M_BEST, FIELDS };

/* What a field may hold. */
enum { TEXT, COUNT, TIME, LEVELS_OR_TEXT, FLAG };

static const struct { char name; int type; } field_of[FIELDS] = {
    {'e', TEXT}, {'E', TIME}, {'s', TEXT}, {'U', COUNT}, {'u', COUNT}, {'b', LEVELS_OR_TEXT},
    {'a', LEVELS_OR_TEXT}, {'B', TEXT}, {'A', TEXT}, {'t', COUNT}, {'p', TEXT}, {'q', TEXT},
    {'T', TIME}, {'m', FLAG}, {'M', FLAG},
};

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

/* The groups a frame of the strict shape falls in, by its event type (none: a book
   ticker), and the fields each group's builder reads, in the builder's order. */
enum { G_TICKER, G_TRADE, G_DIFF, GROUPS };
#define MAX_GROUP_FIELDS 7
static const int group_fields[GROUPS][MAX_GROUP_FIELDS + 1] = {
    {F_S, F_LAST, F_B, F_B_SIZE, F_A, F_A_SIZE, F_E_TIME, -1},
    {F_S, F_T_ID, F_P, F_Q, F_M, F_T_TIME, -1},
    {F_S, F_FIRST, F_LAST, F_B, F_A, F_E_TIME, -1},
};

static int group_of(PyObject *event)
{
    if (event == NULL)
        return G_TICKER;
    return PyUnicode_CompareWithASCIIString(event, "trade") == 0 ? G_TRADE : G_DIFF;
}

static int append_new(PyObject *list, PyObject *item)
{
    int appended = item == NULL ? -1 : PyList_Append(list, item);
    Py_XDECREF(item);
    return appended;
}

/* groups[g] = (positions, (field list, ...)), the field lists in group_fields' order. */
static PyObject *new_groups(void)
{
    PyObject *groups = PyTuple_New(GROUPS);
    for (int g = 0; groups != NULL && g < GROUPS; g++) {
        int width = 0;
        while (group_fields[g][width] >= 0)
            width++;
        PyObject *fields = PyTuple_New(width);
        PyObject *group = PyTuple_New(2);
        if (fields == NULL || group == NULL) {
            Py_XDECREF(fields);
            Py_XDECREF(group);
            Py_CLEAR(groups);
            break;
        }
        PyTuple_SET_ITEM(groups, g, group);
        PyTuple_SET_ITEM(group, 1, fields);
        PyObject *positions = PyList_New(0);
        PyTuple_SET_ITEM(group, 0, positions);
        for (int f = 0; f < width; f++) {
            PyObject *column = PyList_New(0);
            PyTuple_SET_ITEM(fields, f, column);
            if (column == NULL)
                positions = NULL;
        }
        if (positions == NULL)
            Py_CLEAR(groups);
    }
    return groups;
}

/* A frame read: its position and its group's fields appended to the group (`unset` where
   the frame lacks one); the fields' references are taken over. */
static int add_to_group(PyObject *groups, Py_ssize_t at, PyObject **fields, PyObject *unset)
{
    int g = group_of(fields[F_E_TYPE]);
    PyObject *group = PyTuple_GET_ITEM(groups, g);
    PyObject *columns = PyTuple_GET_ITEM(group, 1);
    int failed = append_new(PyTuple_GET_ITEM(group, 0), PyLong_FromSsize_t(at)) < 0;
    for (int f = 0; group_fields[g][f] >= 0; f++) {
        PyObject **value = &fields[group_fields[g][f]];
        if (!failed)
            failed = append_new(PyTuple_GET_ITEM(columns, f), *value != NULL ? *value : Py_NewRef(unset)) < 0;
        else
            Py_XDECREF(*value);
        *value = NULL;
    }
    forget(fields);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(binance_groups_doc,
"binance_groups(texts, unset, max_length) -> (groups, unread)\n\n"
"The frames read, by group (book tickers, trades, diffs): for each, the positions of its\n"
"frames and one list per field its builder reads (`unset` where a frame lacks the field).\n"
"`unread`: the positions of the frames Python must read itself (frames longer than\n"
"max_length, and anything that is not a str, among them).");

static PyObject *binance_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "binance_groups takes a list of texts, the unset marker and a length");
        return NULL;
    }
    PyObject *texts = args[0], *unset = args[1];
    Py_ssize_t max_length = PyLong_AsSsize_t(args[2]);
    if (max_length == -1 && PyErr_Occurred())
        return NULL;
    PyObject *groups = new_groups(), *unread = PyList_New(0), *answer = NULL;
    if (groups == NULL || unread == NULL)
        goto done;
    for (Py_ssize_t at = 0; at < PyList_GET_SIZE(texts); at++) {
        PyObject *fields[FIELDS] = {NULL};
        int read = read_frame(PyList_GET_ITEM(texts, at), max_length, fields);
        if (read < 0)
            goto done;
        if ((read ? add_to_group(groups, at, fields, unset) : append_new(unread, PyLong_FromSsize_t(at))) < 0)
            goto done;
    }
    answer = PyTuple_Pack(2, groups, unread);
done:
    Py_XDECREF(groups);
    Py_XDECREF(unread);
    return answer;
}

PyDoc_STRVAR(place_doc,
"place(count, pieces, fill) -> list\n\n"
"A list of `count` items, `fill` where no piece puts one: each piece is (positions,\n"
"values) and puts values[i] at positions[i].");

static PyObject *place(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "place takes a count, a list of (positions, values) and a fill");
        return NULL;
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[0]);
    if (count < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "place: a negative count");
        return NULL;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t at = 0; at < count; at++)
        PyList_SET_ITEM(out, at, Py_NewRef(args[2]));
    PyObject *pieces = args[1];
    for (Py_ssize_t p = 0; p < PyList_GET_SIZE(pieces); p++) {
        PyObject *piece = PyList_GET_ITEM(pieces, p);
        PyObject *positions, *values;
        if (!PyTuple_CheckExact(piece) || PyTuple_GET_SIZE(piece) != 2
            || !PyList_CheckExact(positions = PyTuple_GET_ITEM(piece, 0))
            || !PyList_CheckExact(values = PyTuple_GET_ITEM(piece, 1))
            || PyList_GET_SIZE(positions) != PyList_GET_SIZE(values)) {
            PyErr_SetString(PyExc_TypeError, "place: each piece is a tuple of two lists of one length");
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(positions); i++) {
            Py_ssize_t at = PyLong_AsSsize_t(PyList_GET_ITEM(positions, i));
            if (at < 0 || at >= count) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_IndexError, "place: a position out of range");
                goto fail;
            }
            PyObject *old = PyList_GET_ITEM(out, at);
            PyList_SET_ITEM(out, at, Py_NewRef(PyList_GET_ITEM(values, i)));
            Py_DECREF(old);
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"binance_groups", (PyCFunction)(void (*)(void))binance_groups, METH_FASTCALL, binance_groups_doc},
    {"place", (PyCFunction)(void (*)(void))place, METH_FASTCALL, place_doc},
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
