// The dispatcher trampoline: a CPython extension module, built once per rustc/Python and
// imported once per process, that makes the stable callables behind `rt.fns.<name>`.
//
// Each callable is a real builtin (`PyCFunction_NewEx`, METH_FASTCALL), so CPython 3.11+
// specialises calls to it (CALL_BUILTIN_FAST); a custom callable type would cost ~1.3x more per
// call. Its `self` is a Slot holding the active revision's entry point and a strong reference to
// that revision's keeper object. Retargeting rewrites the slot under the GIL. A call in flight
// that may run Python code or release the GIL pins the keeper it started with, and libraries
// are only unloaded by a reaper after their keeper died, so a revision's code is never
// unmapped under a running call.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::ptr::{addr_of_mut, null, null_mut};

type Ssize = isize;

#[repr(C)]
pub struct PyObject {
    ob_refcnt: Ssize,
    ob_type: *mut c_void,
}
type Obj = *mut PyObject;

#[repr(C)]
struct PyModuleDefBase {
    ob_base: PyObject,
    m_init: Option<unsafe extern "C" fn() -> Obj>,
    m_index: Ssize,
    m_copy: Obj,
}

#[repr(C)]
struct PyMethodDef {
    ml_name: *const c_char,
    ml_meth: *const c_void,
    ml_flags: c_int,
    ml_doc: *const c_char,
}

#[repr(C)]
struct PyModuleDef {
    m_base: PyModuleDefBase,
    m_name: *const c_char,
    m_doc: *const c_char,
    m_size: Ssize,
    m_methods: *mut PyMethodDef,
    m_slots: *mut c_void,
    m_traverse: *mut c_void,
    m_clear: *mut c_void,
    m_free: *mut c_void,
}

#[repr(C)]
struct PyTypeSlot {
    slot: c_int,
    pfunc: *mut c_void,
}

#[repr(C)]
struct PyTypeSpec {
    name: *const c_char,
    basicsize: c_int,
    itemsize: c_int,
    flags: c_uint,
    slots: *mut PyTypeSlot,
}

type FastFn = unsafe extern "C" fn(Obj, *const Obj, Ssize) -> Obj;

const METH_O: c_int = 0x0008;
const METH_FASTCALL: c_int = 0x0080;
const Py_tp_dealloc: c_int = 52;
const Py_tp_doc: c_int = 56;
const Py_TPFLAGS_DEFAULT: c_uint = 1 << 18;

extern "C" {
    fn PyModule_Create2(def: *mut PyModuleDef, apiver: c_int) -> Obj;
    fn PyModule_AddObject(m: Obj, name: *const c_char, o: Obj) -> c_int;
    fn PyType_FromSpec(spec: *mut PyTypeSpec) -> Obj;
    fn PyType_GenericAlloc(t: Obj, n: Ssize) -> Obj;
    fn PyObject_Free(p: *mut c_void);
    fn PyCFunction_NewEx(def: *mut PyMethodDef, self_: Obj, module: Obj) -> Obj;
    fn PyCFunction_GetSelf(f: Obj) -> Obj;
    fn PyUnicode_AsUTF8AndSize(o: Obj, n: *mut Ssize) -> *const c_char;
    fn PyLong_AsVoidPtr(o: Obj) -> *mut c_void;
    fn PyLong_FromVoidPtr(p: *mut c_void) -> Obj;
    fn PyErr_SetString(t: Obj, msg: *const c_char);
    fn PyErr_Occurred() -> Obj;
    fn Py_IncRef(o: Obj);
    fn Py_DecRef(o: Obj);
    static mut _Py_NoneStruct: PyObject;
    static mut PyExc_TypeError: Obj;
    static mut PyExc_RuntimeError: Obj;
}

#[repr(C)]
struct Slot {
    ob_base: PyObject,
    entry: Option<FastFn>,
    keeper: Obj,
    def: PyMethodDef,
    name: *mut c_char,
    doc: *mut c_char,
}

static mut SLOT_TYPE: Obj = null_mut();

unsafe extern "C" fn slot_dealloc(o: Obj) {
    let s = o as *mut Slot;
    if !(*s).keeper.is_null() {
        Py_DecRef((*s).keeper);
    }
    if !(*s).name.is_null() {
        drop(CString::from_raw((*s).name));
    }
    if !(*s).doc.is_null() {
        drop(CString::from_raw((*s).doc));
    }
    let tp = (*o).ob_type as Obj;
    PyObject_Free(o as *mut c_void);
    // Instances of heap types own a reference to their type.
    Py_DecRef(tp);
}

unsafe extern "C" fn dispatch(slot: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    let s = slot as *mut Slot;
    match (*s).entry {
        Some(f) => {
            // No reference count round trip here: the entry pins its keeper itself before
            // anything that may run Python code (see "Pinning" in codegen/rt.rs).
            f((*s).keeper, args, nargs)
        }
        None => {
            PyErr_SetString(PyExc_RuntimeError, c"symbiont: no revision is active".as_ptr());
            null_mut()
        }
    }
}

unsafe fn none() -> Obj {
    let n = addr_of_mut!(_Py_NoneStruct);
    Py_IncRef(n);
    n
}

unsafe fn utf8(o: Obj) -> Option<CString> {
    let mut n: Ssize = 0;
    let p = PyUnicode_AsUTF8AndSize(o, &mut n);
    if p.is_null() {
        return None;
    }
    let bytes = std::slice::from_raw_parts(p as *const u8, n as usize);
    match CString::new(bytes) {
        Ok(c) => Some(c),
        Err(_) => {
            PyErr_SetString(PyExc_TypeError, c"embedded NUL character".as_ptr());
            None
        }
    }
}

unsafe fn slot_of(f: Obj) -> *mut Slot {
    let s = PyCFunction_GetSelf(f);
    if s.is_null() || (*s).ob_type as Obj != SLOT_TYPE {
        if PyErr_Occurred().is_null() {
            PyErr_SetString(PyExc_TypeError, c"not a symbiont dispatcher".as_ptr());
        }
        return null_mut();
    }
    s as *mut Slot
}

/// new(name: str, doc: str, module: str) -> builtin with no target yet
unsafe extern "C" fn tr_new(_m: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    if nargs != 3 {
        PyErr_SetString(PyExc_TypeError, c"new(name, doc, module)".as_ptr());
        return null_mut();
    }
    let Some(name) = utf8(*args) else { return null_mut() };
    let Some(doc) = utf8(*args.add(1)) else { return null_mut() };
    let o = PyType_GenericAlloc(SLOT_TYPE, 0);
    if o.is_null() {
        return null_mut();
    }
    let s = o as *mut Slot;
    (*s).entry = None;
    (*s).keeper = null_mut();
    (*s).name = name.into_raw();
    (*s).doc = doc.into_raw();
    (*s).def = PyMethodDef {
        ml_name: (*s).name,
        ml_meth: dispatch as *const c_void,
        ml_flags: METH_FASTCALL,
        ml_doc: (*s).doc,
    };
    // The builtin borrows `def` from the slot and owns a reference to the slot as its `self`.
    let f = PyCFunction_NewEx(addr_of_mut!((*s).def), o, *args.add(2));
    Py_DecRef(o);
    f
}

/// retarget(fn, entry_address: int, keeper) -> None; entry 0 clears the target.
unsafe extern "C" fn tr_retarget(_m: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    if nargs != 3 {
        PyErr_SetString(PyExc_TypeError, c"retarget(fn, entry, keeper)".as_ptr());
        return null_mut();
    }
    let s = slot_of(*args);
    if s.is_null() {
        return null_mut();
    }
    let addr = PyLong_AsVoidPtr(*args.add(1));
    if addr.is_null() && !PyErr_Occurred().is_null() {
        return null_mut();
    }
    let keeper = *args.add(2);
    let old = (*s).keeper;
    if addr.is_null() {
        (*s).entry = None;
        (*s).keeper = null_mut();
    } else {
        Py_IncRef(keeper);
        (*s).keeper = keeper;
        (*s).entry = Some(std::mem::transmute::<*mut c_void, FastFn>(addr));
    }
    // Released last: dropping the old keeper may unload its library, never one still in use.
    if !old.is_null() {
        Py_DecRef(old);
    }
    none()
}

/// target(fn) -> keeper or None
unsafe extern "C" fn tr_target(_m: Obj, f: Obj) -> Obj {
    let s = slot_of(f);
    if s.is_null() {
        return null_mut();
    }
    if (*s).keeper.is_null() {
        return none();
    }
    Py_IncRef((*s).keeper);
    (*s).keeper
}

/// entry(fn) -> int address of the current entry point (0 when none)
unsafe extern "C" fn tr_entry(_m: Obj, f: Obj) -> Obj {
    let s = slot_of(f);
    if s.is_null() {
        return null_mut();
    }
    PyLong_FromVoidPtr(match (*s).entry {
        Some(e) => e as *mut c_void,
        None => null_mut(),
    })
}

static mut METHODS: [PyMethodDef; 5] = [
    PyMethodDef { ml_name: c"new".as_ptr(), ml_meth: tr_new as *const c_void, ml_flags: METH_FASTCALL, ml_doc: null() },
    PyMethodDef { ml_name: c"retarget".as_ptr(), ml_meth: tr_retarget as *const c_void, ml_flags: METH_FASTCALL, ml_doc: null() },
    PyMethodDef { ml_name: c"target".as_ptr(), ml_meth: tr_target as *const c_void, ml_flags: METH_O, ml_doc: null() },
    PyMethodDef { ml_name: c"entry".as_ptr(), ml_meth: tr_entry as *const c_void, ml_flags: METH_O, ml_doc: null() },
    PyMethodDef { ml_name: null(), ml_meth: null(), ml_flags: 0, ml_doc: null() },
];

static mut MODULE: PyModuleDef = PyModuleDef {
    m_base: PyModuleDefBase {
        ob_base: PyObject { ob_refcnt: 1, ob_type: null_mut() },
        m_init: None,
        m_index: 0,
        m_copy: null_mut(),
    },
    m_name: c"_symbiont_trampoline".as_ptr(),
    m_doc: c"symbiont's dispatcher trampoline (internal)".as_ptr(),
    m_size: -1,
    m_methods: null_mut(),
    m_slots: null_mut(),
    m_traverse: null_mut(),
    m_clear: null_mut(),
    m_free: null_mut(),
};

static mut SLOTS: [PyTypeSlot; 3] = [
    PyTypeSlot { slot: Py_tp_dealloc, pfunc: slot_dealloc as *mut c_void },
    PyTypeSlot { slot: Py_tp_doc, pfunc: c"The target of a symbiont dispatcher.".as_ptr() as *mut c_void },
    PyTypeSlot { slot: 0, pfunc: null_mut() },
];

static mut SPEC: PyTypeSpec = PyTypeSpec {
    name: c"symbiont.Dispatcher".as_ptr(),
    basicsize: std::mem::size_of::<Slot>() as c_int,
    itemsize: 0,
    flags: Py_TPFLAGS_DEFAULT,
    slots: null_mut(),
};

#[no_mangle]
pub unsafe extern "C" fn PyInit__symbiont_trampoline() -> Obj {
    let spec = addr_of_mut!(SPEC);
    (*spec).slots = addr_of_mut!(SLOTS) as *mut PyTypeSlot;
    let tp = PyType_FromSpec(spec);
    if tp.is_null() {
        return null_mut();
    }
    SLOT_TYPE = tp;
    let def = addr_of_mut!(MODULE);
    (*def).m_methods = addr_of_mut!(METHODS) as *mut PyMethodDef;
    let m = PyModule_Create2(def, 3 /* PYTHON_ABI_VERSION */);
    if m.is_null() {
        return null_mut();
    }
    Py_IncRef(tp);
    if PyModule_AddObject(m, c"Dispatcher".as_ptr(), tp) < 0 {
        Py_DecRef(tp);
        Py_DecRef(m);
        return null_mut();
    }
    m
}
