/* Objects of a slotted dataclass built from columns, compiled: `list(map(cls, *columns))`.

   A replay builds tens of thousands of tickers and trades per second of recording; their
   dataclass `__init__` only stores each argument in its slot, so here each object is
   allocated and its slots filled directly, in field order. Python checks that a class
   qualifies (schemas.events.build_column) before it is given here.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define MAX_FIELDS 32

PyDoc_STRVAR(build_doc,
"build(cls, fields, columns) -> list\n\n"
"`[cls(*values) for values in zip(*columns)]` for a slotted class whose __init__ stores\n"
"each field in its slot: `fields` names the slots in __init__'s order.");

static PyObject *build(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyType_Check(args[0]) || !PyTuple_CheckExact(args[1]) || !PyTuple_CheckExact(args[2])
        || PyTuple_GET_SIZE(args[1]) != PyTuple_GET_SIZE(args[2]) || PyTuple_GET_SIZE(args[1]) > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "build takes a class, a tuple of field names and a tuple of columns");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    Py_ssize_t fields = PyTuple_GET_SIZE(args[1]), count = -1;
    Py_ssize_t offsets[MAX_FIELDS];
    PyObject *columns[MAX_FIELDS];
    for (Py_ssize_t field = 0; field < fields; field++) {
        PyObject *slot = PyObject_GetAttr(args[0], PyTuple_GET_ITEM(args[1], field));
        if (slot == NULL)
            return NULL;
        int is_member = Py_IS_TYPE(slot, &PyMemberDescr_Type)
                        && ((PyMemberDescrObject *)slot)->d_member->type == T_OBJECT_EX;
        if (is_member)
            offsets[field] = ((PyMemberDescrObject *)slot)->d_member->offset;
        Py_DECREF(slot);
        columns[field] = PyTuple_GET_ITEM(args[2], field);
        if (!is_member || !PyList_CheckExact(columns[field])
            || (count >= 0 && PyList_GET_SIZE(columns[field]) != count)) {
            PyErr_SetString(PyExc_TypeError, "build wants object slots and columns as lists of one length");
            return NULL;
        }
        count = PyList_GET_SIZE(columns[field]);
    }
    if (count < 0)
        count = 0;
    PyObject *built = PyList_New(count);
    if (built == NULL)
        return NULL;
    for (Py_ssize_t at = 0; at < count; at++) {
        PyObject *object = type->tp_alloc(type, 0);
        if (object == NULL) {
            Py_DECREF(built);
            return NULL;
        }
        for (Py_ssize_t field = 0; field < fields; field++)
            *(PyObject **)((char *)object + offsets[field]) = Py_NewRef(PyList_GET_ITEM(columns[field], at));
        PyList_SET_ITEM(built, at, object);
    }
    return built;
}

static PyMethodDef methods[] = {
    {"build", (PyCFunction)(void (*)(void))build, METH_FASTCALL, build_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "schemas._slots", "Objects of slotted dataclasses built from columns.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__slots(void)
{
    return PyModule_Create(&module);
}
