/* The JSON text of a side's levels, compiled: `schemas.encoding.levels_json`'s twin.

   A full book is 5000 levels a side, and building its text one f-string per level held
   the interpreter for milliseconds on the collector and dominated a replay that writes
   its events. Here the text is measured, allocated once and copied into. The texts are
   copied as they are, exactly as the Python twin does (every price and quantity was
   checked to be a plain decimal before it entered a book or a delta); any level that is
   not a list or tuple of at least two ASCII strings answers None, and Python writes it.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static const char PRICE[] = "{\"price\":\"";
static const char QUANTITY[] = "\",\"quantity\":\"";
static const char CLOSE[] = "\"}";
static const char AGE[] = "\",\"age_ms\":";
#define LEN(literal) ((Py_ssize_t)(sizeof(literal) - 1))

/* The price and quantity of a level, or 0 when Python must write it. */
static int fields(PyObject *level, PyObject **price, PyObject **quantity)
{
    if (PyList_CheckExact(level) && PyList_GET_SIZE(level) >= 2) {
        *price = PyList_GET_ITEM(level, 0);
        *quantity = PyList_GET_ITEM(level, 1);
    }
    else if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) >= 2) {
        *price = PyTuple_GET_ITEM(level, 0);
        *quantity = PyTuple_GET_ITEM(level, 1);
    }
    else
        return 0;
    return PyUnicode_CheckExact(*price) && PyUnicode_IS_ASCII(*price) && PyUnicode_CheckExact(*quantity)
           && PyUnicode_IS_ASCII(*quantity);
}

static char *put(char *out, const char *text, Py_ssize_t length)
{
    memcpy(out, text, (size_t)length);
    return out + length;
}

/* Bytes the levels take (without separators), or -1 when Python must write them. */
static Py_ssize_t measure(PyObject *levels, Py_ssize_t each)
{
    Py_ssize_t total = 0, count = PySequence_Fast_GET_SIZE(levels);
    PyObject **items = PySequence_Fast_ITEMS(levels);
    for (Py_ssize_t at = 0; at < count; at++) {
        PyObject *price, *quantity;
        if (!fields(items[at], &price, &quantity))
            return -1;
        total += each + PyUnicode_GET_LENGTH(price) + PyUnicode_GET_LENGTH(quantity);
    }
    return total;
}

static char *write_levels(char *out, PyObject *levels, const char *age, Py_ssize_t age_length, int first)
{
    Py_ssize_t count = PySequence_Fast_GET_SIZE(levels);
    PyObject **items = PySequence_Fast_ITEMS(levels);
    for (Py_ssize_t at = 0; at < count; at++) {
        PyObject *price, *quantity;
        fields(items[at], &price, &quantity);
        if (!first || at > 0)
            *out++ = ',';
        out = put(out, PRICE, LEN(PRICE));
        out = put(out, (const char *)PyUnicode_1BYTE_DATA(price), PyUnicode_GET_LENGTH(price));
        out = put(out, QUANTITY, LEN(QUANTITY));
        out = put(out, (const char *)PyUnicode_1BYTE_DATA(quantity), PyUnicode_GET_LENGTH(quantity));
        if (age != NULL) {
            out = put(out, AGE, LEN(AGE));
            out = put(out, age, age_length);
            *out++ = '}';
        }
        else
            out = put(out, CLOSE, LEN(CLOSE));
    }
    return out;
}

PyDoc_STRVAR(levels_text_doc,
"levels_text(levels, deep, deep_age_ms) -> str | None\n\n"
"The text `schemas.encoding.levels_json` writes, or None where Python must write it.");

static PyObject *levels_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0]))
        || !(PyList_CheckExact(args[1]) || PyTuple_CheckExact(args[1]))) {
        Py_RETURN_NONE; /* any other sequence: Python writes it */
    }
    PyObject *levels = args[0], *deep = args[1];
    PyObject *age = NULL;
    const char *age_text = NULL;
    Py_ssize_t age_length = 0;
    if (PySequence_Fast_GET_SIZE(deep) > 0) {
        age = PyObject_Str(args[2]);
        if (age == NULL)
            return NULL;
        if (!PyUnicode_IS_ASCII(age)) {
            Py_DECREF(age);
            Py_RETURN_NONE;
        }
        age_text = (const char *)PyUnicode_1BYTE_DATA(age);
        age_length = PyUnicode_GET_LENGTH(age);
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(levels) + PySequence_Fast_GET_SIZE(deep);
    Py_ssize_t shallow = measure(levels, LEN(PRICE) + LEN(QUANTITY) + LEN(CLOSE));
    Py_ssize_t deeper = measure(deep, LEN(PRICE) + LEN(QUANTITY) + LEN(AGE) + age_length + 1);
    if (shallow < 0 || deeper < 0) {
        Py_XDECREF(age);
        Py_RETURN_NONE;
    }
    PyObject *text = PyUnicode_New(2 + shallow + deeper + (count > 0 ? count - 1 : 0), 127);
    if (text == NULL) {
        Py_XDECREF(age);
        return NULL;
    }
    char *out = (char *)PyUnicode_1BYTE_DATA(text);
    *out++ = '[';
    out = write_levels(out, levels, NULL, 0, 1);
    out = write_levels(out, deep, age_text, age_length, PySequence_Fast_GET_SIZE(levels) == 0);
    *out++ = ']';
    Py_XDECREF(age);
    return text;
}

static PyMethodDef methods[] = {
    {"levels_text", (PyCFunction)(void (*)(void))levels_text, METH_FASTCALL, levels_text_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "schemas._levels_text", "The JSON text of book levels, compiled.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__levels_text(void)
{
    return PyModule_Create(&module);
}
