/* The level loops of operators.levels and operators.book, compiled.

   Every function here answers exactly what its pure-Python twin answers (the twins stay
   the definition, and tests/test_levels_core.py holds the two to it), only in one pass
   over the levels instead of several C-level maps with Python between them. Where a
   twin would explain a fault or take a rare slow path, these return None and leave the
   whole input to Python, so no error text and no unusual case lives here.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Prices longer than this may carry more than 15 significant digits: Python counts them. */
#define ALWAYS_EXACT_LENGTH 15

/* `text` as ASCII bytes when it is a str holding a plain decimal ("12", "0.50"), else NULL. */
static const char *plain_decimal(PyObject *text, Py_ssize_t *length)
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text))
        return NULL;
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    const char *chars = (const char *)PyUnicode_1BYTE_DATA(text);
    Py_ssize_t at = 0;
    while (at < size && chars[at] >= '0' && chars[at] <= '9')
        at++;
    if (at == 0)
        return NULL;
    if (at < size) {
        if (chars[at] != '.')
            return NULL;
        Py_ssize_t fraction = ++at;
        while (at < size && chars[at] >= '0' && chars[at] <= '9')
            at++;
        if (at == fraction || at != size)
            return NULL;
    }
    *length = size;
    return chars;
}

/* 10**k for k <= 22: every one exactly a double. */
static const double POWERS_OF_TEN[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* float(text) for a plain decimal. With at most 15 digits the digits are an integer below
   2**53 and the point divides by an exact power of ten, so one IEEE division gives the
   correctly rounded value, the very double float() gives; longer texts go to the routine
   float() itself uses. -1 on failure. */
static int decimal_value(const char *chars, Py_ssize_t length, double *value)
{
    if (length <= 16) {
        uint64_t digits = 0;
        int fraction = -1, count = 0;
        for (Py_ssize_t at = 0; at < length; at++) {
            if (chars[at] == '.') {
                fraction = 0;
                continue;
            }
            digits = digits * 10 + (uint64_t)(chars[at] - '0');
            count++;
            if (fraction >= 0)
                fraction++;
        }
        if (count <= 15) {
            *value = (double)digits / POWERS_OF_TEN[fraction < 0 ? 0 : fraction];
            return 0;
        }
    }
    char *end = NULL;
    *value = PyOS_string_to_double(chars, &end, NULL);
    if (*value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return end == chars + length ? 0 : -1;
}

/* One level's price and quantity when it is a list of 2 to 4 plain decimals; -1 otherwise
   (or when its price is long enough that Python must count its digits). */
static int read_level(PyObject *level, double *price, double *quantity)
{
    if (!PyList_CheckExact(level))
        return -1;
    Py_ssize_t width = PyList_GET_SIZE(level);
    if (width < 2 || width > 4)
        return -1;
    Py_ssize_t length;
    for (Py_ssize_t field = 0; field < width; field++) {
        const char *chars = plain_decimal(PyList_GET_ITEM(level, field), &length);
        if (chars == NULL)
            return -1;
        if (field == 0) {
            if (length > ALWAYS_EXACT_LENGTH || decimal_value(chars, length, price) < 0)
                return -1;
        }
        else if (field == 1 && decimal_value(chars, length, quantity) < 0)
            return -1;
    }
    if (!(*price >= DBL_MIN && *price < INFINITY && *quantity < INFINITY))
        return -1;
    return 0;
}

/* Level changes of one side: keys (asks negated) and wires (None where the quantity is 0).

   A wire is the parser's own list of 2 to 4 strings, which the book keeps for as long as
   the level lives and nobody changes: it can never be part of a reference cycle, so it is
   taken out of the garbage collector's care. Tens of thousands of them were otherwise
   walked by every young collection on the collector's worker (10-50 ms pauses). */
static PyObject *side_changes(PyObject *levels, int bids, PyObject *changes_type)
{
    Py_ssize_t count = PyList_GET_SIZE(levels);
    PyObject *keys = PyList_New(count);
    PyObject *wires = PyList_New(count);
    PyObject *changes = NULL;
    if (keys == NULL || wires == NULL)
        goto done;
    for (Py_ssize_t at = 0; at < count; at++) {
        PyObject *level = PyList_GET_ITEM(levels, at);
        double price = 0.0, quantity = 0.0;
        if (read_level(level, &price, &quantity) < 0) {
            changes = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *key = PyFloat_FromDouble(bids ? price : -price);
        if (key == NULL)
            goto done;
        PyList_SET_ITEM(keys, at, key);
        if (quantity != 0.0 && PyObject_GC_IsTracked(level))
            PyObject_GC_UnTrack(level); /* see below */
        PyList_SET_ITEM(wires, at, Py_NewRef(quantity != 0.0 ? level : Py_None));
    }
    PyObject_GC_UnTrack(keys); /* floats, and wires out of the collector's care already */
    PyObject_GC_UnTrack(wires);
    PyObject_GC_UnTrack(levels); /* the message's own list of its levels: levels only, too */
    changes = PyObject_CallFunctionObjArgs(changes_type, keys, wires, NULL);
done:
    Py_XDECREF(keys);
    Py_XDECREF(wires);
    return changes;
}

PyDoc_STRVAR(parse_sides_doc,
"parse_sides(sides, bids, changes_type) -> list | None\n\n"
"`operators.levels.parse_sides`: each side's level changes built by `changes_type(keys,\n"
"wires)`, or None when any side would fail or needs Python's closer look.");

static PyObject *parse_sides(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "parse_sides takes sides, bids and changes_type");
        return NULL;
    }
    PyObject *sides = args[0], *bids = args[1], *changes_type = args[2];
    if (!PyList_CheckExact(sides) || !PyList_CheckExact(bids) || PyList_GET_SIZE(bids) != PyList_GET_SIZE(sides)) {
        PyErr_SetString(PyExc_TypeError, "parse_sides wants two lists of equal length");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(sides);
    if (count == 0)
        Py_RETURN_NONE; /* as the twin: no sides is no answer */
    for (Py_ssize_t at = 0; at < count; at++)
        if (!PyList_CheckExact(PyList_GET_ITEM(sides, at)))
            Py_RETURN_NONE;
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t at = 0; at < count; at++) {
        int is_bids = PyObject_IsTrue(PyList_GET_ITEM(bids, at));
        if (is_bids < 0) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *changes = side_changes(PyList_GET_ITEM(sides, at), is_bids, changes_type);
        if (changes == NULL || changes == Py_None) {
            Py_DECREF(out);
            return changes;
        }
        PyList_SET_ITEM(out, at, changes);
    }
    return out;
}

/* bisect_left over a list of floats (a book side's keys, which only ever hold floats). */
static int bisect_keys(PyObject *keys, Py_ssize_t size, double key, Py_ssize_t *index)
{
    PyObject **items = ((PyListObject *)keys)->ob_item;
    Py_ssize_t low = 0, high = size;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (!PyFloat_CheckExact(items[middle])) {
            PyErr_SetString(PyExc_TypeError, "a book side's keys must be floats");
            return -1;
        }
        if (PyFloat_AS_DOUBLE(items[middle]) < key)
            low = middle + 1;
        else
            high = middle;
    }
    *index = low;
    return 0;
}

/* list.insert(index, item) with one memmove (CPython's own moves the tail one by one). */
static int insert_at(PyObject *list, Py_ssize_t index, PyObject *item)
{
    if (PyList_Append(list, item) < 0) /* grows the list by one, amortized */
        return -1;
    PyObject **items = ((PyListObject *)list)->ob_item;
    Py_ssize_t last = PyList_GET_SIZE(list) - 1;
    memmove(&items[index + 1], &items[index], (size_t)(last - index) * sizeof(PyObject *));
    items[index] = item; /* the reference PyList_Append took */
    return 0;
}

/* del list[index], with one memmove and no temporary buffer. */
static void delete_at(PyObject *list, Py_ssize_t index)
{
    PyObject **items = ((PyListObject *)list)->ob_item;
    Py_ssize_t size = PyList_GET_SIZE(list);
    PyObject *gone = items[index];
    memmove(&items[index], &items[index + 1], (size_t)(size - index - 1) * sizeof(PyObject *));
    Py_SET_SIZE(list, size - 1);
    Py_DECREF(gone);
}

PyDoc_STRVAR(apply_changes_doc,
"apply_changes(keys, wires, change_keys, change_wires) -> None\n\n"
"`operators.book.BookSide.apply` on its two lists: upsert each change, or remove the\n"
"level where its wire is None.");

static PyObject *apply_changes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_changes takes keys, wires, change_keys and change_wires");
        return NULL;
    }
    PyObject *keys = args[0], *wires = args[1], *change_keys = args[2], *change_wires = args[3];
    if (!PyList_CheckExact(keys) || !PyList_CheckExact(wires) || !PyList_CheckExact(change_keys)
        || !PyList_CheckExact(change_wires) || PyList_GET_SIZE(keys) != PyList_GET_SIZE(wires)) {
        PyErr_SetString(PyExc_TypeError, "apply_changes wants lists, keys and wires of equal length");
        return NULL;
    }
    Py_ssize_t changes = Py_MIN(PyList_GET_SIZE(change_keys), PyList_GET_SIZE(change_wires));
    for (Py_ssize_t at = 0; at < changes; at++) {
        PyObject *key = PyList_GET_ITEM(change_keys, at);
        PyObject *wire = PyList_GET_ITEM(change_wires, at);
        if (!PyFloat_CheckExact(key)) {
            PyErr_SetString(PyExc_TypeError, "level change keys must be floats");
            return NULL;
        }
        Py_ssize_t size = PyList_GET_SIZE(keys), index;
        if (bisect_keys(keys, size, PyFloat_AS_DOUBLE(key), &index) < 0)
            return NULL;
        int found = index < size && PyFloat_AS_DOUBLE(PyList_GET_ITEM(keys, index)) == PyFloat_AS_DOUBLE(key);
        if (found && wire == Py_None) {
            delete_at(keys, index);
            delete_at(wires, index);
        }
        else if (found) {
            PyObject *old = PyList_GET_ITEM(wires, index);
            PyList_SET_ITEM(wires, index, Py_NewRef(wire));
            Py_DECREF(old);
        }
        else if (wire != Py_None) {
            if (insert_at(keys, index, key) < 0)
                return NULL;
            if (insert_at(wires, index, wire) < 0) {
                delete_at(keys, index); /* keep the two lists of one length */
                return NULL;
            }
        }
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(all_pairs_pass_doc,
"all_pairs_pass(prices, quantities) -> bool\n\n"
"`operators.levels.all_pairs_pass`: every pair plain decimals, every price in (0, inf).");

static PyObject *all_pairs_pass(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "all_pairs_pass wants two lists");
        return NULL;
    }
    if (PyList_GET_SIZE(args[0]) != PyList_GET_SIZE(args[1]))
        Py_RETURN_FALSE;
    Py_ssize_t count = PyList_GET_SIZE(args[0]), length;
    for (Py_ssize_t at = 0; at < count; at++) {
        const char *price = plain_decimal(PyList_GET_ITEM(args[0], at), &length);
        double value;
        if (price == NULL || decimal_value(price, length, &value) < 0 || !(value > 0.0 && value < INFINITY))
            Py_RETURN_FALSE;
        if (plain_decimal(PyList_GET_ITEM(args[1], at), &length) == NULL)
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* Lists of levels (keys, wires, or slices of a side) hold floats, strings and wires, none
   of which refers back to anything: such a list can never be part of a reference cycle, so
   the collector need not walk it. Walking the 5000-entry lists of full books and REST
   answers made most of a young collection's time (the entries are spread over memory). */

PyDoc_STRVAR(untracked_doc,
"untracked(levels) -> levels\n\n"
"The list itself, out of the garbage collector's care (it must hold levels only).");

static PyObject *untracked(PyObject *module, PyObject *levels)
{
    (void)module;
    if (!PyList_CheckExact(levels)) {
        PyErr_SetString(PyExc_TypeError, "untracked wants a list");
        return NULL;
    }
    PyObject_GC_UnTrack(levels);
    return Py_NewRef(levels);
}

PyDoc_STRVAR(best_first_doc,
"best_first(side, stop, count) -> list\n\n"
"side[stop - 1], side[stop - 2], ... (`count` of them): a side's levels best first, as a\n"
"new list out of the garbage collector's care.");

static PyObject *best_first(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyLong_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "best_first wants a list and two ints");
        return NULL;
    }
    Py_ssize_t stop = PyLong_AsSsize_t(args[1]), count = PyLong_AsSsize_t(args[2]);
    if ((stop == -1 || count == -1) && PyErr_Occurred())
        return NULL;
    if (stop < 0 || count < 0 || count > stop || stop > PyList_GET_SIZE(args[0])) {
        PyErr_SetString(PyExc_IndexError, "best_first: stop and count out of the side's range");
        return NULL;
    }
    PyObject *levels = PyList_New(count);
    if (levels == NULL)
        return NULL;
    for (Py_ssize_t at = 0; at < count; at++)
        PyList_SET_ITEM(levels, at, Py_NewRef(PyList_GET_ITEM(args[0], stop - 1 - at)));
    PyObject_GC_UnTrack(levels);
    return levels;
}

static PyMethodDef methods[] = {
    {"parse_sides", (PyCFunction)(void (*)(void))parse_sides, METH_FASTCALL, parse_sides_doc},
    {"apply_changes", (PyCFunction)(void (*)(void))apply_changes, METH_FASTCALL, apply_changes_doc},
    {"all_pairs_pass", (PyCFunction)(void (*)(void))all_pairs_pass, METH_FASTCALL, all_pairs_pass_doc},
    {"untracked", (PyCFunction)untracked, METH_O, untracked_doc},
    {"best_first", (PyCFunction)(void (*)(void))best_first, METH_FASTCALL, best_first_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "operators._levels_core",
    "Compiled twins of the level loops in operators.levels and operators.book.", -1, methods,
};

PyMODINIT_FUNC PyInit__levels_core(void)
{
    return PyModule_Create(&module);
}
