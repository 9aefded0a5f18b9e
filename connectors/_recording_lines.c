/* Recording lines of the usual shape read into RawEvents in C, a block of lines per call.

   A recording line is what `connectors.recording.event_to_json` writes:
   {"recv_ns":N,"venue":"..","conn":"..","kind":"..","symbol":".."|null,"url":".."|null,"data":".."}
   in that key order, without whitespace inside. Only lines of exactly that shape are read
   here, and only when every string is ASCII with no escapes but the two-character ones
   (\" \\ \/ \b \f \n \r \t), recv_ns is a JSON integer below 2**63, and venue and kind are
   known. Every other line is handed back as it was, and Python reads it with msgspec or
   orjson as before, so this file never decides anything Python would decide differently.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../schemas/_json_cursor.h"

/* A JSON string's raw text between its quotes: 1 when it is ASCII with two-character
   escapes only (the cursor then stands after the closing quote), else 0. */
static int scan_text(Cursor *c, const char **start, Py_ssize_t *length, int *escaped)
{
    if (c->at >= c->end || *c->at != '"')
        return 0;
    *start = ++c->at;
    Py_ssize_t decoded = 0;
    int escapes = 0;
    while (c->at < c->end) {
        unsigned char ch = (unsigned char)*c->at;
        if (ch == '"') {
            c->at++;
            *length = decoded;
            *escaped = escapes;
            return 1;
        }
        if (ch < 0x20 || ch >= 0x80)
            return 0;
        if (ch == '\\') {
            if (c->end - c->at < 2 || strchr("\"\\/bfnrt", c->at[1]) == NULL || c->at[1] == '\0')
                return 0;
            c->at++;
            escapes = 1;
        }
        c->at++;
        decoded++;
    }
    return 0;
}

static char unescaped(char ch)
{
    switch (ch) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return ch; /* " \ / */
    }
}

/* The string scanned by scan_text, as a str. */
static PyObject *text_of(const char *start, Py_ssize_t length, int escaped)
{
    PyObject *text = PyUnicode_New(length, 127);
    if (text == NULL)
        return NULL;
    char *out = (char *)PyUnicode_1BYTE_DATA(text);
    if (!escaped) {
        memcpy(out, start, (size_t)length);
        return text;
    }
    for (Py_ssize_t i = 0; i < length; i++, start++)
        out[i] = *start == '\\' ? unescaped(*++start) : *start;
    return text;
}

/* What a byte of a string's raw text stands for: itself (PLAIN), the start of an escape
   (ESCAPE), or the end of the usual shape (0: a quote, a control character, past ASCII). */
enum { REFUSED, PLAIN, ESCAPE };
static unsigned char byte_class[256];
static char escaped_char[256]; /* the character an escape `\x` stands for, 0 if none */

static void fill_tables(void)
{
    for (int ch = 0x20; ch < 0x80; ch++)
        byte_class[ch] = PLAIN;
    byte_class['"'] = REFUSED;
    byte_class['\\'] = ESCAPE;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    for (int i = 0; from[i] != '\0'; i++)
        escaped_char[(unsigned char)from[i]] = to[i];
}

/* The last value of a line, the string in [start, stop) (its closing quote at stop), as a
   str: NULL without an error set when it is not ASCII with two-character escapes only.
   One pass, copying as it checks: this is most of a line. */
static PyObject *read_last_text(const char *start, const char *stop)
{
    PyObject *text = PyUnicode_New(stop - start, 127);
    if (text == NULL)
        return NULL;
    char *out = (char *)PyUnicode_1BYTE_DATA(text), *to = out;
    const unsigned char *at = (const unsigned char *)start, *end = (const unsigned char *)stop;
    while (at < end) {
        unsigned char ch = *at++;
        if (byte_class[ch] == PLAIN) {
            *to++ = (char)ch;
        } else if (byte_class[ch] == ESCAPE && at < end && escaped_char[*at]) {
            *to++ = escaped_char[*at++];
        } else {
            Py_DECREF(text);
            return NULL;
        }
    }
    if (to - out != stop - start && PyUnicode_Resize(&text, to - out) < 0)
        return NULL;
    return text;
}

/* The last text read for one key: lines repeat their venue, conn, kind and symbol. */
typedef struct {
    const char *raw;
    Py_ssize_t raw_length;
    PyObject *text;
} Recent;

/* A string (or, with `nullable`, null) as a new reference: the recent one when its raw
   text is the same. NULL without an error set: not of the usual shape. */
static PyObject *read_text(Cursor *c, Recent *recent, int nullable)
{
    if (nullable && take(c, "null", 4))
        return Py_NewRef(Py_None);
    const char *start;
    Py_ssize_t length;
    int escaped;
    if (!scan_text(c, &start, &length, &escaped))
        return NULL;
    Py_ssize_t raw_length = c->at - 1 - start;
    if (recent != NULL && recent->text != NULL && recent->raw_length == raw_length
        && memcmp(recent->raw, start, (size_t)raw_length) == 0)
        return Py_NewRef(recent->text);
    PyObject *text = text_of(start, length, escaped);
    if (recent != NULL && text != NULL) {
        Py_XSETREF(recent->text, Py_NewRef(text));
        recent->raw = start;
        recent->raw_length = raw_length;
    }
    return text;
}

enum { RECV_NS, VENUE, CONN, KIND, SYMBOL, URL, DATA, KEYS };

static const struct { const char *prefix; size_t length; } key_of[KEYS] = {
    {"{\"recv_ns\":", 11}, {",\"venue\":", 9}, {",\"conn\":", 8}, {",\"kind\":", 8},
    {",\"symbol\":", 10}, {",\"url\":", 7}, {",\"data\":", 8},
};

typedef struct {
    PyObject *event_type, *venues, *kinds;
    Recent recent[KEYS];
} Reader;

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* One stripped, non-empty line as a new RawEvent; NULL without an error set when it is
   not of the usual shape, NULL with an error set on a memory error. */
static PyObject *read_event(Reader *r, const char *line, const char *end)
{
    Cursor c = {line, end};
    PyObject *values[KEYS] = {NULL};
    PyObject *event = NULL;
    for (int key = 0; key < KEYS; key++) {
        if (!take(&c, key_of[key].prefix, key_of[key].length))
            goto done;
        switch (key) {
        case RECV_NS:
            values[key] = read_count(&c);
            break;
        case DATA: /* the line ends with it: `"...."}` */
            if (c.end - c.at < 3 || *c.at != '"' || c.end[-2] != '"')
                goto done;
            values[key] = read_last_text(c.at + 1, c.end - 2);
            c.at = c.end - 1;
            break;
        default:
            values[key] = read_text(&c, &r->recent[key], key == SYMBOL || key == URL);
        }
        if (values[key] == NULL)
            goto done;
    }
    if (!take(&c, "}", 1) || c.at != c.end)
        goto done;
    int known = PySet_Contains(r->venues, values[VENUE]);
    if (known == 1)
        known = PySet_Contains(r->kinds, values[KIND]);
    if (known == 1)
        event = PyObject_Vectorcall(r->event_type, values, KEYS, NULL);
done:
    for (int key = 0; key < KEYS; key++)
        Py_XDECREF(values[key]);
    if (event == NULL && PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_MemoryError))
        PyErr_Clear(); /* whatever Python would refuse, Python reads and refuses itself */
    return event;
}

PyDoc_STRVAR(read_lines_doc,
"read_lines(buffer, length, whole, event_type, venues, kinds, max_line_bytes)\n"
"    -> (items, lines, unread, consumed)\n\n"
"The lines in the first `length` bytes of `buffer` (each ending at a newline; with\n"
"`whole`, the last one may end at `length` instead, else it is left) in order: a RawEvent\n"
"(`event_type(recv_ns, venue, conn, kind, symbol, url, data)`) for each line of the usual\n"
"shape whose venue and kind are known, nothing for a blank line, and (line index, the\n"
"line's bytes as they were) for every other line, lines longer than max_line_bytes\n"
"(newline included) among them. `lines`: how many lines were read; `unread`: how many\n"
"were handed back; `consumed`: the bytes they took.");

static PyObject *read_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7 || !PyLong_Check(args[1]) || !PyAnySet_Check(args[4]) || !PyAnySet_Check(args[5])
        || !PyLong_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError,
                        "read_lines takes a buffer, a length, a flag, the event type, two sets and a length");
        return NULL;
    }
    Py_ssize_t length = PyLong_AsSsize_t(args[1]), max_line = PyLong_AsSsize_t(args[6]);
    int whole = PyObject_IsTrue(args[2]);
    if ((length == -1 || max_line == -1 || whole < 0) && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (length < 0 || length > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "read_lines: length past the buffer's end");
        return NULL;
    }
    Reader r = {args[3], args[4], args[5], {{NULL, 0, NULL}}};
    const char *first = view.buf, *at = first, *block_end = first + length;
    PyObject *items = PyList_New(0), *answer = NULL;
    Py_ssize_t lines = 0, unread = 0;
    if (items == NULL)
        goto done;
    while (at < block_end) {
        const char *newline = memchr(at, '\n', (size_t)(block_end - at));
        if (newline == NULL && !whole)
            break; /* the line goes on past the buffer */
        const char *next = newline != NULL ? newline + 1 : block_end;
        const char *start = at, *end = next;
        while (start < end && is_space(*start))
            start++;
        while (end > start && is_space(end[-1]))
            end--;
        PyObject *item = NULL;
        if (next - at > max_line || (start < end && (item = read_event(&r, start, end)) == NULL)) {
            if (PyErr_Occurred())
                goto done;
            item = Py_BuildValue("(ny#)", lines, at, (Py_ssize_t)(next - at));
            unread++;
        }
        if (item != NULL) {
            int appended = PyList_Append(items, item);
            Py_DECREF(item);
            if (appended < 0)
                goto done;
        } else if (PyErr_Occurred()) {
            goto done;
        }
        lines++;
        at = next;
    }
    answer = Py_BuildValue("(Onnn)", items, lines, unread, (Py_ssize_t)(at - first));
done:
    Py_XDECREF(items);
    for (int key = 0; key < KEYS; key++)
        Py_XDECREF(r.recent[key].text);
    PyBuffer_Release(&view);
    return answer;
}

static PyMethodDef methods[] = {
    {"read_lines", (PyCFunction)(void (*)(void))read_lines, METH_FASTCALL, read_lines_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "connectors._recording_lines",
    "Recording lines of the usual shape read into RawEvents.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__recording_lines(void)
{
    fill_tables();
    return PyModule_Create(&module);
}
